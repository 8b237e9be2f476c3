"""The submissions store: drawings players chose to keep, with their label, in SQLite.

A submission is written in one transaction on a connection opened for that call, with the
database in WAL mode and ``synchronous=FULL``: when ``add`` returns, the row is on disk, so a
201 answered after it survives the process being killed right away. One connection per call
also makes the store safe to use from FastAPI's thread pool without a lock.

Strokes are kept as sent (canvas coordinates, ``[[x...], [y...]]`` as in the raw dataset) and
also in the *simplified* dataset form (longer side 0-255, RDP), ready to train on.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from sketch.strokes import normalize, parse_strokes, to_dataset_format

log = logging.getLogger(__name__)

# Writers wait this long for another writer's lock instead of failing at once.
BUSY_TIMEOUT_S = 10.0

SCHEMA = """
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

_COLUMNS = "id, created_at, label, strokes, simplified, canvas_width, canvas_height, predictions"


class StoreUnavailableError(RuntimeError):
    """The database cannot be opened or written; the message says why (answered 503)."""


def sqlite_path(database_url: str) -> Path:
    """``sqlite:///data/x.db`` -> ``data/x.db`` (relative), ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
    scheme, sep, rest = database_url.partition(":///")
    if not sep or scheme not in ("sqlite", "sqlite3"):
        raise ValueError(
            f"DATABASE_URL must look like sqlite:///relative/path.db or sqlite:////absolute/path.db, "
            f"got {database_url!r}"
        )
    path = rest.partition("?")[0]
    if not path or path == ":memory:":
        # Every call opens its own connection, and each in-memory connection is a new empty database.
        raise ValueError("DATABASE_URL must name a database file (an in-memory database is not kept)")
    return Path(path)


class SubmissionStore:
    def __init__(self, path: Path):
        self.path = path
        self.error: str | None = None
        self._ready = False
        self._schema_lock = threading.Lock()

    @classmethod
    def from_url(cls, database_url: str) -> SubmissionStore:
        return cls(sqlite_path(database_url))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        # Per connection: fsync the WAL at every commit, so an acknowledged row is durable.
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def open(self) -> bool:
        """Create the folder, the schema and WAL mode; remember the reason if that fails."""
        with self._schema_lock:
            if self._ready:
                return True
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(self._connect()) as conn:
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if mode.lower() != "wal":
                        raise sqlite3.OperationalError(f"journal_mode is {mode}, WAL could not be enabled")
                    conn.executescript(SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                self.error = f"submissions database {self.path} cannot be opened: {exc}"
                log.error(self.error)
                return False
            self._ready, self.error = True, None
            return True

    def _require(self) -> None:
        # A store that failed at start-up (a folder not yet mounted, a full disk) is retried per call.
        if not self._ready and not self.open():
            raise StoreUnavailableError(self.error)

    def add(
        self,
        label: str,
        strokes: list,
        canvas: tuple[int, int],
        predictions: list[dict] | None = None,
        max_strokes: int | None = None,
        max_points: int | None = None,
    ) -> dict:
        """Validate and store one drawing; returns it with its id once the commit is on disk.

        Raises ``ValueError`` (``EmptyDrawingError``) for a bad drawing, ``StoreUnavailableError``.
        """
        parsed = parse_strokes(strokes, max_strokes, max_points)
        simplified = to_dataset_format(normalize(parsed))
        row = (
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            label,
            json.dumps(strokes, separators=(",", ":")),
            json.dumps(simplified, separators=(",", ":")),
            canvas[0],
            canvas[1],
            None if predictions is None else json.dumps(predictions, separators=(",", ":")),
            len(parsed),
            sum(len(s) for s in parsed),
        )
        self._require()
        try:
            with closing(self._connect()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "INSERT INTO submissions (created_at, label, strokes, simplified, canvas_width, canvas_height,"
                    " predictions, n_strokes, n_points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                new_id = cur.lastrowid
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"the submission could not be stored: {exc}") from None
        return {
            "id": new_id,
            "created_at": row[0],
            "label": label,
            "strokes": strokes,
            "simplified": simplified,
            "canvas": {"width": canvas[0], "height": canvas[1]},
            "predictions": predictions,
        }

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        self._require()
        try:
            with closing(self._connect()) as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"the submissions could not be read: {exc}") from None

    @staticmethod
    def _item(row: sqlite3.Row) -> dict:
        return {
            "id": row["id"],
            "created_at": row["created_at"],
            "label": row["label"],
            "strokes": json.loads(row["strokes"]),
            "simplified": json.loads(row["simplified"]),
            "canvas": {"width": row["canvas_width"], "height": row["canvas_height"]},
            "predictions": None if row["predictions"] is None else json.loads(row["predictions"]),
        }

    def get(self, submission_id: int) -> dict | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM submissions WHERE id = ?", (submission_id,))
        return self._item(rows[0]) if rows else None

    def page(self, label: str | None = None, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
        """Newest first, with the total count of the (filtered) submissions."""
        where, params = ("WHERE label = ?", (label,)) if label is not None else ("", ())
        rows = self._query(
            f"SELECT {_COLUMNS} FROM submissions {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        total = self._query(f"SELECT COUNT(*) FROM submissions {where}", params)[0][0]
        return [self._item(r) for r in rows], total

    def stats(self) -> dict[str, int]:
        """Number of submissions per label, most submitted first."""
        rows = self._query("SELECT label, COUNT(*) AS n FROM submissions GROUP BY label ORDER BY n DESC, label")
        return {r["label"]: r["n"] for r in rows}
