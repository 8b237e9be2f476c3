"""What is loaded: model metadata and class lists."""

from fastapi import APIRouter

from api.deps import RegistryDep
from api.inference import ensemble_classes, model_names

router = APIRouter(tags=["models"])


@router.get("/models")
def models(registry: RegistryDep) -> dict:
    """Metadata per model: version, classes, input spec, test metrics, runtime, and load errors."""
    out = {
        name: {
            "name": name,
            "version": m.version,
            "kind": m.metadata.get("kind", name),
            "runtime": m.runtime,
            "classes": m.classes,
            "input": m.metadata.get("input"),
            "metrics": m.metadata.get("metrics"),
            "preprocessing_version": m.metadata.get("preprocessing_version"),
            "created": m.metadata.get("created"),
        }
        for name, m in registry.models.items()
    }
    if "ensemble" in model_names(registry):
        cnn, rnn = registry.models["cnn"], registry.models["rnn"]
        out["ensemble"] = {
            "name": "ensemble",
            "version": f"cnn-{cnn.version}+rnn-{rnn.version}",
            "kind": "ensemble",
            "runtime": rnn.runtime,
            "classes": ensemble_classes(registry),
            "input": {"name": "strokes", "description": "CNN on the rasterised strokes x RNN on the sequence"},
            # Chosen weight and its held-out comparison, written by training.compare.
            "metrics": rnn.metadata.get("ensemble", {}).get("metrics"),
            "rnn_weight": rnn.metadata.get("ensemble", {}).get("rnn_weight"),
        }
    return {"models": out, "available": model_names(registry), "errors": registry.errors}


@router.get("/classes")
def classes(registry: RegistryDep) -> dict[str, list[str]]:
    """Class names in output order, one key per model name that /predict accepts."""
    out = {name: m.classes for name, m in registry.models.items()}
    if "ensemble" in model_names(registry):
        out["ensemble"] = ensemble_classes(registry)
    return out
