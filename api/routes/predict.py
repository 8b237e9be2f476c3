"""POST /predict and /predict/batch: top-k guesses for bitmaps, canvas images or strokes.

The single-drawing route is the hot path, so it does the least work that keeps the contract:
pydantic-core parses and validates the raw body in one pass (no intermediate Python objects from
``json.loads``), a bitmap or a drawing of a player's size is prepared and run right on the event
loop (a fraction of a millisecond of preprocessing and model: a thread hand-off would cost more
than it saves), and so is the first step of a small drawing's explanation; larger drawings, images
and the rest of explanations are prepared and run in the thread pool in one hop,
and the answer is serialised once, straight to bytes (returning a ``Response`` skips FastAPI's
second validation of the answer).
"""

import base64
import binascii

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic_core import to_json
from starlette.datastructures import State

from api.bodies import openapi_body, parse
from api.errors import error_responses
from api.inference import (
    Explaining,
    InputError,
    Prepared,
    UnavailableError,
    explain_rest,
    explain_start,
    explained,
    predict,
    prepare,
)
from api.schemas import (
    MAX_BATCH_POINTS,
    MAX_BATCH_VALUES,
    MAX_VALUES,
    BatchRequest,
    BatchResponse,
    PredictRequest,
    PredictResponse,
)
from api.settings import Settings, get_settings
from models.loading import LoadedModels
from sketch.image import header_pixels
from sketch.strokes import EmptyDrawingError, pen_path

router = APIRouter(tags=["predict"])

ERRORS = error_responses(400, 413, 415, 422, 503)
# Far beyond a player's drawing (the official ones: 180 points median, 1,174 at most; a canvas
# PNG ~10-40 KB): such requests take turns in the thread pool (see _in_pool).
COSTLY_POINTS = 5_000
COSTLY_IMAGE_CHARS = 400_000
# What an image costs is its pixels, not its bytes: a 70 KB PNG may hold 4096x4096 of them.
COSTLY_IMAGE_PIXELS = 1_000_000
# Base64 characters read for an image's header (PNG: the first 33 bytes; JPEG: after its metadata).
HEADER_CHARS = 64 * 1024
# Up to here a drawing is answered on the event loop: its preprocessing (compiled: sketch.simplify)
# costs less than the model even for the longest official drawings (bench/preprocess.py), and a
# player's drawing is well below this.
INLINE_POINTS = 1_000
# Such a drawing's explanation is made on the event loop too, as far as its first batched call
# (leave-one-out) goes, when it has at most this many strokes and a pen path at most this long in
# the 0-255 space (what rendering its variants costs): a few milliseconds at most, of which the
# hand-off to the thread pool would be a tenth. Pairs of strokes, larger drawings and bitmaps are
# explained in the pool.
QUICK_EXPLAINED_STROKES = 24
QUICK_PEN_PATH = 12_000


def _points(items: list[PredictRequest]) -> int:
    return sum(len(axes[0]) for item in items if item.strokes for axes in item.strokes)


def _image_pixels(image: str) -> int:
    """An image field's pixels from its header; 0 when it cannot be read (prepare then says why)."""
    text = image.partition(",")[2] if image.startswith("data:") else image
    head = text[:HEADER_CHARS]
    try:
        data = base64.b64decode(head[: len(head) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return 0
    return header_pixels(data)


def _costly(items: list[PredictRequest], points: int) -> bool:
    # An explanation runs the model once per stroke (or patch), and the pairs of strokes after that.
    if any(item.explain for item in items) or points >= COSTLY_POINTS:
        return True
    images = [item.image for item in items if item.image]
    return sum(map(len, images)) >= COSTLY_IMAGE_CHARS or sum(map(_image_pixels, images)) >= COSTLY_IMAGE_PIXELS


async def _in_pool(
    state: State, items: list[PredictRequest], points: int, settings: Settings, loaded: LoadedModels, batch: bool
):
    """``_answer`` in the thread pool; costly requests one at a time per process (``points``: the
    items' pen points, counted once by the route).

    Thread-pool work shares the GIL with the event loop, which re-takes it at every step of every
    other request (a ``/health`` probe takes a dozen): with several long requests at once, each of
    those steps queues behind all of them (4 batches of 26 long zigzags: /health's worst probe
    ~60-85 ms); taking turns keeps it to one.
    """
    if not _costly(items, points):
        return await run_in_threadpool(_answer, items, settings, loaded, batch)
    async with state.costly:
        return await run_in_threadpool(_answer, items, settings, loaded, batch)


def _answer(items: list[PredictRequest], settings: Settings, loaded: LoadedModels, batch: bool) -> list[dict]:
    """Prepare every item, then one model call per model."""
    return predict(_prepared(items, settings, loaded, batch))


def _prepared(items: list[PredictRequest], settings: Settings, loaded: LoadedModels, batch: bool) -> list[Prepared]:
    """Every item prepared; errors name the item in a batch."""
    prepared = []
    for i, item in enumerate(items):
        try:
            prepared.append(prepare(item, settings, loaded))
        except (InputError, EmptyDrawingError) as exc:
            raise HTTPException(422, f"items[{i}]: {exc}" if batch else str(exc)) from None
        except UnavailableError as exc:
            raise HTTPException(503, str(exc)) from None
    return prepared


def _explains_quickly(p: Prepared) -> bool:
    return p.drawing is not None and len(p.drawing) <= QUICK_EXPLAINED_STROKES and pen_path(p.drawing) <= QUICK_PEN_PATH


async def _explained(state: State, body: PredictRequest, settings: Settings, loaded: LoadedModels) -> dict:
    """An explanation of a drawing of a player's size: on the event loop when it is quick
    (``QUICK_*``: one after the other, as the loop runs them), else, and for its pairs of strokes,
    in the thread pool, taking turns with the other costly requests.

    The quick step does not wait for those turns: it would then be made in the pool whenever
    another explanation's pairs are, and under load explanations would stay there, queued."""
    (p,) = _prepared([body], settings, loaded, batch=False)
    started = explain_start(p) if _explains_quickly(p) else None
    if started is not None and started.done:
        return explained(started)
    async with state.costly:
        return explained(await run_in_threadpool(_explain_rest, p, started))


def _explain_rest(p: Prepared, started: Explaining | None) -> Explaining:
    return explain_rest(started if started is not None else explain_start(p))


@router.post(
    "/predict",
    operation_id="predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=openapi_body(PredictRequest),
)
async def predict_one(request: Request) -> Response:
    body = await parse(request, PredictRequest, MAX_VALUES)
    return Response(to_json(await answer_one(request.app.state, body)), media_type="application/json")


async def answer_one(state: State, body: PredictRequest) -> dict:
    """``/predict``'s answer to ``body`` (``api.lane`` answers most requests with it, beneath the route)."""
    # The app's state read directly, not through FastAPI dependencies, whose resolution is a
    # visible share of a bitmap's whole request (bench/middleware.py).
    settings, loaded = get_settings(), state.models
    points = _points([body])
    inline = body.bitmap is not None or (body.strokes is not None and points <= INLINE_POINTS)
    if inline and body.explain:
        return await _explained(state, body, settings, loaded)
    if inline:
        return _answer([body], settings, loaded, batch=False)[0]
    (answer,) = await _in_pool(state, [body], points, settings, loaded, False)
    return answer


@router.post(
    "/predict/batch",
    operation_id="predict_batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=openapi_body(BatchRequest),
)
async def predict_batch(request: Request) -> Response:
    settings, loaded = get_settings(), request.app.state.models
    body = await parse(request, BatchRequest, MAX_BATCH_VALUES)
    points = _points(body.items)
    explained = [i for i, item in enumerate(body.items) if item.explain]
    if explained:
        raise HTTPException(422, f"items[{explained[0]}]: explain is answered by /predict, one drawing at a time")
    if points > MAX_BATCH_POINTS:
        raise HTTPException(422, f"too many points in the batch: {points} > {MAX_BATCH_POINTS}; send fewer items")
    # In the thread pool: a large batch never blocks the event loop.
    return Response(
        to_json({"results": await _in_pool(request.app.state, body.items, points, settings, loaded, True)}),
        media_type="application/json",
    )
