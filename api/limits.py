"""Refuse request bodies the API will not read, before they are buffered in full.

Every refusal has the API's one error shape, ``{"detail": str}``:
- 413 for a body over ``MAX_BODY_BYTES``, whether announced by Content-Length or counted as a
  chunked body arrives;
- 415 for a ``Content-Encoding`` other than identity: bodies are never decompressed (a 2 MB gzip
  body can inflate to gigabytes), send them uncompressed;
- 400 for a JSON body (or one without a Content-Type) that is not UTF-8, the only encoding JSON
  may use between systems (RFC 8259);
- 408 for a body that has not fully arrived ``TIMEOUT_BODY_S`` seconds after the request began
  (a stalled or trickling upload would otherwise hold a connection and its buffer for ever).

The refusal replaces whatever the app would have answered: the app only sees its body reader
fail (FastAPI turns that into a 400, which must not reach the client).
"""

from __future__ import annotations

import asyncio
import codecs
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.bodies import is_json, media_type


class _Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return True  # FastAPI parses a body without a Content-Type as JSON
    return is_json(media_type(content_type.decode("latin-1")))


class BodySizeLimit:
    """Pure ASGI middleware: size, encoding and arrival-time limits on request bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        if body_timeout_s is None:
            from api.settings import get_settings

            body_timeout_s = get_settings().timeout_body_s
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._check_headers(headers)
        if refusal is not None:
            await _answer(send, refusal)
            return

        received = 0
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        check_utf8 = _is_json(headers.get(b"content-type"))
        decoder = None  # made at the first chunk that is not ASCII (ASCII bytes are whole UTF-8 characters)
        body_done = False
        refused: _Refused | None = None
        answered = False

        async def guarded_receive() -> Message:
            nonlocal received, body_done, refused, decoder
            if body_done:  # e.g. waiting for a disconnect while streaming: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refused = _Refused(408, f"request body not received within {self.body_timeout_s:g} s")
                raise refused from None
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            received += len(chunk)
            body_done = not message.get("more_body", False)
            if received > self.max_bytes:
                refused = _Refused(413, f"request body too large: limit is {self.max_bytes} bytes")
                raise refused
            if check_utf8 and (decoder is not None or not chunk.isascii()):
                decoder = decoder or codecs.getincrementaldecoder("utf-8")()
                try:
                    decoder.decode(chunk, final=body_done)
                except UnicodeDecodeError as exc:
                    at = received - len(chunk) + exc.start
                    refused = _Refused(400, f"request body is not UTF-8 (byte {at}: {exc.reason}); send UTF-8 JSON")
                    raise refused from None
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if refused is None:
                answered = answered or message["type"] == "http.response.start"
                await send(message)
            elif not answered:  # the app's answer to a body it could not read: ours replaces it
                answered = True
                await _answer(send, refused)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refused is None:
                raise
        if refused is not None and not answered:
            await _answer(send, refused)

    def _check_headers(self, headers: dict[bytes, bytes]) -> _Refused | None:
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return _Refused(413, f"request body too large: limit is {self.max_bytes} bytes")
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b""):
            name = encoding.decode("latin-1")
            return _Refused(415, f"Content-Encoding {name!r} is not supported: send the body uncompressed")
        return None


async def _answer(send: Send, refusal: _Refused) -> None:
    body = json.dumps({"detail": refusal.detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.status in (408, 413):  # the rest of the body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
