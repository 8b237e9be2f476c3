"""Categories taught by players: POST /categories, GET /categories, DELETE /categories/{name}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import SettingsDep
from api.errors import error_responses
from api.schemas import CategoryRequest
from api.taught import TaughtClasses, simplify_drawings
from store import taught as taught_rows
from store.taught import NameTakenError, TooManyCategoriesError

router = APIRouter(tags=["categories"])


POST_ERRORS = error_responses(
    400,
    409,
    413,
    415,
    422,
    503,
    e409="the name exists already (a taught category or one of the model's), or the limit of taught categories "
    "is reached",
    e422="bad name, too few or too many drawings, an empty or invalid drawing; detail says which",
)
GET_ERRORS = error_responses(503)
DELETE_ERRORS = error_responses(404, 503, e404="no taught category of that name")


async def get_taught(request: Request) -> TaughtClasses:
    return request.app.state.taught


TaughtDep = Annotated[TaughtClasses, Depends(get_taught)]


class CategoryOut(BaseModel):
    name: str
    examples: int
    created_at: str


class CategoryList(BaseModel):
    items: list[CategoryOut]
    max_categories: int


def _create(body: CategoryRequest, taught: TaughtClasses, max_categories: int) -> CategoryOut:
    model = taught.model
    if model is None:
        raise HTTPException(503, "taught categories need the prototypes model, which is not loaded")
    known = {c.casefold(): c for c in model.card.classes}
    if body.name.casefold() in known:
        raise HTTPException(409, f"{known[body.name.casefold()]!r} is already a category of the model")
    try:
        simplified = simplify_drawings(body.drawings)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        created = taught_rows.create(taught.database, body.name, body.drawings, simplified, max_categories)
    except (NameTakenError, TooManyCategoriesError) as exc:
        raise HTTPException(409, str(exc)) from None
    # Committed: the answer says so whatever happens next. This replica answers it at once, the
    # others within api.taught.POLL_SECONDS.
    taught.refresh_quietly()
    return CategoryOut(name=created.name, examples=created.examples, created_at=created.created_at)


@router.post("/categories", operation_id="create_category", status_code=201, responses=POST_ERRORS)
async def create_category(body: CategoryRequest, taught: TaughtDep, settings: SettingsDep) -> CategoryOut:
    """Teach a category from a few drawings; it is guessed among all the others from the next request on."""
    return await run_in_threadpool(_create, body, taught, settings.max_taught_categories)


@router.get("/categories", operation_id="list_categories", responses=GET_ERRORS)
def list_categories(taught: TaughtDep, settings: SettingsDep) -> CategoryList:
    """Taught categories, oldest first, with how many drawings each was taught from."""
    items = taught_rows.listing(taught.database)
    return CategoryList(
        items=[CategoryOut(name=c.name, examples=c.examples, created_at=c.created_at) for c in items],
        max_categories=settings.max_taught_categories,
    )


@router.delete("/categories/{name}", operation_id="delete_category", status_code=204, responses=DELETE_ERRORS)
def delete_category(name: str, taught: TaughtDep) -> Response:
    if not taught_rows.remove(taught.database, " ".join(name.split())):
        raise HTTPException(404, f"no taught category named {name!r}")
    taught.refresh_quietly()
    return Response(status_code=204)
