"""POST /predict and /predict/batch: top-k guesses for bitmaps, canvas images or strokes."""

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.deps import InferenceDep, ModelsDep, SettingsDep
from api.errors import error_responses
from api.inference import InputError, Prepared, UnavailableError, predict, prepare
from api.schemas import BatchRequest, BatchResponse, PredictRequest, PredictResponse
from api.settings import Settings
from models.loading import Store
from sketch.strokes import EmptyDrawingError

router = APIRouter(tags=["predict"])

ERRORS = error_responses(400, 413, 415, 422, 503)


def _prepare_or_raise(item: PredictRequest, settings: Settings, store: Store, where: str = "") -> Prepared:
    try:
        return prepare(item, settings, store)
    except (InputError, EmptyDrawingError) as exc:
        raise HTTPException(422, f"{where}{exc}") from None
    except UnavailableError as exc:
        raise HTTPException(503, str(exc)) from None


@router.post(
    "/predict",
    operation_id="predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
)
async def predict_one(
    body: PredictRequest, settings: SettingsDep, store: ModelsDep, inference: InferenceDep
) -> PredictResponse:
    # Nothing CPU-heavy runs on the event loop: a bitmap only needs checking (microseconds), strokes
    # and images are preprocessed in the thread pool, and the model runs in the inference thread.
    if body.bitmap is not None:
        prepared = _prepare_or_raise(body, settings, store)
    else:
        prepared = await run_in_threadpool(_prepare_or_raise, body, settings, store)
    return await inference.predict(prepared)


# Plain `def`: FastAPI runs it in its thread pool, so a large batch never blocks the event loop.
@router.post(
    "/predict/batch",
    operation_id="predict_batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
)
def predict_batch(body: BatchRequest, settings: SettingsDep, store: ModelsDep) -> BatchResponse:
    prepared = [_prepare_or_raise(item, settings, store, f"items[{i}]: ") for i, item in enumerate(body.items)]
    return BatchResponse(results=predict(prepared))
