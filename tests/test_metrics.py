"""/metrics (Prometheus), X-Request-ID and the JSON access log: in process and across 2 workers."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.serving import ApiServer

BITMAP = {"bitmap": [0] * 300 + [255] * 184 + [0] * 300}
SUBMISSION = {"label": "cat", "strokes": [[[0, 40, 80, 120], [0, 60, 0, 60]]], "canvas": {"width": 256, "height": 256}}


def scrape(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of a Prometheus text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_counters_move_after_requests(client):
    before = scrape(client.get("/metrics").text)
    assert client.post("/predict", json=BITMAP).status_code == 200
    assert client.post("/predict", json={"bitmap": [1, 2]}).status_code == 422
    assert client.post("/submissions", json=SUBMISSION).status_code == 201
    assert client.get("/no/such/page/123").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = scrape(r.text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "POST", "route": "/predict", "status": "200"}
    assert moved("deepdraw_http_requests_total", **ok) == 1
    assert moved("deepdraw_http_requests_total", method="POST", route="/predict", status="422") == 1
    assert moved("deepdraw_http_request_duration_seconds_count", **ok) == 1
    assert moved("deepdraw_http_request_duration_seconds_bucket", **ok, le="+Inf") == 1
    assert moved("deepdraw_http_request_duration_seconds_sum", **ok) > 0
    # Unknown paths share one label: a scanner cannot create a series per path.
    assert moved("deepdraw_http_requests_total", method="GET", route="unmatched", status="404") == 1
    # A bitmap with no model named goes to the default, the player's model.
    assert moved("deepdraw_predictions_total", model="prototypes") == 1
    assert moved("deepdraw_inference_batch_size_count", model="prototypes") == 1
    assert moved("deepdraw_submissions_stored_total") == 1
    # Route templates, not raw paths.
    client.get("/submissions/999999")
    assert "/submissions/{submission_id}" in client.get("/metrics").text


def test_model_versions_are_an_info_gauge(client):
    models = client.get("/ready").json()["models"]
    samples = scrape(client.get("/metrics").text)
    info = {dict(labels)["model"]: dict(labels) for name, labels in samples if name == "deepdraw_model_info"}
    assert {name: info[name]["version"] for name in models} == models
    assert all(info[name]["runtime"] for name in models)


def test_request_id_is_returned_and_a_sane_one_is_kept(client):
    fresh = client.get("/health").headers["x-request-id"]
    assert len(fresh) == 32 and fresh != client.get("/health").headers["x-request-id"]
    assert client.get("/health", headers={"X-Request-ID": "trace-42.a:b"}).headers["x-request-id"] == "trace-42.a:b"
    for bad in ("has space", "x" * 129, "semi;colon", "é"):
        rid = client.get("/health", headers={"X-Request-ID": bad.encode()}).headers["x-request-id"]
        assert rid != bad and len(rid) == 32
    # Refusals made before the app runs carry it too.
    r = client.post("/predict", content=b"x", headers={"Content-Encoding": "br", "X-Request-ID": "abc"})
    assert r.status_code == 415 and r.headers["x-request-id"] == "abc"


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    with ApiServer(tmp_path_factory.mktemp("metrics"), workers=2) as server:
        yield server


def test_metrics_add_up_across_two_workers(two_workers):
    url = two_workers.url
    before = scrape(httpx.get(f"{url}/metrics").text)
    n = 30
    ids = []
    for i in range(n):  # a new connection each: the kernel spreads them over both workers
        r = httpx.get(f"{url}/health", headers={"X-Request-ID": f"metrics-test-{i}"})
        assert r.status_code == 200
        ids.append(r.headers["x-request-id"])
    for _ in range(4):
        assert httpx.post(f"{url}/predict", json=BITMAP).status_code == 200
    assert ids == [f"metrics-test-{i}" for i in range(n)]

    lines: dict = {}
    for _ in range(50):  # each line is written just after its response
        lines = {line["request_id"]: line for line in two_workers.log_lines() if line.get("logger") == "api.access"}
        if set(ids) <= set(lines):
            break
        time.sleep(0.1)
    served_by = {lines[i]["pid"] for i in ids}
    assert len(served_by) == 2 and served_by < two_workers.workers_pids()  # both workers answered some
    # Whichever worker answers the scrape, it reports every worker's counts.
    for _ in range(6):
        after = scrape(httpx.get(f"{url}/metrics").text)
        health = {"method": "GET", "route": "/health", "status": "200"}
        assert (
            value(after, "deepdraw_http_requests_total", **health)
            - value(before, "deepdraw_http_requests_total", **health)
            == n
        )
        assert (
            value(after, "deepdraw_predictions_total", model="prototypes")  # the default
            - value(before, "deepdraw_predictions_total", model="prototypes")
            == 4
        )
        assert value(after, "deepdraw_workers_alive") == 2
        versions = {dict(labels)["model"] for name, labels in after if name == "deepdraw_model_info"}
        assert versions == set(httpx.get(f"{url}/ready").json()["models"])


def test_access_log_is_json_with_the_request_id(two_workers):
    r = httpx.post(f"{two_workers.url}/predict", json=BITMAP, headers={"X-Request-ID": "log-check-1"})
    assert r.headers["x-request-id"] == "log-check-1"
    r = httpx.get(f"{two_workers.url}/submissions/12345")
    generated = r.headers["x-request-id"]
    by_id: dict = {}
    for _ in range(50):  # a worker writes its line just after the response: give it a moment
        # Every line that starts with "{" must parse (json.loads raises).
        by_id = {line.get("request_id"): line for line in two_workers.log_lines()}
        if {"log-check-1", generated} <= set(by_id):
            break
        time.sleep(0.1)
    first = by_id["log-check-1"]
    assert first["logger"] == "api.access" and first["level"] == "info"
    assert (first["method"], first["path"], first["route"], first["status"]) == ("POST", "/predict", "/predict", 200)
    assert first["duration_ms"] > 0 and first["client"] == "127.0.0.1"
    second = by_id[generated]
    assert second["route"] == "/submissions/{submission_id}"
    assert (second["path"], second["status"]) == ("/submissions/12345", 404)


@pytest.mark.parametrize("path", ["/predict", "/submissions"])
def test_a_client_gone_mid_body_is_counted_as_499_never_500(two_workers, path):
    """Anyone could otherwise inflate the server-error rate an operator alerts on."""
    import socket

    url = two_workers.url
    before = scrape(httpx.get(f"{url}/metrics").text)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", two_workers.port)) as sock:
        sock.sendall(head.encode() + b'{"strokes": [')
    route = {"method": "POST", "route": path}
    for _ in range(50):  # the worker notices the closed connection, then answers nobody
        after = scrape(httpx.get(f"{url}/metrics").text)
        if value(after, "deepdraw_http_requests_total", **route, status="499") > value(
            before, "deepdraw_http_requests_total", **route, status="499"
        ):
            break
        time.sleep(0.1)
    assert (
        value(after, "deepdraw_http_requests_total", **route, status="499")
        - value(before, "deepdraw_http_requests_total", **route, status="499")
        == 1
    )
    assert value(after, "deepdraw_http_requests_total", **route, status="500") == 0
