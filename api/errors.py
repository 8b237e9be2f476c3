"""One error shape for every 4xx and 5xx the API answers, and the OpenAPI entries that declare it.

Every error body is ``{"detail": "<one sentence naming the problem>"}``; request validation errors
add ``errors`` (where and what, for programs). Routes list the statuses they can answer with
``error_responses(...)``, so the published schema says exactly what a client can get.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str = Field(..., description="what went wrong, in one sentence")
    errors: list[ErrorItem] | None = Field(None, description="request validation errors: where and what")


_DESCRIPTIONS = {
    400: "the body could not be read",
    403: "the token does not match",
    404: "no such resource",
    405: "method not allowed here (the Allow header lists those that are)",
    409: "conflicts with what is stored (e.g. a name that exists); detail says what",
    413: "body larger than MAX_BODY_BYTES",
    415: "a body encoding the API does not read",
    422: "invalid request (empty drawing, wrong shape, limits, unknown model...); detail says what",
    503: "a model or the database is unavailable; detail says why",
}


def error_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given statuses, all with the one error model."""
    return {
        code: {"model": ErrorResponse, "description": descriptions.get(f"e{code}", _DESCRIPTIONS[code])}
        for code in codes
    }


def encodable(text: str) -> str:
    """``text`` with anything UTF-8 cannot carry (a lone surrogate from a JSON escape) replaced by '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


# The commonest mistake with strokes: a list of [x, y] points instead of one list per axis.
STROKE_FORMAT = (
    " (a stroke is [[x, ...], [y, ...]] or [[x, ...], [y, ...], [t, ...]]: one list per axis, not [x, y] points)"
)


def _describe(error: dict) -> str:
    # Union members show up in the location as type names ("list[float]"): leave them out.
    loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body" and "[" not in str(p))
    if error.get("type") == "json_invalid":
        return f"malformed JSON: {error.get('ctx', {}).get('error', error.get('msg'))}"
    msg = error.get("msg", "invalid").removeprefix("Value error, ")
    if error.get("type") == "too_long" and _is_stroke(error.get("loc", ())):
        msg += STROKE_FORMAT
    return f"{loc}: {msg}" if loc else msg


def _is_stroke(loc: tuple) -> bool:
    """The location of one stroke: ``strokes.<i>`` (in a request body or a batch item)."""
    return len(loc) >= 2 and loc[-2] == "strokes" and isinstance(loc[-1], int)


def validation_body(errors: list[dict]) -> dict:
    """One readable sentence first (what the client got wrong), the structured list after it."""
    detail = "; ".join(dict.fromkeys(_describe(e) for e in errors[:5]))
    items = [
        {
            "loc": [p if isinstance(p, int) else encodable(str(p)) for p in e.get("loc", ())],
            "msg": encodable(str(e.get("msg", ""))),
            "type": str(e.get("type", "")),
        }
        for e in errors[:20]
    ]
    return {"detail": encodable(detail), "errors": items}


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app, scope: dict) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first route's)."""
    from starlette.routing import Match

    allowed = []
    for method in METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    if "GET" in allowed and "HEAD" not in allowed:  # api.methods answers HEAD for every GET route
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


def install(app) -> None:
    """The handlers that give every error the one shape, with text that can always be encoded."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(list(exc.errors())), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        if exc.status_code == 404 and detail == "Not Found":  # no route matched: say which path
            detail = f"no route for {request.method} {request.url.path} (the routes are listed at /docs)"
        return JSONResponse({"detail": encodable(detail)}, status_code=exc.status_code, headers=headers)
