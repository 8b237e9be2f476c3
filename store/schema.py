"""The database schema's migrations (Alembic): where a database stands, and bringing it to the newest.

``python -m store.migrate`` runs ``upgrade`` from the command line; the API runs it at start-up too.
Several processes may start at once (``api.serve`` workers,
replicas behind a load balancer), so the upgrade runs under a lock: a PostgreSQL advisory lock, or
an exclusive lock on a file beside the SQLite database. A SQLite database created before the
migrations existed (same table, no ``alembic_version``) is stamped with the first revision, which
is that table, and then upgraded: its rows are kept.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
# Any constant shared by every process that migrates this schema.
_PG_LOCK_KEY = 0x44656570_44726177  # "DeepDraw"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _server_lock(connection: Connection) -> Iterator[None]:
    """PostgreSQL: an advisory lock on the connection that migrates (nothing for SQLite)."""
    if connection.engine.url.get_backend_name() != "postgresql":
        yield
        return
    # A migration may rewrite a large table, and waits its turn: no statement deadline here.
    connection.exec_driver_sql("SET statement_timeout = 0")
    # Session-level: held across the migration's commit, released by the server if we die.
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_LOCK_KEY})")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})")
        connection.exec_driver_sql("RESET statement_timeout")  # the pooled connection's own again
        connection.commit()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """SQLite: an exclusive lock on a file beside the database, taken before connecting, since the
    first connection to a new file switches it to WAL, which two at once cannot (nothing for PostgreSQL)."""
    if engine.url.get_backend_name() != "sqlite":
        yield
        return
    fd = os.open(f"{engine.url.database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if the process dies
        yield
    finally:
        os.close(fd)


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate under the lock; returns the revision the database is at afterwards."""
    with _file_lock(engine), engine.connect() as conn, _server_lock(conn):
        cfg = alembic_config(conn)
        tables = set(inspect(conn).get_table_names())
        if "submissions" in tables and "alembic_version" not in tables:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)
        conn.commit()
        return current(conn) or ""
