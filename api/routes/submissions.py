"""Drawings players chose to keep: create, page, stats, read, thumbnail, delete with the token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from api.bodies import body_of, openapi_body
from api.deps import SessionDep
from api.errors import error_responses
from api.schemas import MAX_POINTS, Canvas, Prediction, Stroke, SubmissionRequest
from api.thumbnails import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, render_png
from sketch.strokes import normalize, parse_strokes, to_dataset_format
from store import submissions as queries
from store.tables import MAX_LABEL_LENGTH
from store.tables import Submission as Row

router = APIRouter(tags=["submissions"])

MAX_PAGE = 100
# Ids and offsets are 64-bit signed integers in both databases.
MAX_INT64 = 2**63 - 1

# Every error has the one shape of api.errors; these are the statuses each route can answer.
POST_ERRORS = error_responses(400, 413, 415, 422, 503)
READ_ERRORS = error_responses(404, 422, 503)


SubmissionId = Annotated[int, Path(ge=1, le=MAX_INT64, description="a submission's id")]


class Submission(BaseModel):
    id: int
    created_at: str
    label: str
    label_source: str = Field(..., description="player, prompt, confirmed, or unknown for rows stored before it")
    strokes: list[Stroke] = Field(..., description="as sent, canvas pixels, dataset form [[x...], [y...]]")
    simplified: list[list[list[int]]] = Field(..., description="as the simplified dataset: 0-255, RDP 2.0")
    canvas: Canvas
    predictions: list[Prediction] | None = None


class CreatedSubmission(Submission):
    delete_token: str = Field(
        ..., description="send it as X-Delete-Token to DELETE this submission; shown only now, stored only hashed"
    )


class SubmissionSummary(BaseModel):
    """A submission in a list: everything but its strokes (``GET /submissions/{id}`` has them), so a
    page stays small whatever was drawn."""

    id: int
    created_at: str
    label: str
    label_source: str = Field(..., description="player, prompt, confirmed, or unknown for rows stored before it")
    canvas: Canvas
    predictions: list[Prediction] | None = None
    strokes_count: int = Field(..., description="strokes in the drawing")
    points_count: int = Field(..., description="points in the drawing, all strokes")
    thumbnail: str = Field(..., description="the drawing as a PNG: GET this path (optionally with ?size=)")


class SubmissionPage(BaseModel):
    items: list[SubmissionSummary]
    total: int
    limit: int
    offset: int


class SubmissionStats(BaseModel):
    total: int
    labels: dict[str, int] = Field(..., description="number of submissions per label, most first")


def _described(row: Row) -> dict:
    """What a list and a single read both say of a submission."""
    return {
        "id": row.id,
        "created_at": row.created_at,
        "label": row.label,
        "label_source": row.label_source,
        "canvas": {"width": row.canvas_width, "height": row.canvas_height},
        "predictions": row.predictions,
    }


def _out(row: Row) -> dict:
    return _described(row) | {"strokes": row.strokes, "simplified": row.simplified}


def _summary(row: Row) -> dict:
    return _described(row) | {
        "strokes_count": row.n_strokes,
        "points_count": row.n_points,
        "thumbnail": f"/submissions/{row.id}/thumbnail.png",
    }


def _found(session: SessionDep, submission_id: int) -> Row:
    row = queries.get(session, submission_id)
    if row is None:
        raise HTTPException(404, f"no submission with id {submission_id}")
    return row


# Plain `def` routes: FastAPI runs them in its thread pool, so the commit's fsync never blocks the loop.
@router.post(
    "/submissions",
    operation_id="create_submission",
    status_code=201,
    response_model=CreatedSubmission,
    responses=POST_ERRORS,
    openapi_extra=openapi_body(SubmissionRequest),
)
def create_submission(body: Annotated[SubmissionRequest, Depends(body_of(SubmissionRequest))], session: SessionDep):
    """Store a drawing; the 201 comes only after the row is committed (on disk, or in PostgreSQL)."""
    try:
        parsed = parse_strokes(body.strokes, None, MAX_POINTS)
        simplified = to_dataset_format(normalize(parsed))
    except ValueError as exc:  # includes EmptyDrawingError
        raise HTTPException(422, f"strokes: {exc}") from None
    row, token = queries.add(
        session,
        label=body.label,
        label_source=body.label_source,
        strokes=body.strokes,
        simplified=simplified,
        canvas=(body.canvas.width, body.canvas.height),
        predictions=None if body.predictions is None else [p.model_dump() for p in body.predictions],
    )
    return {**_out(row), "delete_token": token}


@router.get(
    "/submissions", operation_id="list_submissions", response_model=SubmissionPage, responses=error_responses(422, 503)
)
def list_submissions(
    session: SessionDep,
    label: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH, description="only this label")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
):
    """Submissions, newest first, without their strokes (``GET /submissions/{id}`` has them)."""
    rows, total = queries.page(session, label.strip() if label else None, limit, offset)
    return {"items": [_summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get(
    "/submissions/stats",
    operation_id="submission_stats",
    response_model=SubmissionStats,
    responses=error_responses(503),
)
def submission_stats(session: SessionDep):
    labels = queries.stats(session)
    return {"total": sum(labels.values()), "labels": labels}


@router.get(
    "/submissions/{submission_id:int}", operation_id="get_submission", response_model=Submission, responses=READ_ERRORS
)
def get_submission(submission_id: SubmissionId, session: SessionDep):
    return _out(_found(session, submission_id))


@router.get(
    "/submissions/{submission_id:int}/thumbnail.png",
    operation_id="submission_thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the drawing as a PNG"}, **READ_ERRORS},
)
def submission_thumbnail(
    submission_id: SubmissionId,
    session: SessionDep,
    size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description="side in pixels")] = DEFAULT_SIZE,
):
    """The drawing as a PNG, dark ink on white, drawn from its simplified strokes."""
    png = render_png(_found(session, submission_id).simplified, size)
    # Short: a deleted drawing must not linger in caches.
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.delete(
    "/submissions/{submission_id:int}",
    operation_id="delete_submission",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404, 422, 503, e403="missing or wrong X-Delete-Token"),
)
def delete_submission(
    submission_id: SubmissionId,
    session: SessionDep,
    x_delete_token: Annotated[str | None, Header(max_length=256, description="the token from the 201")] = None,
):
    """Delete a submission for good (it is then gone from the lists, the stats and the export)."""
    outcome = queries.remove(session, submission_id, x_delete_token)
    if outcome is queries.Deleted.NOT_FOUND:
        raise HTTPException(404, f"no submission with id {submission_id}")
    if outcome is queries.Deleted.WRONG_TOKEN:
        raise HTTPException(403, "X-Delete-Token is missing or does not match this submission")
    return Response(status_code=204)
