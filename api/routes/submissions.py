"""Drawings players chose to keep: POST /submissions, paged GET /submissions, GET /submissions/stats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import SettingsDep, SubmissionsDep
from api.schemas import MAX_POINTS, Prediction, Stroke
from api.submissions import StoreUnavailableError

router = APIRouter(tags=["submissions"])

MAX_LABEL_LENGTH = 64
# The same bound as the largest image /predict accepts (MAX_IMAGE_PIXELS is 4096x4096).
MAX_CANVAS_SIDE = 4096
MAX_PREDICTIONS = 50
MAX_PAGE = 100

ERRORS = {
    413: {"description": "body larger than MAX_BODY_BYTES"},
    422: {"description": "invalid submission (label, canvas, empty drawing, limits); detail says what"},
    503: {"description": "the submissions database cannot be opened or written"},
}


class Canvas(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(..., ge=1, le=MAX_CANVAS_SIDE, description="canvas width in pixels")
    height: int = Field(..., ge=1, le=MAX_CANVAS_SIDE, description="canvas height in pixels")


class SubmissionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    label: str = Field(..., description=f"what the drawing shows (1-{MAX_LABEL_LENGTH} characters)")
    strokes: list[Stroke] = Field(..., description="strokes [[x...], [y...]] (or with [t...]) in canvas pixels")
    canvas: Canvas
    predictions: list[Prediction] | None = Field(
        None, max_length=MAX_PREDICTIONS, description="what the model guessed, kept for later analysis"
    )

    @field_validator("label")
    @classmethod
    def _label(cls, label: str) -> str:
        label = label.strip()
        if not label:
            raise ValueError("label must not be empty")
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(f"label is too long: {len(label)} > {MAX_LABEL_LENGTH} characters")
        if not label.isprintable():
            raise ValueError("label must not contain control characters")
        return label


class Submission(BaseModel):
    id: int
    created_at: str
    label: str
    strokes: list[Stroke] = Field(..., description="as sent, canvas pixels, dataset form [[x...], [y...]]")
    simplified: list[list[list[int]]] = Field(..., description="as the simplified dataset: 0-255, RDP 2.0")
    canvas: Canvas
    predictions: list[Prediction] | None = None


class SubmissionPage(BaseModel):
    items: list[Submission]
    total: int
    limit: int
    offset: int


class SubmissionStats(BaseModel):
    total: int
    labels: dict[str, int] = Field(..., description="number of submissions per label, most first")


def _unavailable(exc: StoreUnavailableError) -> HTTPException:
    return HTTPException(503, str(exc))


# Plain `def` routes: FastAPI runs them in its thread pool, so the fsync never blocks the event loop.
@router.post("/submissions", status_code=201, response_model=Submission, responses=ERRORS)
def create_submission(body: SubmissionRequest, store: SubmissionsDep, settings: SettingsDep):
    """Store a drawing; the 201 comes only after the row is committed to disk."""
    predictions = None if body.predictions is None else [p.model_dump() for p in body.predictions]
    try:
        return store.add(
            body.label,
            body.strokes,
            (body.canvas.width, body.canvas.height),
            predictions,
            None,
            MAX_POINTS,
        )
    except StoreUnavailableError as exc:
        raise _unavailable(exc) from None
    except ValueError as exc:  # includes EmptyDrawingError
        raise HTTPException(422, f"strokes: {exc}") from None


@router.get("/submissions", response_model=SubmissionPage, responses={503: ERRORS[503]})
def list_submissions(
    store: SubmissionsDep,
    label: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH, description="only this label")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    """Submissions, newest first."""
    try:
        items, total = store.page(label.strip() if label else None, limit, offset)
    except StoreUnavailableError as exc:
        raise _unavailable(exc) from None
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/submissions/stats", response_model=SubmissionStats, responses={503: ERRORS[503]})
def submission_stats(store: SubmissionsDep):
    try:
        labels = store.stats()
    except StoreUnavailableError as exc:
        raise _unavailable(exc) from None
    return {"total": sum(labels.values()), "labels": labels}


@router.get("/submissions/{submission_id}", response_model=Submission, responses={404: {}, 503: ERRORS[503]})
def get_submission(submission_id: int, store: SubmissionsDep):
    try:
        item = store.get(submission_id)
    except StoreUnavailableError as exc:
        raise _unavailable(exc) from None
    if item is None:
        raise HTTPException(404, f"no submission with id {submission_id}")
    return item
