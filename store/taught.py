"""Queries on the categories players taught, with the version counter replicas compare per request.

Every change bumps ``taught_version`` in the same transaction, and a creation takes that row
first, so concurrent creators are serialised and the limit on the number of categories holds.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.names import key
from store.submissions import Deleted, hash_token, utc_now
from store.tables import TaughtCategory, TaughtDrawing, TaughtVersion


class NameTakenError(ValueError):
    pass


class TooManyCategoriesError(ValueError):
    pass


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    created_at: str
    examples: int


def _bump(session) -> None:
    session.execute(update(TaughtVersion).where(TaughtVersion.id == 1).values(version=TaughtVersion.version + 1))


def version(session: Session) -> int:
    return int(session.scalar(select(TaughtVersion.version).where(TaughtVersion.id == 1)) or 0)


@dataclass(frozen=True)
class Embedded:
    """A category's drawings as a model version embedded them: float32 (drawings, dim), row-major."""

    vectors: bytes
    by: str


def create(
    session: Session, name: str, sent: list, simplified: list, max_categories: int, embedded: Embedded | None = None
) -> tuple[Category, str]:
    """Store a category, its drawings and their embeddings in one transaction, committed before this
    returns; also returns the delete token (stored only hashed)."""
    token = secrets.token_urlsafe(24)
    _bump(session)  # first: holds the counter row's lock until the commit
    count = session.scalar(select(func.count()).select_from(TaughtCategory))
    if count >= max_categories:
        raise TooManyCategoriesError(
            f"there are already {count} taught categories (at most {max_categories}): delete one first"
        )
    taken = session.scalar(select(TaughtCategory.name).where(TaughtCategory.name_key == key(name)))
    if taken is not None:
        raise NameTakenError(f"a taught category named {taken!r} exists already")
    category = TaughtCategory(
        name=name,
        name_key=key(name),
        created_at=utc_now(),
        delete_token_hash=hash_token(token),
        embeddings=embedded.vectors if embedded else None,
        embedded_by=embedded.by if embedded else None,
    )
    session.add(category)
    try:
        session.flush()
    except IntegrityError:  # taken meanwhile (another database writer)
        session.rollback()
        raise NameTakenError(f"a taught category named {name!r} exists already") from None
    pairs = zip(sent, simplified, strict=True)
    session.add_all(TaughtDrawing(category_id=category.id, strokes=s, simplified=d) for s, d in pairs)
    session.commit()
    return Category(category.id, category.name, category.created_at, len(simplified)), token


def remove(session: Session, name: str, token: str | None) -> Deleted:
    """Delete the category named ``name`` (any name with the same key) when ``token`` is its delete token."""
    _bump(session)  # first, as in create: a read that upgrades to a write fails at once on SQLite
    row = session.execute(
        select(TaughtCategory.id, TaughtCategory.delete_token_hash).where(TaughtCategory.name_key == key(name))
    ).first()
    if row is None:
        return Deleted.NOT_FOUND  # rolled back: nothing changed, the counter neither
    cid, stored = row
    if token is None or stored is None or not hmac.compare_digest(stored, hash_token(token)):
        return Deleted.WRONG_TOKEN
    session.execute(delete(TaughtDrawing).where(TaughtDrawing.category_id == cid))
    session.execute(delete(TaughtCategory).where(TaughtCategory.id == cid))
    session.commit()
    return Deleted.DELETED


def listing(session: Session) -> list[Category]:
    """Every taught category with its number of drawings, oldest first."""
    query = (
        select(TaughtCategory.id, TaughtCategory.name, TaughtCategory.created_at, func.count(TaughtDrawing.id))
        .join(TaughtDrawing, TaughtDrawing.category_id == TaughtCategory.id)
        .group_by(TaughtCategory.id, TaughtCategory.name, TaughtCategory.created_at)
        .order_by(TaughtCategory.id)
    )
    return [Category(*row) for row in session.execute(query)]


@dataclass(frozen=True)
class Snapshot:
    version: int
    categories: list[Category]
    embedded: dict[int, bytes] = field(default_factory=dict)  # stored embeddings, by the model asked for
    drawings: dict[int, list] = field(default_factory=dict)  # simplified drawings of the others


def snapshot(session: Session, known: frozenset[int] = frozenset(), embedded_by: str = "") -> Snapshot:
    """The version and the categories, and for those not in ``known`` their embeddings by
    ``embedded_by`` when stored, else their drawings; read in one session: a category deleted
    meanwhile is absent, never listed without what it needs."""
    version = int(session.scalar(select(TaughtVersion.version).where(TaughtVersion.id == 1)) or 0)
    categories = listing(session)
    ids = [c.id for c in categories if c.id not in known]
    embedded: dict[int, bytes] = {}
    if ids:
        query = select(TaughtCategory.id, TaughtCategory.embeddings).where(
            TaughtCategory.id.in_(ids), TaughtCategory.embedded_by == embedded_by
        )
        embedded = {cid: vectors for cid, vectors in session.execute(query) if vectors}
    missing = [cid for cid in ids if cid not in embedded]
    drawings: dict[int, list] = {}
    if missing:
        query = (
            select(TaughtDrawing.category_id, TaughtDrawing.simplified)
            .where(TaughtDrawing.category_id.in_(missing))
            .order_by(TaughtDrawing.id)
        )
        for cid, simplified in session.execute(query):
            drawings.setdefault(cid, []).append(simplified)
    present = set(known) | set(embedded) | set(drawings)
    return Snapshot(version, [c for c in categories if c.id in present], embedded, drawings)


def keep_embeddings(session: Session, category_id: int, embedded: Embedded) -> None:
    """Store a category's embeddings by a new model version, so the other workers need not compute them."""
    session.execute(
        update(TaughtCategory)
        .where(TaughtCategory.id == category_id)
        .values(embeddings=embedded.vectors, embedded_by=embedded.by)
    )
    session.commit()
