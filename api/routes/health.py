"""Liveness and readiness: /health answers while the process runs, /ready once models are warm."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RegistryDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "models not loaded or not warmed up; says why"}})
def ready(registry: RegistryDep):
    if registry.ready:
        return {"status": "ready", "models": {n: m.version for n, m in registry.models.items()}}
    reason = "; ".join(registry.errors.values()) or "models are loading"
    return JSONResponse({"status": "not ready", "detail": reason}, status_code=503)
