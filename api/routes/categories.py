"""Categories taught by players: POST /categories, GET /categories, DELETE /categories/{name}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.bodies import body_of, openapi_body
from api.deps import SessionDep, SettingsDep
from api.errors import error_responses
from api.schemas import CategoryRequest
from api.taught import TaughtClasses, simplify_drawings
from store import taught as taught_rows
from store.names import key
from store.submissions import Deleted
from store.taught import NameTakenError, TooManyCategoriesError

router = APIRouter(tags=["categories"])


POST_ERRORS = error_responses(
    400,
    409,
    413,
    415,
    422,
    503,
    e409="the name exists already, or one that looks the same (a taught category or one of the model's), or "
    "the limit of taught categories is reached",
    e422="bad name, too few or too many drawings, an empty or invalid drawing; detail says which",
)
GET_ERRORS = error_responses(503)
DELETE_ERRORS = error_responses(
    403, 404, 422, 503, e403="missing or wrong X-Delete-Token", e404="no taught category of that name"
)


async def get_taught(request: Request) -> TaughtClasses:
    return request.app.state.taught


TaughtDep = Annotated[TaughtClasses, Depends(get_taught)]


class CategoryOut(BaseModel):
    name: str
    examples: int
    created_at: str


class CategoryCreated(CategoryOut):
    delete_token: str = Field(
        ..., description="send it as X-Delete-Token to DELETE this category; shown only now, stored only hashed"
    )


class CategoryList(BaseModel):
    items: list[CategoryOut]
    max_categories: int


def _create(body: CategoryRequest, taught: TaughtClasses, max_categories: int) -> CategoryCreated:
    model = taught.model
    if model is None:
        raise HTTPException(503, "taught categories need the prototypes model, which is not loaded")
    built_in = {key(c): c for c in model.card.classes}
    if key(body.name) in built_in:
        raise HTTPException(409, f"{built_in[key(body.name)]!r} is already a category of the model")
    try:
        simplified = simplify_drawings(body.drawings)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    # Embedded once, here: every worker loads the stored vectors.
    embedded = taught.embed(simplified)
    try:
        with taught.database.session() as session:
            created, token = taught_rows.create(session, body.name, body.drawings, simplified, max_categories, embedded)
    except (NameTakenError, TooManyCategoriesError) as exc:
        raise HTTPException(409, str(exc)) from None
    # Committed: the answer says so whatever happens next. This replica answers it at once, the
    # others within api.taught.POLL_SECONDS.
    taught.refresh_quietly()
    return CategoryCreated(
        name=created.name, examples=created.examples, created_at=created.created_at, delete_token=token
    )


@router.post(
    "/categories",
    operation_id="create_category",
    status_code=201,
    responses=POST_ERRORS,
    openapi_extra=openapi_body(CategoryRequest),
)
async def create_category(
    body: Annotated[CategoryRequest, Depends(body_of(CategoryRequest))], taught: TaughtDep, settings: SettingsDep
) -> CategoryCreated:
    """Teach a category from a few drawings; it is guessed among all the others from the next request on."""
    return await run_in_threadpool(_create, body, taught, settings.max_taught_categories)


@router.get("/categories", operation_id="list_categories", responses=GET_ERRORS)
def list_categories(session: SessionDep, settings: SettingsDep) -> CategoryList:
    """Taught categories, oldest first, with how many drawings each was taught from."""
    items = taught_rows.listing(session)
    return CategoryList(
        items=[CategoryOut(name=c.name, examples=c.examples, created_at=c.created_at) for c in items],
        max_categories=settings.max_taught_categories,
    )


@router.delete("/categories/{name}", operation_id="delete_category", status_code=204, responses=DELETE_ERRORS)
def delete_category(
    name: str,
    taught: TaughtDep,
    session: SessionDep,
    x_delete_token: Annotated[str | None, Header(max_length=256, description="the token from the 201")] = None,
) -> Response:
    """Delete a taught category: only with the delete token its teacher was given."""
    outcome = taught_rows.remove(session, name, x_delete_token)
    if outcome is Deleted.NOT_FOUND:
        raise HTTPException(404, f"no taught category named {name!r}")
    if outcome is Deleted.WRONG_TOKEN:
        raise HTTPException(403, "X-Delete-Token is missing or does not match this category")
    taught.refresh_quietly()
    return Response(status_code=204)
