"""Request ids, JSON access logs and HTTP metrics: one pure ASGI middleware, outermost.

Every response carries ``X-Request-ID``: the client's own when it sent a sane one (1–128 of
letters, digits and ``._:-``), else a fresh random id. The same id is in the request's access
log line and in any log line written while it runs (a context variable read by JsonFormatter).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_HEADER = b"x-request-id"
_UNMATCHED = "unmatched"  # one label for every unknown path, so scanners cannot blow up the series

access_log = logging.getLogger("api.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, and any ``extra``."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        out.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(enabled: bool) -> None:
    """JSON lines on stderr for the access log and the ``api`` loggers (idempotent)."""
    # What no line here shows is not gathered either: the caller's frame, thread and process names
    # (the logging HOWTO's "Optimization"); bench/middleware.py measures a line's cost.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in ("api", "api.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    access_log.disabled = not enabled


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:  # answered before routing (e.g. 413 on Content-Length): find the route ourselves
        router = getattr(scope.get("app"), "router", None)
        for candidate in getattr(router, "routes", ()):
            if candidate.matches(scope)[0] is not Match.NONE:
                route = candidate
                break
    return getattr(route, "path_format", None) or getattr(route, "path", None) or _UNMATCHED  # without convertors


class AccessMiddleware:
    def __init__(self, app: ASGIApp, log_requests: bool = True):
        self.app = app
        configure_logging(log_requests)
        self.pid = os.getpid()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                rid = value.decode("ascii") if _SANE_ID.fullmatch(value) else None
                break
        rid = rid or uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500  # what the client sees if the app fails before answering
        header = (_HEADER, rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = _route_template(scope)
            metrics.record_request(scope["method"], route, status, seconds)
            if access_log.isEnabledFor(logging.INFO) and not access_log.disabled:
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                        "pid": self.pid,
                    },
                )
            request_id.reset(token)
