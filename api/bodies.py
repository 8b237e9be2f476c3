"""JSON request bodies: read only when declared as JSON, refused by a byte count before parsing
when they hold more values than any body within the limits could, then parsed and validated in one
pass by pydantic-core straight from the bytes. A large body is parsed in the thread pool, one at a
time per process (with the other costly requests, ``app.state.costly``): parsing 2 MB takes long
enough to hold up every other request, ``/health`` included, if it ran on the event loop.

Routes that read their body this way declare it with ``openapi_body`` (FastAPI does not see it as
a body parameter); ``api.main`` publishes the models in the schema's components.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

Body = TypeVar("Body", bound=BaseModel)

UTF8_BOM = b"\xef\xbb\xbf"
# nginx's "client closed request": no client sees it, the access log and metrics do.
CLIENT_CLOSED = 499
# Below this a body is parsed right on the event loop (a player's drawing: a few kilobytes).
LARGE_BODY_BYTES = 256 * 1024


def _validate(model: type[Body], raw: bytes) -> Body:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def media_type(content_type: str) -> str:
    """A Content-Type header value's media type, lower case, without its parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def check_media_type(request: Request) -> None:
    """Only a body declared as JSON is read. A form or text/plain body (or one without a type) is
    what a page on any other site may send without the browser asking the API first (no CORS
    preflight): read anyway, it would let any website submit drawings, teach categories and post scores."""
    media = media_type(request.headers.get("content-type", ""))
    if not is_json(media):
        declared = f"Content-Type {media!r}" if media else "no Content-Type"
        raise HTTPException(415, f"the body must be JSON sent with Content-Type: application/json ({declared})")


def check_values(raw: bytes, max_values: int) -> None:
    values = raw.count(b",") + raw.count(b"[")
    if values > max_values:
        raise HTTPException(422, f"too many values in the body: {values} commas and lists, at most {max_values}")


async def parse(request: Request, model: type[Body], max_values: int | None = None) -> Body:
    check_media_type(request)
    try:
        raw = await request.body()
    except ClientDisconnect:
        # Nobody is left to answer; logged and counted as the client's doing, not as a server error.
        raise HTTPException(CLIENT_CLOSED, "the client closed the connection before its body arrived") from None
    raw = _checked(raw, max_values)
    if len(raw) < LARGE_BODY_BYTES:
        return _validate(model, raw)
    async with request.app.state.costly:
        return await run_in_threadpool(_validate, model, raw)


def validated(raw: bytes, model: type[Body], max_values: int | None = None) -> Body:
    """A small body read as ``model`` (what ``parse`` does once it has the bytes): a 422
    (``HTTPException`` or ``RequestValidationError``) names the problem."""
    return _validate(model, _checked(raw, max_values))


def _checked(raw: bytes, max_values: int | None) -> bytes:
    # JSON must not start with a byte order mark, but some tools write one (RFC 8259 lets a reader ignore it).
    raw = raw.removeprefix(UTF8_BOM)
    if max_values is not None:
        check_values(raw, max_values)
    return raw


def openapi_body(model: type[BaseModel]) -> dict:
    """The ``openapi_extra`` of a route that reads ``model`` with ``parse``."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def body_of(model: type[Body]):
    """A dependency giving the route ``model`` read with ``parse`` (declare ``openapi_body(model)`` too)."""

    async def read(request: Request) -> Body:
        return await parse(request, model)

    return read
