"""``POST /predict`` answered beneath FastAPI's routing: the hot path's own lane.

A bitmap's whole request cost about as much in FastAPI's request machinery (routing, the request
and response objects, the exception layers) as in everything else but the network together
(``bench/middleware.py``). This pure ASGI layer, the innermost middleware, reads the body of a
``POST /predict`` declared as JSON and answers it with the route's own functions
(``api.bodies.validated``, ``api.routes.predict.answer_one``). Every request it does not simply
answer — not JSON, a large body, a client gone, anything answered with an error — goes on to the
route with its body replayed, so the route alone speaks the API's errors and its OpenAPI schema
stays the contract. Request ids, metrics, the access log, CORS and the body limits are the outer
layers', as for every route.
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic_core import to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.bodies import LARGE_BODY_BYTES, is_json, media_type, validated
from api.routes.predict import answer_one, router
from api.schemas import MAX_VALUES, PredictRequest

PATH = "/predict"
ROUTE = next(r for r in router.routes if getattr(r, "path", None) == PATH)


class PredictLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if not is_json(media_type(content_type.decode("latin-1"))):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or size >= LARGE_BODY_BYTES:
                await self.app(scope, _replay(messages, receive), send)
                return
            more = message.get("more_body", False)
        try:
            body = validated(b"".join(m.get("body", b"") for m in messages), PredictRequest, MAX_VALUES)
            answer = to_json(await answer_one(scope["app"].state, body))
        except (HTTPException, RequestValidationError):
            # Raised before any model ran: the route finds the same problem and says it.
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = ROUTE  # what the access log and metrics name
        # The headers the route's ``Response`` sends.
        headers = [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` giving ``messages`` again first."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
