"""The leaderboard: POST /scores, GET /scores. Scores are self-reported by the client: the API checks
that they are possible (bounds below), not that the rounds were played."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.bodies import body_of, openapi_body
from api.deps import SessionDep
from api.errors import error_responses
from api.schemas import ScoreRequest
from store import scores as queries

router = APIRouter(tags=["scores"])

MAX_LIMIT = 100


class Score(BaseModel):
    id: int
    name: str
    rounds_won: int
    rounds_played: int
    total_seconds: float
    created_at: str


class Leaderboard(BaseModel):
    items: list[Score] = Field(..., description="most rounds won first, then the shortest total time")


@router.post(
    "/scores",
    operation_id="create_score",
    status_code=201,
    response_model=Score,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra=openapi_body(ScoreRequest),
)
def create_score(body: Annotated[ScoreRequest, Depends(body_of(ScoreRequest))], session: SessionDep):
    """Store a finished game's score (self-reported; see the module note); 201 once committed."""
    row = queries.add(session, **body.model_dump())
    return Score.model_validate(row, from_attributes=True)


@router.get("/scores", operation_id="leaderboard", response_model=Leaderboard, responses=error_responses(422, 503))
def leaderboard(session: SessionDep, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10):
    return {"items": [Score.model_validate(r, from_attributes=True) for r in queries.top(session, limit)]}
