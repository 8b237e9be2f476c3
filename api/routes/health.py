"""Liveness and readiness: /health answers while the process runs, /ready once every model is warm."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ModelsDep

router = APIRouter(tags=["health"])


class NotReady(BaseModel):
    status: str = "not ready"
    detail: str
    notes: dict[str, list[str]] = {}


@router.get("/health", operation_id="health")
def health() -> dict:
    return {"status": "ok"}


@router.get(
    "/ready",
    operation_id="ready",
    responses={503: {"model": NotReady, "description": "a model is not loaded or not warmed up yet; detail says why"}},
)
def ready(request: Request, loaded: ModelsDep):
    """Ready when every model in the store loaded and ran once, and the database schema is the one
    this code needs: a store that is partly broken, or a database not migrated yet, is not served
    as if it were whole (a rollout stops there), and ``detail`` says what is wrong. A database that
    is merely unreachable leaves it ready: predictions need none."""
    notes = loaded.notes
    database = getattr(request.app.state, "database", None)
    if database is not None and database.schema_behind and not database.open():
        return JSONResponse({"status": "not ready", "detail": database.schema_behind, "notes": notes}, status_code=503)
    if request.app.state.ready and loaded.by_name and not loaded.errors:
        body = {"status": "ready", "models": {n: m.version for n, m in loaded.by_name.items()}}
        return body | ({"notes": notes} if notes else {})
    reason = "; ".join(loaded.errors.values()) or "models are loading"
    return JSONResponse({"status": "not ready", "detail": reason, "notes": notes}, status_code=503)
