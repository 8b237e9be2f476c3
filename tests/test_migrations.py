"""Alembic migrations (store/migrations) on both back ends: the models match them, they go down and
up, concurrent starts are serialised, the command works, and a pre-Alembic SQLite file keeps its rows."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from store.db import make_engine
from store.schema import alembic_config, current, head, upgrade
from store.tables import Base
from tests.utils.app import app_client

ROOT = Path(__file__).resolve().parents[1]
TABLES = {"alembic_version", "submissions", "scores"}

# The schema the API created before there were migrations (api/submissions.py until 2026-11-30).
LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    label TEXT NOT NULL,
    strokes TEXT NOT NULL,
    simplified TEXT NOT NULL,
    canvas_width INTEGER NOT NULL,
    canvas_height INTEGER NOT NULL,
    predictions TEXT,
    n_strokes INTEGER NOT NULL,
    n_points INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_label_id ON submissions (label, id);
"""


def _engine(fresh_database_url: str):
    engine = make_engine(fresh_database_url)
    if engine.url.get_backend_name() == "sqlite":
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    return engine


def test_models_match_the_migrations(fresh_database_url):
    engine = _engine(fresh_database_url)
    assert upgrade(engine) == head() == "0004"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_up_again(fresh_database_url):
    engine = _engine(fresh_database_url)
    upgrade(engine)
    with engine.connect() as conn:
        command.downgrade(alembic_config(conn), "0001")
        conn.commit()
        assert "scores" not in inspect(conn).get_table_names()
        assert "label_source" not in {c["name"] for c in inspect(conn).get_columns("submissions")}
        command.downgrade(alembic_config(conn), "base")
        conn.commit()
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    assert upgrade(engine) == "0004"
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= TABLES
    engine.dispose()


def test_concurrent_starts_migrate_once(fresh_database_url):
    """Workers and replicas start together: the lock lets one migrate while the others wait."""
    engines = [_engine(fresh_database_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(upgrade, engines)) == ["0004"] * 4
    with engines[0].connect() as conn:
        assert current(conn) == "0004"
    for engine in engines:
        engine.dispose()


def test_migrate_command(fresh_database_url):
    cmd = [sys.executable, "-m", "store.migrate", "--database-url", fresh_database_url]
    for _ in range(2):  # a second run has nothing to do
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "is at revision 0004" in done.stdout
    bad = subprocess.run([*cmd[:-1], "mysql://x@y/z"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "DATABASE_URL" in bad.stderr


def test_pre_alembic_sqlite_file_keeps_its_rows(tmp_path, no_models):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(LEGACY_SCHEMA)
        conn.execute(
            "INSERT INTO submissions (created_at, label, strokes, simplified, canvas_width, canvas_height,"
            " predictions, n_strokes, n_points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            # A lone surrogate escaped in the predictions' JSON: the old API committed such rows.
            ("2026-11-20T10:00:00.000+00:00", "cat", "[[[0,5],[0,5]]]", "[[[0,255],[0,255]]]", 9, 9,
             '[{"label":"\\ud800","probability":0.5}]', 1, 2),
        )  # fmt: skip
    conn.close()
    with app_client(f"sqlite:///{path}", no_models) as c:
        r = c.get("/submissions")
        assert r.status_code == 200, r.text  # the stored surrogate reads back as U+FFFD, not a 500
        (item,) = r.json()["items"]
        assert item["label"] == "cat" and item["label_source"] == "unknown"
        assert item["predictions"][0]["label"].strip("\ufffd") == ""
        assert c.get(f"/submissions/{item['id']}").status_code == 200
        # Without a token (none was ever issued) it cannot be deleted through the API.
        assert c.delete(f"/submissions/{item['id']}", headers={"X-Delete-Token": "x"}).status_code == 403
        assert c.post("/submissions", json={**item, "predictions": None, "simplified": None}).status_code == 422
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]


def test_categories_taught_before_owners_keep_their_rows(fresh_database_url):
    """0003 -> 0004: every category gets a name key; two whose names now count as the same both stay."""
    engine = _engine(fresh_database_url)
    upgrade(engine, "0003")
    with engine.connect() as conn:
        for name in ("Rex", "rex", "letter K"):
            conn.execute(
                text("INSERT INTO taught_categories (name, created_at) VALUES (:name, '2026-12-01T00:00:00+00:00')"),
                {"name": name},
            )
        conn.commit()
    assert upgrade(engine) == "0004"
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, name_key, delete_token_hash FROM taught_categories ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("Rex", "rex", None), ("rex", "rex#2", None), ("letter K", "letter k", None)]


def test_a_postgresql_database_is_migrated_by_the_deploy_step_not_by_the_api(postgres):
    """PostgreSQL: the API does not migrate (MIGRATE_ON_START unset means no for a server database);
    until ``python -m store.migrate`` has run, /ready says the schema is behind and stores nothing."""
    url = postgres.create_database()
    with app_client(url, MIGRATE_ON_START=None) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert "schema is at revision none, this code needs" in ready.json()["detail"]
        assert "python -m store.migrate" in ready.json()["detail"]
        refused = c.post("/scores", json={"name": "Ada", "rounds_won": 1, "rounds_played": 1, "total_seconds": 5})
        assert refused.status_code == 503
        assert c.post("/predict", json={"strokes": [[[0, 9], [0, 9]]]}).status_code == 200  # needs no database
        done = subprocess.run(
            [sys.executable, "-m", "store.migrate", "--database-url", url], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert c.get("/ready").status_code == 200
        stored = c.post("/scores", json={"name": "Ada", "rounds_won": 1, "rounds_played": 1, "total_seconds": 5})
        assert stored.status_code == 201


def test_a_sqlite_file_is_migrated_by_the_api_itself(tmp_path, no_models):
    with app_client(f"sqlite:///{tmp_path}/own.db", no_models, MIGRATE_ON_START=None) as c:
        assert c.post(
            "/scores", json={"name": "Ada", "rounds_won": 1, "rounds_played": 1, "total_seconds": 5}
        ).is_success
