"""Database fixtures, loaded by conftest.py: every test that takes ``database_url`` (or ``db_client``)
runs twice, on a new SQLite file and on a real PostgreSQL server the suite starts.

PostgreSQL tests share one migrated database, emptied before each test (creating a database costs
about a second here); ``fresh_database_url`` gives a new, unmigrated one for the migration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.utils.app import app_client
from tests.utils.postgres import PostgresServer, find_bindir, postgres_server

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (about two seconds to start)."""
    if find_bindir() is None:
        message = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def shared_postgres_url(postgres: PostgresServer) -> str:
    from store.db import Database

    url = postgres.create_database()
    database = Database(url, migrate=True)
    assert database.open(), database.error
    database.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in a folder not yet created, or the shared PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/submissions.db"
    url = request.getfixturevalue("shared_postgres_url")
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")  # a test that left a transaction open fails, not hangs
        conn.execute("TRUNCATE submissions, scores RESTART IDENTITY")
    return url


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database nothing has touched: a SQLite path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/submissions.db"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def no_models(tmp_path: Path) -> Path:
    """A model store with nothing in it: the app starts fast (/predict would answer 503)."""
    return tmp_path / "no-models"


@pytest.fixture
def db_client(database_url: str, no_models: Path) -> Iterator[TestClient]:
    """The real app (lifespan run, migrations included) on ``database_url``, without models."""
    with app_client(database_url, no_models) as client:
        yield client
