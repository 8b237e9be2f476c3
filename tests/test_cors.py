"""api.cors: Starlette's CORS for browsers, and only ``Vary: Origin`` for requests without an Origin."""

from __future__ import annotations

import pytest
from starlette.datastructures import MutableHeaders

from api.cors import _with_vary_origin

ALLOWED = "http://localhost:8501"  # one of the default CORS_ORIGINS


def _starlettes(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What Starlette's CORSMiddleware makes of a response's headers for a request without an Origin."""
    message = {"headers": list(headers)}
    mutable = MutableHeaders(scope=message)
    mutable["Vary"] = ", ".join([*mutable.getlist("Vary"), "Origin"])
    return message["headers"]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"application/json")],
        [(b"vary", b"Accept-Encoding"), (b"content-length", b"2")],
        [(b"vary", b"Accept"), (b"content-length", b"2"), (b"vary", b"Cookie")],
    ],
)
def test_vary_origin_is_what_starlette_sets(headers):
    assert sorted(_with_vary_origin(headers)) == sorted(_starlettes(headers))


def test_a_request_without_an_origin_gets_vary_and_no_cors_headers(client):
    for r in (client.get("/health"), client.post("/predict", json={"strokes": [[[0, 9, 9], [0, 0, 9]]]})):
        assert r.headers["vary"] == "Origin"
        assert not [k for k in r.headers if k.startswith("access-control-")]


def test_a_browser_on_an_allowed_origin_gets_cors_headers(client):
    r = client.get("/health", headers={"Origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "X-Request-ID"
    asking = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    preflight = client.options("/predict", headers=asking)
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_another_origin_gets_no_cors_headers(client):
    r = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    preflight = client.options(
        "/predict", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
