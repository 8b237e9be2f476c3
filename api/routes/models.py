"""What is loaded: each model's card (version, classes, input, metrics...), and the input limits."""

from fastapi import APIRouter

from api.deps import ModelsDep, SettingsDep
from api.schemas import MAX_BATCH_ITEMS, MAX_BATCH_POINTS, MAX_POINTS, MAX_TOP_K
from api.settings import DEFAULT_MODELS
from models.kinds import KINDS

router = APIRouter(tags=["models"])

# Card entries too long or too internal for the listing (GET the report for them).
_OMITTED = {"training", "data"}


@router.get("/models", operation_id="list_models")
def models(loaded: ModelsDep) -> dict:
    """Per loaded model: its card (classes, input, test metrics, ONNX check, ensemble weight...),
    the runtime and notes; which model answers each input kind by default; and why others are missing."""
    out = {
        name: {
            "name": name,
            "description": KINDS[name].description,
            "runtime": m.runtime,
            "notes": getattr(m, "notes", []),
            **m.card.model_dump(mode="json", exclude=_OMITTED, exclude_none=True),
        }
        for name, m in loaded.by_name.items()
    }
    defaults = {kind: next((n for n in names if n in loaded.by_name), None) for kind, names in DEFAULT_MODELS.items()}
    return {"models": out, "available": list(loaded.by_name), "defaults": defaults, "errors": loaded.errors}


@router.get("/classes", operation_id="list_classes")
def classes(loaded: ModelsDep) -> dict[str, list]:
    """Class names in output order, one key per model name that /predict accepts; ``all``: every category
    the service answers (the prototypes model's, taught ones included) with its kind."""
    out: dict[str, list] = {name: m.classes for name, m in loaded.by_name.items()}
    everything = loaded.teachable
    if everything is not None:
        names, origins = everything.listing()  # one snapshot: names and kinds from the same set
        out[everything.name] = names
        out["all"] = [{"label": n, "kind": k} for n, k in zip(names, origins, strict=True)]
    return out


@router.get("/limits", operation_id="limits")
def limits(settings: SettingsDep) -> dict[str, int]:
    """The input limits /predict and /submissions enforce, so clients need not guess them."""
    return {
        "max_top_k": MAX_TOP_K,
        "max_batch_items": MAX_BATCH_ITEMS,
        "max_batch_points": MAX_BATCH_POINTS,
        "max_points": MAX_POINTS,
        "max_body_bytes": settings.max_body_bytes,
        "max_image_pixels": settings.max_image_pixels,
    }
