"""Every setting of the service, read once from environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    # Models: the newest version of each kind in the store, unless pinned (e.g. CNN_VERSION=20261124-1133).
    model_store: Path = Path("model_store")
    cnn_version: str | None = None
    rnn_version: str | None = None
    # "auto" serves the ONNX copy when onnxruntime is installed, else the SavedModel through TensorFlow.
    inference_runtime: str = Field("auto", pattern="^(auto|onnx|tensorflow)$")

    # Submissions store.
    database_url: str = "sqlite:///data/submissions.db"

    # Input limits: anything larger is refused with a 4xx naming the limit.
    max_body_bytes: int = 2_000_000
    max_strokes: int = 200
    max_points: int = 20_000
    max_image_pixels: int = 4096 * 4096
    max_batch_items: int = 64
    max_top_k: int = 400  # the Probabilities page asks for every class

    # Browsers allowed to call the API (the Streamlit app calls it server-side and needs none).
    cors_origins: list[str] = ["http://localhost:8501", "http://127.0.0.1:8501"]

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = None  # processes for python -m api.serve; default one per core

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
