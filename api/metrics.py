"""Prometheus metrics, exposed at ``GET /metrics`` (prometheus_client).

With several worker processes (``python -m api.serve``) every process writes its samples to
files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up, whichever worker answers.
Without that variable (``uvicorn api.main:app``, the tests' in-process app) the values live in
this process. Info metrics do not work across processes, so model versions are a gauge set to 1.
"""

from __future__ import annotations

import functools
import os

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "deepdraw_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "deepdraw_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template and status",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PREDICTIONS = Counter("deepdraw_predictions_total", "Drawings classified, by model", ["model"])
BATCH_SIZE = Histogram(
    "deepdraw_inference_batch_size",
    "Drawings per model call (concurrent requests are batched)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
SUBMISSIONS = Counter("deepdraw_submissions_stored_total", "Submissions acknowledged (201), i.e. committed")
MODEL_INFO = Gauge(
    "deepdraw_model_info",
    "Models being served (always 1), labelled with version and runtime",
    ["model", "version", "runtime"],
    multiprocess_mode="livemax",
)
WORKERS_ALIVE = Gauge(
    "deepdraw_workers_alive", "Worker processes running (api.serve)", multiprocess_mode="livemostrecent"
)
WORKER_RESTARTS = Counter("deepdraw_worker_restarts_total", "Workers that died and were replaced (api.serve)")


@functools.cache
def _inference_series(model: str) -> tuple:
    return PREDICTIONS.labels(model), BATCH_SIZE.labels(model)


# The labelled series of each (method, route template, status) seen: finding one through
# ``labels()`` (a lock and a lookup per metric) is a measurable share of a fast request. Bounded:
# route templates and status codes are few, and unknown paths share one label (api.access).
@functools.cache
def _request_series(method: str, route: str, status: int) -> tuple:
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route, str(status))


def record_inference(model: str, items: int) -> None:
    """One model call over ``items`` drawings (called by api.inference.predict)."""
    predictions, batch_size = _inference_series(model)
    predictions.inc(items)
    batch_size.observe(items)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    requests, latency = _request_series(method, route, status)
    requests.inc()
    latency.observe(seconds)
    if status == 201 and route == "/submissions" and method == "POST":
        SUBMISSIONS.inc()


def set_workers_alive(count: int) -> None:
    WORKERS_ALIVE.set(count)


def worker_restarted() -> None:
    WORKER_RESTARTS.inc()


def worker_exited(pid: int | None) -> None:
    if MULTIPROCESS and pid is not None:
        multiprocess.mark_process_dead(pid)


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text exposition of every worker's metrics."""
    loaded = getattr(request.app.state, "models", None)  # absent until the lifespan has run
    for name, model in (loaded.by_name if loaded else {}).items():
        MODEL_INFO.labels(name, str(model.version), str(model.runtime)).set(1)
    if MULTIPROCESS:
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
    else:
        collected = REGISTRY
    return Response(generate_latest(collected), media_type=CONTENT_TYPE_LATEST)
