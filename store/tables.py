"""The tables, as SQLAlchemy 2 declarative models (the migrations in ``migrations/`` create them)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# PostgreSQL: BIGINT identity. SQLite: INTEGER PRIMARY KEY (the 64-bit rowid), with AUTOINCREMENT
# so the id of a deleted row is never handed out again.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# SQL NULL for None (plain JSON would store the JSON text 'null').
NullableJSON = JSON(none_as_null=True)

LabelSource = Literal["player", "prompt", "confirmed"]
LABEL_SOURCES: tuple[str, ...] = get_args(LabelSource)
# Rows stored before the label's source was recorded; never exported.
UNKNOWN_SOURCE = "unknown"
EXPORTED_SOURCES = ("player", "confirmed")

MAX_LABEL_LENGTH = 64
MAX_NAME_LENGTH = 24
MAX_CATEGORY_NAME_LENGTH = 40
MAX_ROUNDS = 20
MAX_SECONDS_PER_ROUND = 60
# No round is over sooner: a prompt is drawn, a stroke sent and the guess answered.
MIN_SECONDS_PER_ROUND = 0.5


class Base(DeclarativeBase):
    pass


class Submission(Base):
    """A drawing a player chose to keep. Nothing about the player: no IP, no name, no device."""

    __tablename__ = "submissions"
    __table_args__ = (Index("submissions_label_id", "label", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # ISO-8601 UTC text: the same on both back ends and exactly what the API answered.
    created_at: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH))
    strokes: Mapped[list[Any]] = mapped_column(JSON)  # as sent, canvas coordinates
    simplified: Mapped[list[Any]] = mapped_column(JSON)  # the simplified dataset form, 0-255
    canvas_width: Mapped[int] = mapped_column(Integer)
    canvas_height: Mapped[int] = mapped_column(Integer)
    predictions: Mapped[list[Any] | None] = mapped_column(NullableJSON)
    n_strokes: Mapped[int] = mapped_column(Integer)
    n_points: Mapped[int] = mapped_column(Integer)
    # Who gave the label: the player typed/chose it, it was the game's prompt, or the player confirmed
    # the prompt. Only 'player' and 'confirmed' are exported for training.
    label_source: Mapped[str] = mapped_column(String(16), server_default=UNKNOWN_SOURCE)
    # SHA-256 of the token returned at creation (the token itself is never stored); NULL for old rows.
    delete_token_hash: Mapped[str | None] = mapped_column(String(64))


class Score(Base):
    """A leaderboard entry, self-reported by the client; the name is the only text a player types."""

    __tablename__ = "scores"
    __table_args__ = (
        CheckConstraint(f"rounds_played BETWEEN 1 AND {MAX_ROUNDS}", name="scores_rounds_played"),
        CheckConstraint("rounds_won BETWEEN 0 AND rounds_played", name="scores_rounds_won"),
        CheckConstraint(
            f"total_seconds > 0 AND total_seconds <= {MAX_SECONDS_PER_ROUND} * rounds_played",
            name="scores_total_seconds",
        ),
        Index("scores_rank", "rounds_won", "total_seconds"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    rounds_won: Mapped[int] = mapped_column(Integer)
    rounds_played: Mapped[int] = mapped_column(Integer)
    total_seconds: Mapped[float] = mapped_column(Float)


class TaughtCategory(Base):
    """A category a player taught (POST /categories); answered by similarity to its drawings."""

    __tablename__ = "taught_categories"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_CATEGORY_NAME_LENGTH), unique=True)
    name_key: Mapped[str] = mapped_column(String(200), unique=True)  # store.names.key(name)
    created_at: Mapped[str] = mapped_column(String(40))
    delete_token_hash: Mapped[str | None] = mapped_column(String(64))
    embeddings: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 (drawings, dim), row-major
    embedded_by: Mapped[str | None] = mapped_column(String(80))  # the model version that computed them


class TaughtDrawing(Base):
    __tablename__ = "taught_drawings"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category_id: Mapped[int] = mapped_column(BigId, ForeignKey("taught_categories.id", ondelete="CASCADE"), index=True)
    strokes: Mapped[list[Any]] = mapped_column(JSON)  # as sent, canvas coordinates
    simplified: Mapped[list[Any]] = mapped_column(JSON)  # the simplified dataset form: what is embedded


class TaughtVersion(Base):
    """One row, bumped with every change to the taught categories: replicas compare it per request."""

    __tablename__ = "taught_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
