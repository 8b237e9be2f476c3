"""Engines and sessions for SQLite (the embedded default) and PostgreSQL, and what "unavailable" means.

Durability is the same contract on both: a session's ``commit()`` returns only once the row is on
disk. SQLite runs in WAL mode with ``synchronous=FULL`` (the WAL is fsynced at every commit);
PostgreSQL keeps its defaults (``fsync``, ``synchronous_commit=on``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///data/submissions.db"
# SQLite writers wait this long for another writer's lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_S = 10.0
# A PostgreSQL server that does not answer is reported (503) after this, not waited for.
PG_CONNECT_TIMEOUT_S = 5
# No query of this service takes long: one that does is stopped by the server (then a 503).
PG_STATEMENT_TIMEOUT_MS = 5_000
# TCP keep-alive probes and an unacknowledged-data deadline: a server host or network that is gone
# is noticed in seconds, not after the kernel's default of hours.
PG_TCP = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
PG_TCP_USER_TIMEOUT_MS = 10_000
# A server that stops answering while the kernel still acknowledges (frozen, swapped out) defeats
# all three above: the client gives up waiting after this, a little after the server's own timeout.
PG_ANSWER_DEADLINE_S = PG_STATEMENT_TIMEOUT_MS / 1000 + 2

# Errors that say the database cannot be reached or written (down, full disk, read-only, locked),
# as opposed to a bug in a query.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError, sqlite3.OperationalError, OSError)


class StoreUnavailableError(RuntimeError):
    """The database cannot be opened, reached or written; the message says why (answered 503)."""


def parse_database_url(database_url: str) -> URL:
    """A checked SQLAlchemy URL: a SQLite file, or PostgreSQL through psycopg 3.

    ``postgres://`` and ``postgresql://`` (what managed services hand out) mean psycopg 3 here.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ValueError(f"DATABASE_URL is not a database URL: {database_url!r}") from None
    if url.get_backend_name() in ("postgres", "postgresql"):
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername != "postgresql+psycopg":
            raise ValueError(f"PostgreSQL is reached through psycopg 3: use postgresql+psycopg:// ({url.drivername})")
        return url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            # Each pooled connection to an in-memory database would be a new empty database.
            raise ValueError("DATABASE_URL must name a SQLite database file (an in-memory database is not kept)")
        return url.set(drivername="sqlite")
    raise ValueError(
        "DATABASE_URL must be sqlite:///relative/path.db, sqlite:////absolute/path.db or "
        f"postgresql+psycopg://user:password@host/db, got {url.render_as_string(hide_password=True)!r}"
    )


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _clean_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, list):
        return [_clean_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean_text(v) for k, v in value.items()}
    return value


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` that turns a lone surrogate (in rows written before the API refused them)
    into U+FFFD, so reading a row can never fail to serialise."""
    if isinstance(text, bytes):  # psycopg hands over the raw bytes
        text = text.decode("utf-8")
    value = json.loads(text)
    return _clean_text(value) if _SURROGATE_ESCAPE.search(text) else value


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides where transactions start (see _sqlite_begin):
    # migrations then run in one transaction, DDL included.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}: WAL could not be enabled")
        # Per connection: fsync the WAL at every commit, so an acknowledged row is durable.
        cur.execute("PRAGMA synchronous=FULL")
    finally:
        cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


class _DeadlineConnection(psycopg.Connection):
    """A psycopg connection that waits at most ``PG_ANSWER_DEADLINE_S`` for the server's answer,
    then closes itself (SQLAlchemy drops it from the pool and the caller gets a 503).

    A commit is the exception: once COMMIT is sent the row may be stored whatever happens to the
    socket, and telling the client otherwise would invite a duplicate, so a commit is waited for.
    Closing before COMMIT is sent is safe: the server rolls the transaction back when it sees the
    connection gone.
    """

    _committing = False

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if self._committing or timeout is not None:
            return super().wait(gen, interval, timeout)
        started = time.monotonic()
        try:
            return super().wait(gen, interval, PG_ANSWER_DEADLINE_S)
        except psycopg.OperationalError:
            if time.monotonic() - started < PG_ANSWER_DEADLINE_S:
                raise
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database server did not answer within {PG_ANSWER_DEADLINE_S:g} s"
            ) from None

    def commit(self) -> None:
        self._committing = True
        try:
            super().commit()
        finally:
            self._committing = False


def _connect_with_deadline(_dialect: Any, _record: Any, cargs: tuple, cparams: dict) -> psycopg.Connection:
    return _DeadlineConnection.connect(*cargs, **cparams)


def make_engine(database_url: str) -> Engine:
    url = parse_database_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            json_deserializer=json_loads,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(
        url,
        # A server restarted since the connection was pooled: check before use instead of failing once.
        pool_pre_ping=True,
        pool_timeout=PG_CONNECT_TIMEOUT_S,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}",
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
            **PG_TCP,
        },
        json_deserializer=json_loads,
    )
    event.listen(engine, "do_connect", _connect_with_deadline)
    return engine


def reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


class Database:
    """One engine per process; migrated on first use and retried per call until that succeeds.

    A database that cannot be opened at start-up (PostgreSQL not up yet, a folder not yet mounted,
    a full or read-only disk) keeps the API up: the routes that need it answer 503 with the reason.
    """

    def __init__(self, database_url: str = DEFAULT_DATABASE_URL, migrate: bool | None = None):
        """``migrate``: bring the schema to the newest on open. By default a SQLite file is (it is
        this process's own), a server database (PostgreSQL) is not: migrating it is a deploy step
        (``python -m store.migrate``) run once before the new code serves, and until it has run the
        database is reported as behind (``schema_behind``)."""
        self.engine = make_engine(database_url)
        self.migrate = self.is_sqlite if migrate is None else migrate
        self.schema_behind: str | None = None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.error: str | None = None
        self._ready = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.url.get_backend_name() == "sqlite"

    def open(self) -> bool:
        """Create the SQLite folder and run the migrations; remember the reason if that fails."""
        with self._lock:
            if self._ready:
                return True
            try:
                if self.migrate:
                    from store.schema import upgrade  # alembic is imported only by whoever migrates

                    if self.is_sqlite:
                        Path(self.engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
                    upgrade(self.engine)
                elif self.is_sqlite and not Path(self.engine.url.database or "").is_file():
                    raise FileNotFoundError(f"no such file: {self.engine.url.database}")
                else:
                    self.schema_behind = self._behind()
                    if self.schema_behind:
                        self.error = self.schema_behind
                        log.error("%s: %s", self.name, self.error)
                        return False
            except (*UNAVAILABLE_ERRORS, SQLAlchemyError) as exc:
                # Clients get the reason; the log also names the database (never its password).
                self.error = f"the database cannot be opened: {reason(exc)}"
                log.warning("%s: %s", self.name, self.error)
                return False
            self._ready, self.error = True, None
            return True

    def _behind(self) -> str | None:
        """Why the schema is not the one this code needs, or None when it is."""
        from store.schema import current, head

        with self.engine.connect() as conn:
            at, needed = current(conn), head()
        if at == needed:
            return None
        return (
            f"the database schema is at revision {at or 'none'}, this code needs {needed}: run "
            "python -m store.migrate (the deploy step), or set MIGRATE_ON_START=true"
        )

    def require(self) -> None:
        if not self._ready and not self.open():
            raise StoreUnavailableError(self.error)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session on the migrated database; lost connections and write failures become
        ``StoreUnavailableError``. Nothing is committed unless the caller commits."""
        self.require()
        try:
            with self.sessions() as session:
                yield session
        except UNAVAILABLE_ERRORS as exc:
            log.warning("%s is unavailable: %s", self.name, reason(exc))
            raise StoreUnavailableError(f"the database is unavailable: {reason(exc)}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
