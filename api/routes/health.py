"""Liveness and readiness: /health answers while the process runs, /ready once every model is warm.

Both run on the event loop, never in the thread pool: a pool full of costly requests (pictures,
explanations, database writes) must not make a live, ready process look dead to its orchestrator.
"""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ModelsDep

router = APIRouter(tags=["health"])


class NotReady(BaseModel):
    status: str = "not ready"
    detail: str
    notes: dict[str, list[str]] = {}


@router.get("/health", operation_id="health")
async def health() -> dict:
    return {"status": "ok"}


@router.get(
    "/ready",
    operation_id="ready",
    responses={503: {"model": NotReady, "description": "a model is not loaded or not warmed up yet; detail says why"}},
)
async def ready(request: Request, loaded: ModelsDep):
    """Ready when every model in the store loaded and ran once, and the database schema is the one
    this code needs: a store that is partly broken, or a database not migrated yet, is not served
    as if it were whole (a rollout stops there), and ``detail`` says what is wrong. A database that
    is merely unreachable leaves it ready: predictions need none."""
    notes = loaded.notes
    database = getattr(request.app.state, "database", None)
    # Only a database found behind the code's schema is asked again (in the pool: it does I/O).
    if database is not None and database.schema_behind and not await run_in_threadpool(database.open):
        return JSONResponse({"status": "not ready", "detail": database.schema_behind, "notes": notes}, status_code=503)
    if request.app.state.ready and loaded.by_name and not loaded.errors:
        body = {"status": "ready", "models": {n: m.version for n, m in loaded.by_name.items()}}
        return body | ({"notes": notes} if notes else {})
    reason = "; ".join(loaded.errors.values()) or "models are loading"
    return JSONResponse({"status": "not ready", "detail": reason, "notes": notes}, status_code=503)
