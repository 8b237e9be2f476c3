"""Queries on the categories players taught, with the version counter replicas compare per request.

Every change bumps ``taught_version`` in the same transaction, and a creation takes that row
first, so concurrent creators are serialised and the limit on the number of categories holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.models import TaughtCategory, TaughtDrawing, TaughtVersion
from store.submissions import utc_now


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


def listing(db: Database) -> list[Category]:
    query = (
        select(TaughtCategory.id, TaughtCategory.name, TaughtCategory.created_at, func.count(TaughtDrawing.id))
        .join(TaughtDrawing, TaughtDrawing.category_id == TaughtCategory.id)
        .group_by(TaughtCategory.id, TaughtCategory.name, TaughtCategory.created_at)
        .order_by(TaughtCategory.id)
    )
    with db.session() as session:
        return [Category(*row) for row in session.execute(query)]


def drawings_of(db: Database, category_ids: list[int]) -> dict[int, list]:
    """The simplified drawings of some categories, by category id."""
    out: dict[int, list] = {cid: [] for cid in category_ids}
    if not category_ids:
        return out
    query = (
        select(TaughtDrawing.category_id, TaughtDrawing.simplified)
        .where(TaughtDrawing.category_id.in_(category_ids))
        .order_by(TaughtDrawing.id)
    )
    with db.session() as session:
        for cid, simplified in session.execute(query):
            out[cid].append(simplified)
    return out
