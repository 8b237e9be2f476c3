"""api.lane: ``POST /predict`` answered beneath FastAPI's routing, exactly as the route answers it."""

from __future__ import annotations

import json

import pytest

import api.routes.predict as predict_route
from api.lane import PredictLane

CORS_ORIGIN = "http://localhost:8501"  # one of the default CORS_ORIGINS


@pytest.fixture(scope="module")
def cat(pairs) -> tuple[list, list]:
    """A real cat (tests/fixtures/pairs, see ATTRIBUTION.md): its bitmap and its strokes."""
    bitmaps, simplified, _ = pairs["cat"]
    return bitmaps[0].reshape(28, 28).tolist(), simplified[0]["drawing"]


@pytest.fixture
def route_reads(monkeypatch) -> list[int]:
    """Each body the route itself read (``parse`` is the route's, never the lane's)."""
    reads, parse = [], predict_route.parse

    async def spy(request, model, max_values=None):
        reads.append(1)
        return await parse(request, model, max_values)

    monkeypatch.setattr(predict_route, "parse", spy)
    return reads


def _without_lane(app, kept: list) -> None:
    app.user_middleware = [m for m in kept if m.cls is not PredictLane]
    app.middleware_stack = app.build_middleware_stack()


def _comparable(r) -> tuple:
    answer = r.json()
    answer.pop("timings_ms")  # measured per request
    # The request id is made per request, and the timings' digits change the length.
    headers = {k: v for k, v in r.headers.items() if k not in ("x-request-id", "content-length")}
    return r.status_code, headers, answer


def _bodies(cat) -> list[dict]:
    bitmap, strokes = cat
    return [
        {"bitmap": bitmap},
        {"bitmap": [v / 255 for row in bitmap for v in row], "top_k": 12},
        {"strokes": strokes},
        {"strokes": strokes, "explain": True, "return_bitmap": True},
        {"strokes": strokes, "model": "cnn"},
    ]


def test_the_lane_answers_without_the_route(client, cat, route_reads):
    for body in _bodies(cat):
        r = client.post("/predict", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["label"] == "cat"
    assert route_reads == []


def test_the_lane_answers_what_the_route_answers(client, cat):
    with_lane = [_comparable(client.post("/predict", json=body)) for body in _bodies(cat)]
    app = client.app
    kept = list(app.user_middleware)
    _without_lane(app, kept)
    try:
        by_route = [_comparable(client.post("/predict", json=body)) for body in _bodies(cat)]
    finally:
        app.user_middleware = kept
        app.middleware_stack = app.build_middleware_stack()
    assert with_lane == by_route


@pytest.mark.parametrize(
    ("raw", "headers", "status", "words"),
    [
        (b'{"bitmap": [[1, 2]]}', {}, 422, "28x28"),
        (b'{"strokes": [[[1], [2]]], "model": "nope"}', {}, 422, "model"),
        (b'{"bitmap": ', {}, 422, "json"),
        (b'{"bitmap": [' + b"255, " * 783 + b'0], "model": "rnn"}', {}, 422, "reads pen strokes"),
        (b'{"strokes": [[[1, 2], [3, 4]]]}', {"content-type": "text/plain"}, 415, "Content-Type"),
    ],
)
def test_what_the_lane_does_not_answer_goes_on_to_the_route(client, route_reads, raw, headers, status, words):
    r = client.post("/predict", content=raw, headers={"content-type": "application/json", **headers})
    assert r.status_code == status, r.text
    assert words.lower() in r.text.lower()
    assert route_reads == [1]  # the route's own answer


def test_a_body_sent_in_chunks_is_answered(client, cat, route_reads):
    raw = json.dumps({"bitmap": cat[0]}).encode()
    chunks = (raw[i : i + 500] for i in range(0, len(raw), 500))
    r = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == "cat"
    assert route_reads == []


def test_the_lanes_answers_carry_the_request_id_cors_and_metrics(client, cat):
    def predicted() -> float:
        for line in client.get("/metrics").text.splitlines():
            series = line.startswith("deepdraw_http_requests_total{") and 'route="/predict"' in line
            if series and 'status="200"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = predicted()
    r = client.post("/predict", json={"bitmap": cat[0]}, headers={"X-Request-ID": "lane-1", "Origin": CORS_ORIGIN})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "lane-1"
    assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "Origin" in r.headers["vary"]
    assert r.headers["content-type"] == "application/json"
    assert predicted() == before + 1


def test_a_body_over_the_limit_is_refused_before_the_lane_reads_it(client, route_reads):
    r = client.post("/predict", content=b"[" * 2_000_001, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]
    assert route_reads == []
