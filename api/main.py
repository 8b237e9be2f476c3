"""The Deep Draw inference service: ``uvicorn api.main:app``.

Models are loaded and warmed up once, in the lifespan; a missing or corrupt model store keeps the
process up with ``/ready`` answering 503 and the reason.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import errors
from api.access import AccessMiddleware, flush_access_log
from api.cors import Cors
from api.inference import predict, prepare
from api.lane import PredictLane
from api.limits import BodySizeLimit
from api.methods import HeadAsGet
from api.metrics import router as metrics_router
from api.routes import categories, health, models, scores, submissions
from api.routes import predict as predict_routes
from api.schemas import PredictRequest
from api.settings import get_settings
from api.taught import TaughtClasses
from models.loading import LoadedModels, load_store
from sketch import raster, simplify
from store.db import Database, StoreUnavailableError

log = logging.getLogger("api")

# Heavy requests (a batch of long drawings) run in the thread pool and hold the GIL between numpy
# calls; a 1 ms switch interval (Python's default is 5 ms) lets the event loop answer /health and
# small requests between them instead of queueing behind several such threads.
sys.setswitchinterval(0.001)

# A small square: enough to run every model once before /ready says yes.
_WARMUP_STROKES = [[[0.0, 10.0, 10.0, 0.0, 0.0], [0.0, 0.0, 10.0, 10.0, 0.0]]]


def warm_up(loaded: LoadedModels, settings) -> None:
    """Compile the stroke path, then run every loaded model once through the request path; one that
    fails is unloaded with the reason."""
    simplify.warm_up()
    raster.warm_up()
    for name in list(loaded.by_name):
        try:
            predict([prepare(PredictRequest(strokes=_WARMUP_STROKES, model=name), settings, loaded)], record=False)
        except Exception as exc:  # a model that loads but cannot run: keep serving /ready with the reason
            log.exception("warm-up of %s failed", name)
            loaded.errors[name] = f"{name} warm-up failed: {exc}"
            del loaded.by_name[name]


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    loaded = load_store(settings.model_store, settings.inference_runtime, settings.model_versions)
    app.state.models = loaded
    app.state.ready = False
    app.state.costly = asyncio.Semaphore(1)  # routes.predict: costly requests take turns
    # Migrated here; a database that cannot be opened yet answers 503 and is retried per call.
    app.state.database = Database(settings.database_url, migrate=settings.migrate_on_start)
    app.state.database.open()  # logs the reason when it fails
    warm_up(loaded, settings)
    app.state.taught = TaughtClasses(app.state.database, loaded)
    try:
        app.state.taught.refresh()  # loads what was taught before a restart
    except StoreUnavailableError as exc:  # retried by the poll; /categories answers 503 meanwhile
        log.error("%s", exc)
    for name, m in loaded.by_name.items():
        log.info("loaded %s %s (%d classes, %s)", name, m.version, len(m.classes), m.runtime)
    follower = asyncio.create_task(app.state.taught.follow())  # categories taught through other replicas
    app.state.ready = True
    yield
    follower.cancel()
    app.state.database.dispose()
    flush_access_log()


def _with_request_schemas(app: FastAPI) -> None:
    """The JSON routes read their raw bodies (``api.bodies``): publish the models they validate
    against, which FastAPI does not see as body parameters, in the schema's components."""
    from pydantic.json_schema import models_json_schema

    from api.schemas import BatchRequest, CategoryRequest, ScoreRequest, SubmissionRequest

    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            _, defs = models_json_schema(
                [
                    (model, "validation")
                    for model in (PredictRequest, BatchRequest, SubmissionRequest, CategoryRequest, ScoreRequest)
                ],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
        return app.openapi_schema

    app.openapi = openapi


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="Deep Draw API",
        description="Quick, Draw! sketch recognition: POST a bitmap, a canvas image or pen strokes, "
        "get the top guesses.",
        version="1.0.0",
        lifespan=lifespan,
    )
    # Innermost first: each add_middleware wraps what was added before it.
    app.add_middleware(PredictLane)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        Cors,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID"],
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(AccessMiddleware, log_requests=settings.access_log)  # outermost: sees every answer

    errors.install(app)

    @app.exception_handler(StoreUnavailableError)
    async def database_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": errors.encodable(str(exc))}, status_code=503)

    app.include_router(predict_routes.router)  # first: routes are matched in order, and it is the hot path
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(categories.router)
    app.include_router(submissions.router)
    app.include_router(scores.router)
    app.include_router(metrics_router)
    _with_request_schemas(app)
    return app


app = create_app()
