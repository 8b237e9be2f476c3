"""What is loaded: model metadata and class lists."""

from fastapi import APIRouter

from api.deps import RegistryDep
from api.inference import model_names

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
    return {"models": out, "available": model_names(registry), "errors": registry.errors}


@router.get("/classes")
def classes(registry: RegistryDep) -> dict[str, list[str]]:
    """Class names in output order, one key per loaded model."""
    return {name: m.classes for name, m in registry.models.items()}
