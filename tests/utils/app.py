"""The real app in-process (``TestClient``, lifespan run) with settings taken from the environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.utils.servers import MODEL_STORE


@contextlib.contextmanager
def app_client(database_url: str, model_store: Path = MODEL_STORE, **env: str | None) -> Iterator[TestClient]:
    """``create_app()`` under ``MODEL_STORE``/``DATABASE_URL`` (and any other setting), settings cache
    cleared; the API migrates the database itself (PostgreSQL included) unless ``MIGRATE_ON_START`` says not."""
    from api.main import create_app
    from api.settings import get_settings

    mp = pytest.MonkeyPatch()
    settings = {"MODEL_STORE": str(model_store), "DATABASE_URL": database_url, "MIGRATE_ON_START": "true", **env}
    for key, value in settings.items():
        if value is None:  # unset: the setting's default
            mp.delenv(key, raising=False)
        else:
            mp.setenv(key, value)
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as client:
            yield client
    finally:
        mp.undo()
        get_settings.cache_clear()
