"""The leaderboard: POST /scores, GET /scores. Scores are self-reported by the client: the API checks
that they are possible (bounds below), not that the rounds were played."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from api.deps import SessionDep
from api.errors import error_responses
from api.routes.submissions import valid_unicode
from store import scores as queries
from store.tables import MAX_NAME_LENGTH, MAX_ROUNDS, MAX_SECONDS_PER_ROUND

router = APIRouter(tags=["scores"])

MAX_LIMIT = 100
NAME_PUNCTUATION = " _-."


def valid_name(name: str) -> str:
    name = valid_unicode(name).strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1-{MAX_NAME_LENGTH} characters (got {len(name)})")
    bad = sorted({c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise ValueError(f"name may hold letters, digits, space, '_', '-' and '.' only (not {shown})")
    return name


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Annotated[str, AfterValidator(valid_name)] = Field(
        ..., description=f"1-{MAX_NAME_LENGTH} letters, digits, spaces, '_', '-', '.'"
    )
    rounds_won: int = Field(..., ge=0, le=MAX_ROUNDS)
    rounds_played: int = Field(..., ge=1, le=MAX_ROUNDS)
    total_seconds: float = Field(..., gt=0, description=f"at most {MAX_SECONDS_PER_ROUND} s per round played")

    @model_validator(mode="after")
    def _possible(self) -> ScoreRequest:
        if self.rounds_won > self.rounds_played:
            raise ValueError(f"rounds_won ({self.rounds_won}) > rounds_played ({self.rounds_played})")
        if self.total_seconds > MAX_SECONDS_PER_ROUND * self.rounds_played:
            raise ValueError(
                f"total_seconds ({self.total_seconds:g}) > {MAX_SECONDS_PER_ROUND} s x {self.rounds_played} rounds"
            )
        return self


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
)
def create_score(body: ScoreRequest, session: SessionDep):
    """Store a finished game's score (self-reported; see the module note); 201 once committed."""
    row = queries.add(session, **body.model_dump())
    return Score.model_validate(row, from_attributes=True)


@router.get("/scores", operation_id="leaderboard", response_model=Leaderboard, responses=error_responses(422, 503))
def leaderboard(session: SessionDep, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10):
    return {"items": [Score.model_validate(r, from_attributes=True) for r in queries.top(session, limit)]}
