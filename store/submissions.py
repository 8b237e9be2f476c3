"""Queries on submissions. Callers validate first; ``add`` commits before it returns, so whatever
is acknowledged afterwards is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, defer

from store.tables import EXPORTED_SOURCES, Submission

# Rows fetched per round trip when streaming the export.
EXPORT_BATCH = 500


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def add(
    session: Session,
    *,
    label: str,
    label_source: str,
    strokes: list[Any],
    simplified: list[Any],
    canvas: tuple[int, int],
    predictions: list[dict[str, Any]] | None,
) -> tuple[Submission, str]:
    """Insert and commit one drawing; returns the stored row and its delete token (shown once)."""
    token = secrets.token_urlsafe(24)
    row = Submission(
        created_at=utc_now(),
        label=label,
        label_source=label_source,
        strokes=strokes,
        simplified=simplified,
        canvas_width=canvas[0],
        canvas_height=canvas[1],
        predictions=predictions,
        n_strokes=len(strokes),
        n_points=sum(len(s[0]) for s in strokes),
        delete_token_hash=hash_token(token),
    )
    session.add(row)
    session.commit()
    return row, token


def get(session: Session, submission_id: int) -> Submission | None:
    return session.get(Submission, submission_id)


def page(session: Session, label: str | None, limit: int, offset: int) -> tuple[list[Submission], int]:
    """Newest first, with the total count of the (filtered) submissions; the strokes are not read."""
    where = [Submission.label == label] if label is not None else []
    query = select(Submission).options(defer(Submission.strokes), defer(Submission.simplified)).where(*where)
    rows = session.scalars(query.order_by(Submission.id.desc()).limit(limit).offset(offset))
    total = session.scalar(select(func.count()).select_from(Submission).where(*where)) or 0
    return list(rows), total


def stats(session: Session) -> dict[str, int]:
    """Number of submissions per label, most submitted first."""
    n = func.count().label("n")
    rows = session.execute(select(Submission.label, n).group_by(Submission.label).order_by(n.desc(), Submission.label))
    return {label: count for label, count in rows}


class Deleted(Enum):
    DELETED = "deleted"
    WRONG_TOKEN = "wrong token"
    NOT_FOUND = "not found"


def remove(session: Session, submission_id: int, token: str | None) -> Deleted:
    """Delete the row for good when the token matches.

    The read and the delete are separate transactions (a SQLite reader that turns writer can fail
    at once instead of waiting); the delete re-checks the token hash, so a race cannot misfire.
    """
    row = session.get(Submission, submission_id)
    if row is None:
        return Deleted.NOT_FOUND
    stored = row.delete_token_hash
    if token is None or stored is None or not hmac.compare_digest(stored, hash_token(token)):
        return Deleted.WRONG_TOKEN
    session.rollback()  # end the read transaction before writing
    result = session.execute(
        delete(Submission).where(Submission.id == submission_id, Submission.delete_token_hash == stored)
    )
    session.commit()
    return Deleted.DELETED if result.rowcount else Deleted.NOT_FOUND


def exportable(session: Session) -> Iterator[Submission]:
    """Submissions whose label the player chose or confirmed, grouped by label, oldest first."""
    query = (
        select(Submission)
        .where(Submission.label_source.in_(EXPORTED_SOURCES))
        .order_by(Submission.label, Submission.id)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    yield from session.scalars(query)
