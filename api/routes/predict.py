"""POST /predict and /predict/batch: top-k guesses for bitmaps, canvas images or strokes."""

from fastapi import APIRouter, HTTPException

from api.deps import RegistryDep, SettingsDep
from api.inference import InputError, Prepared, UnavailableError, predict, prepare
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


# Plain `def`: FastAPI runs it in its thread pool, so preprocessing and inference never block the loop.
@router.post("/predict", response_model=PredictResponse, response_model_exclude_none=True, responses=ERRORS)
def predict_one(body: PredictRequest, settings: SettingsDep, registry: RegistryDep) -> PredictResponse:
    return predict([_prepare_or_raise(body, settings, registry)], registry)[0]


@router.post("/predict/batch", response_model=BatchResponse, response_model_exclude_none=True, responses=ERRORS)
def predict_batch(body: BatchRequest, settings: SettingsDep, registry: RegistryDep) -> BatchResponse:
    if len(body.items) > settings.max_batch_items:
        raise HTTPException(422, f"too many items: {len(body.items)} > {settings.max_batch_items}")
    prepared = [_prepare_or_raise(item, settings, registry, f"items[{i}]: ") for i, item in enumerate(body.items)]
    return BatchResponse(results=predict(prepared, registry))
