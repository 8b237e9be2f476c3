"""Queries on the leaderboard. Scores are self-reported by the client (the API checks their bounds,
not that the rounds were played)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.submissions import utc_now
from store.tables import Score


def add(session: Session, *, name: str, rounds_won: int, rounds_played: int, total_seconds: float) -> Score:
    row = Score(
        created_at=utc_now(),
        name=name,
        rounds_won=rounds_won,
        rounds_played=rounds_played,
        total_seconds=total_seconds,
    )
    session.add(row)
    session.commit()
    return row


def top(session: Session, limit: int) -> list[Score]:
    """Most rounds won first; among equals the fastest, then the earliest."""
    query = select(Score).order_by(Score.rounds_won.desc(), Score.total_seconds, Score.id).limit(limit)
    return list(session.scalars(query))
