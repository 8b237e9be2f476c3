"""HEAD on every GET route: answered as the GET, without its body (RFC 9110).

FastAPI routes declare GET only; listing HEAD on each would publish a second operation per path in
the OpenAPI schema. This ASGI layer runs a HEAD as a GET and drops the body it sends, keeping the
headers (Content-Length included) a client asked HEAD for.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
