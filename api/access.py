"""Request ids, JSON access logs and HTTP metrics: one pure ASGI middleware, outermost.

Every response carries ``X-Request-ID``: the client's own when it sent a sane one (1–128 of
letters, digits and ``._:-``), else a fresh random id. The same id is in the request's access
log line and in any log line written while it runs (a context variable read by JsonFormatter).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import select
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
# Access lines wait at most this long to be written with others (BatchedLines).
FLUSH_S = 0.25
MAX_WAITING_BYTES = 256 * 1024


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


class BatchedLines(logging.Handler):
    """Lines written to a file descriptor a few at a time, as nginx's buffered access log does.

    A write per line woke the pipe's reader (a container runtime, journald) once per request, a
    visible share of a bitmap's request (``bench/middleware.py``, docs/api.md). Lines logged on an event
    loop wait at most ``FLUSH_S`` (elsewhere they are written at once) and go out whole, at most
    ``PIPE_BUF`` bytes a write: the workers sharing one pipe never interleave inside a line. What
    waits is written at shutdown (``flush_access_log``); a process killed outright loses at most
    ``FLUSH_S`` of lines.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.waiting: list[bytes] = []
        self.size = 0
        self.planned = False  # a flush is planned on the event loop
        self.pid = os.getpid()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:
            self.handleError(record)
            return
        self._forked()
        self.waiting.append(line)
        self.size += len(line)
        if self.size >= MAX_WAITING_BYTES:
            self.flush()
        elif not self.planned:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on an event loop: nothing would flush it later
                self.flush()
                return
            self.planned = True
            loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        with self.lock:
            self._forked()
            waiting, self.waiting, self.size, self.planned = self.waiting, [], 0, False
            try:
                for chunk in _whole_lines(waiting, select.PIPE_BUF):
                    while chunk:
                        chunk = chunk[os.write(self.fd, chunk) :]
            except OSError:
                self.handleError(None)

    def _forked(self) -> None:
        """In a forked worker: nothing waiting or planned yet (the parent writes its own lines)."""
        if self.pid != os.getpid():
            self.pid, self.waiting, self.size, self.planned = os.getpid(), [], 0, False


def _whole_lines(lines: list[bytes], most: int) -> list[bytes]:
    """``lines`` joined into chunks of at most ``most`` bytes (a longer line alone)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > most:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append(b"".join(current))
    return chunks


def configure_logging(enabled: bool) -> None:
    """JSON lines on stderr for the access log (batched) and the ``api`` loggers (idempotent)."""
    # What no line here shows is not gathered either: the caller's frame, thread and process names
    # (the logging HOWTO's "Optimization"); bench/middleware.py measures a line's cost.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in ("api", "api.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = _batched_stderr() if name == "api.access" else logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    access_log.disabled = not enabled


def _batched_stderr() -> logging.Handler:
    try:
        return BatchedLines(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a descriptor
        return logging.StreamHandler(sys.stderr)


def flush_access_log() -> None:
    """Write the access lines still waiting (a worker process may end without the interpreter's exit)."""
    for handler in access_log.handlers:
        handler.flush()


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
