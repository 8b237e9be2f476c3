"""Every setting of the service, read once from environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from models.kinds import KINDS
from store.db import DEFAULT_DATABASE_URL

# The model that answers a request naming none, by what the request sends: the first one loaded.
# The player's default ranks every category, the taught ones included (the prototypes model); a
# store without it falls back to the networks alone.
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "strokes": ("prototypes", "ensemble", "cnn"),
    "bitmap": ("prototypes", "cnn"),
    "image": ("prototypes", "cnn"),
}


class Settings(BaseSettings):
    # Models: the newest version of each kind in the store, unless pinned
    # (e.g. MODEL_VERSIONS='{"cnn": "20261130-050800"}').
    model_store: Path = Path("model_store")
    model_versions: dict[str, str] = {}
    # "auto" serves the ONNX copy when onnxruntime is installed, else the SavedModel through TensorFlow.
    inference_runtime: str = Field("auto", pattern="^(auto|onnx|tensorflow)$")

    # Submissions and scores: a SQLite file (default) or postgresql+psycopg://user:password@host/db.
    database_url: str = DEFAULT_DATABASE_URL

    # Categories players may teach (POST /categories), in all.
    max_taught_categories: int = Field(100, ge=0)

    # Resource limits an operator may tune (the drawing limits are in api.schemas, part of the contract).
    max_body_bytes: int = 2_000_000
    max_image_pixels: int = 4096 * 4096

    # Browsers allowed to call the API (the Streamlit app calls it server-side and needs none).
    cors_origins: list[str] = ["http://localhost:8501", "http://127.0.0.1:8501"]

    # Connection deadlines (README "Timeouts"): idle keep-alive, request line + headers, whole body.
    timeout_keep_alive_s: int = 5
    timeout_header_s: float = 10.0
    timeout_body_s: float = 30.0
    timeout_send_s: float = 30.0  # an answer the client stops reading: the connection is dropped
    timeout_graceful_shutdown_s: int = 10
    max_header_bytes: int = 64 * 1024
    # Migrate the database when a worker starts. Default: a SQLite file yes, PostgreSQL no (the
    # deploy step, python -m store.migrate, runs once; /ready says when it has not).
    migrate_on_start: bool | None = None
    # One JSON line per request on stderr (api.access); metrics are kept either way.
    access_log: bool = True

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = None  # processes for python -m api.serve; default one per core
    standby_worker: bool = True  # api.serve keeps one more worker warm to replace a dead one at once

    @field_validator("model_versions")
    @classmethod
    def _known_kinds(cls, versions: dict[str, str]) -> dict[str, str]:
        unknown = set(versions) - set(KINDS)
        if unknown:
            raise ValueError(f"MODEL_VERSIONS names unknown kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        return versions

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        # Credentials are allowed, and a wildcard origin with credentials would let any site in.
        if "*" in origins:
            raise ValueError("CORS_ORIGINS may not contain '*': list the allowed origins")
        return origins


@lru_cache
def get_settings() -> Settings:
    return Settings()
