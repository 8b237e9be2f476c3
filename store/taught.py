"""Queries on the categories players taught, with the version counter replicas compare per request.

Every change bumps ``taught_version`` in the same transaction, and a creation takes that row
first, so concurrent creators are serialised and the limit on the number of categories holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.submissions import utc_now
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


def version(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(TaughtVersion.version).where(TaughtVersion.id == 1)) or 0)


def create(db: Database, name: str, sent: list, simplified: list, max_categories: int) -> Category:
    """Store a category and its drawings in one transaction, committed before this returns."""
    with db.session() as session:
        _bump(session)  # first: holds the counter row's lock until the commit
        count = session.scalar(select(func.count()).select_from(TaughtCategory))
        if count >= max_categories:
            raise TooManyCategoriesError(
                f"there are already {count} taught categories (at most {max_categories}): delete one first"
            )
        category = TaughtCategory(name=name, created_at=utc_now())
        session.add(category)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise NameTakenError(f"a taught category named {name!r} exists already") from None
        pairs = zip(sent, simplified, strict=True)
        session.add_all(TaughtDrawing(category_id=category.id, strokes=s, simplified=d) for s, d in pairs)
        session.commit()
        return Category(category.id, category.name, category.created_at, len(simplified))


def remove(db: Database, name: str) -> bool:
    with db.session() as session:
        cid = session.scalar(select(TaughtCategory.id).where(TaughtCategory.name == name))
        if cid is None:
            return False
        session.execute(delete(TaughtDrawing).where(TaughtDrawing.category_id == cid))
        session.execute(delete(TaughtCategory).where(TaughtCategory.id == cid))
        _bump(session)
        session.commit()
        return True


def _listing(session) -> list[Category]:
    query = (
        select(TaughtCategory.id, TaughtCategory.name, TaughtCategory.created_at, func.count(TaughtDrawing.id))
        .join(TaughtDrawing, TaughtDrawing.category_id == TaughtCategory.id)
        .group_by(TaughtCategory.id, TaughtCategory.name, TaughtCategory.created_at)
        .order_by(TaughtCategory.id)
    )
    return [Category(*row) for row in session.execute(query)]


def listing(db: Database) -> list[Category]:
    with db.session() as session:
        return _listing(session)


@dataclass(frozen=True)
class Snapshot:
    version: int
    categories: list[Category]
    drawings: dict[int, list]  # simplified drawings of the categories asked for that still exist


def snapshot(db: Database, known: frozenset[int] = frozenset()) -> Snapshot:
    """The version, the categories and the drawings of those not in ``known``, read in one session: a
    category deleted meanwhile is absent, never listed without its drawings."""
    with db.session() as session:
        version = int(session.scalar(select(TaughtVersion.version).where(TaughtVersion.id == 1)) or 0)
        categories = _listing(session)
        ids = [c.id for c in categories if c.id not in known]
        drawings: dict[int, list] = {}
        if ids:
            query = (
                select(TaughtDrawing.category_id, TaughtDrawing.simplified)
                .where(TaughtDrawing.category_id.in_(ids))
                .order_by(TaughtDrawing.id)
            )
            for cid, simplified in session.execute(query):
                drawings.setdefault(cid, []).append(simplified)
    return Snapshot(version, [c for c in categories if c.id in drawings or c.id in known], drawings)
