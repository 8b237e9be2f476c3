"""CORS for the browser pages: Starlette's middleware, with requests that carry no ``Origin`` let through cheaply.

Starlette's ``CORSMiddleware`` builds header objects for every request and response; for a request
without an ``Origin`` (every client but a browser calling across sites) all it does is add
``Vary: Origin`` to the answer, which it builds here directly. That was a visible share of a bitmap's
request under load (``bench/middleware.py``).
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send


class Cors(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def vary_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_vary_origin(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, vary_origin)


def _with_vary_origin(headers) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Origin`` added to their ``Vary``, as one header (as Starlette sets it)."""
    varies = [value for name, value in headers if name.lower() == b"vary"]
    kept = [(name, value) for name, value in headers if name.lower() != b"vary"] if varies else list(headers)
    return [*kept, (b"vary", b", ".join([*varies, b"Origin"]))]
