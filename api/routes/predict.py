"""POST /predict and /predict/batch: top-k guesses for bitmaps, canvas images or strokes."""

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.deps import InferenceDep, RegistryDep, SettingsDep
from api.inference import InputError, Prepared, UnavailableError, needs_strokes, predict, prepare
from api.registry import Registry
from api.schemas import BatchRequest, BatchResponse, PredictRequest, PredictResponse
from api.settings import Settings
from sketch.strokes import EmptyDrawingError

router = APIRouter(tags=["predict"])

ERRORS = {
    413: {"description": "body larger than MAX_BODY_BYTES"},
    422: {"description": "invalid drawing (empty, wrong shape, limits, unknown model...); detail says what"},
    503: {"description": "no model loaded"},
}


def _prepare_or_raise(item: PredictRequest, settings: Settings, registry: Registry, where: str = "") -> Prepared:
    try:
        return prepare(item, settings, registry)
    except (InputError, EmptyDrawingError) as exc:
        raise HTTPException(422, f"{where}{exc}") from None
    except UnavailableError as exc:
        raise HTTPException(503, str(exc)) from None


@router.post("/predict", response_model=PredictResponse, response_model_exclude_none=True, responses=ERRORS)
async def predict_one(
    body: PredictRequest, settings: SettingsDep, registry: RegistryDep, inference: InferenceDep
) -> PredictResponse:
    # Nothing CPU-heavy runs on the event loop: a bitmap only needs checking (microseconds), strokes
    # and images are preprocessed in the thread pool, and the model runs in the inference thread.
    if body.bitmap is not None and not needs_strokes(body.model):
        prepared = _prepare_or_raise(body, settings, registry)
    else:
        prepared = await run_in_threadpool(_prepare_or_raise, body, settings, registry)
    return await inference.predict(prepared)


# Plain `def`: FastAPI runs it in its thread pool, so a large batch never blocks the event loop.


@router.post("/predict/batch", response_model=BatchResponse, response_model_exclude_none=True, responses=ERRORS)
def predict_batch(body: BatchRequest, settings: SettingsDep, registry: RegistryDep) -> BatchResponse:
    if len(body.items) > settings.max_batch_items:
        raise HTTPException(422, f"too many items: {len(body.items)} > {settings.max_batch_items}")
    prepared = [_prepare_or_raise(item, settings, registry, f"items[{i}]: ") for i, item in enumerate(body.items)]
    return BatchResponse(results=predict(prepared, registry))
