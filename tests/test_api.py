"""The /predict contract against the shipped model, on real drawings, and every bad input's answer."""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_image import draw_png

from models.kinds import KINDS
from models.loading import latest_version
from sketch.strokes import parse_strokes
from tests.utils.app import app_client
from tests.utils.fixtures import FIXTURES, REPO
from training.data import split_of

MODEL_STORE = REPO / "model_store"


@pytest.fixture(scope="module")
def cat(pairs):
    """A real cat never trained on: the first pair drawing whose bitmap is in the test split."""
    bitmaps, simplified, raw = pairs["cat"]
    i = next(i for i, row in enumerate(bitmaps) if split_of(row.tobytes()) == "test")
    return bitmaps[i].reshape(28, 28), simplified[i]["drawing"], raw[i]["drawing"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def top(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [p["label"] for p in resp.json()["predictions"]]


def test_health_and_ready_never_wait_for_the_thread_pool():
    # FastAPI runs a plain function in the thread pool, which costly requests may fill for seconds;
    # the orchestrator would then restart a live process. Coroutines answer on the event loop.
    import inspect

    from api.routes import health

    assert inspect.iscoroutinefunction(health.health) and inspect.iscoroutinefunction(health.ready)


def test_health_ready_models_classes(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and "cnn" in ready.json()["models"]
    models = client.get("/models").json()["models"]
    assert len(models["cnn"]["classes"]) == 345  # every category of the game
    assert models["cnn"]["metrics"]["top5"] >= 0.85  # among 345 (bench/every_category.py)
    classes = client.get("/classes").json()
    assert classes["cnn"] == models["cnn"]["classes"]


def test_cat_as_bitmap_strokes_and_image(client, cat):
    bitmap, simplified, raw = cat
    # The bitmap, nested and flat, ints and 0-1 floats.
    assert top(client.post("/predict", json={"bitmap": bitmap.tolist()}))[0] == "cat"
    assert top(client.post("/predict", json={"bitmap": (bitmap.ravel() / 255).tolist()}))[0] == "cat"
    # Raw strokes in device pixels, and the simplified ones moved into canvas coordinates.
    assert top(client.post("/predict", json={"strokes": raw}))[0] == "cat"
    canvas = [[[x * 1.5 + 40 for x in xs], [y * 1.5 + 12 for y in ys]] for xs, ys in simplified]
    assert top(client.post("/predict", json={"strokes": canvas}))[0] == "cat"
    # A 400x400 PNG drawn black on white with a thick pen.
    png = draw_png(parse_strokes(simplified), size=400, width=14)
    assert top(client.post("/predict", json={"image": b64(png)}))[0] == "cat"
    assert top(client.post("/predict", json={"image": "data:image/png;base64," + b64(png)}))[0] == "cat"


def test_top_k_beyond_the_classes_returns_every_class(client, cat):
    resp = client.post("/predict", json={"strokes": cat[1], "top_k": 400, "model": "cnn"}).json()
    assert len(resp["predictions"]) == 345


def test_answer_shape(client, cat):
    resp = client.post("/predict", json={"strokes": cat[1], "top_k": 7, "return_bitmap": True}).json()
    probs = [p["probability"] for p in resp["predictions"]]
    assert len(probs) == 7 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert resp["model"]["name"] == "prototypes" and resp["model"]["version"]
    assert set(resp["timings_ms"]) == {"preprocess", "inference"}
    assert np.array(resp["bitmap"]).shape == (28, 28)
    assert "bitmap" not in client.post("/predict", json={"strokes": cat[1]}).json()


def test_batch_answers_in_order_and_is_accurate(client, test_split_bitmaps):
    x, y, classes = test_split_bitmaps
    items = [{"bitmap": row.tolist()} for row in x[:60]]
    results = client.post("/predict/batch", json={"items": items}).json()["results"]
    assert len(results) == 60
    top5 = [classes[label] in [p["label"] for p in r["predictions"]] for r, label in zip(results, y[:60], strict=True)]
    assert np.mean(top5) >= 0.85
    single = client.post("/predict", json=items[7]).json()
    assert single["predictions"] == results[7]["predictions"]


def _png(mode="RGB", size=(50, 50), color="white") -> str:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return b64(buf.getvalue())


BAD = [
    # (body, status, words the message must contain)
    ({}, 422, "exactly one of bitmap, image or strokes (got none)"),
    ({"bitmap": [[0] * 28] * 28, "strokes": [[[0], [0]]]}, 422, "got bitmap, strokes"),
    ({"bitmap": [[0] * 28] * 28}, 422, "empty drawing"),
    ({"strokes": []}, 422, "empty drawing"),
    ({"strokes": [[[], []]]}, 422, "empty drawing"),
    ({"image": _png()}, 422, "empty drawing"),
    ({"bitmap": [[0] * 27] * 28}, 422, "28x28"),
    ({"bitmap": [1] * 783}, 422, "784"),
    ({"bitmap": [[300] * 28] * 28}, 422, "0-255"),
    ({"bitmap": [[-1] * 28] * 28}, 422, "0-255"),
    ({"strokes": [[[0, 1, 2], [0, 1]]]}, 422, "different lengths"),
    ({"strokes": [[[0, 1]]]}, 422, "strokes.0: List should have at least 2 items"),
    ({"strokes": [[[0, 0], [10, 10], [20, 5], [30, 0]]]}, 422, "one list per axis, not [x, y] points"),
    ({"strokes": [[list(range(20001)), list(range(20001))]]}, 422, "at most 20000 items"),
    ({"strokes": [[list(range(10001)), list(range(10001))]] * 2}, 422, "too many points: more than 20000"),
    ({"image": "not base64!!"}, 422, "not valid base64"),
    ({"image": "data:image/png;base64iVBORw0KGgo"}, 422, "image data URL has no ','"),
    ({"image": b64(b"hello, I am not a picture")}, 422, "could not be decoded"),
    ({"image": _png(size=(5000, 5000))}, 422, "too large"),
    ({"strokes": [[[0, 1], [0, 1]]], "model": "resnet"}, 422, "model: Input should be 'cnn', 'rnn', 'ensemble' or"),
    ({"bitmap": [[255] * 28] * 28, "model": "rnn"}, 422, "model 'rnn' reads pen strokes: send 'strokes'"),
    ({"strokes": [[[0, 1], [0, 1]]], "top_k": 0}, 422, "top_k"),
    ({"strokes": [[[0, 1], [0, 1]]], "top_k": 401}, 422, "top_k: Input should be less than or equal to 400"),
    ({"strokes": [[[0, 1], [0, 1]]], "colour": "red"}, 422, "colour"),
]


@pytest.mark.parametrize(("body", "status", "words"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_gets_a_4xx_naming_the_problem(client, body, status, words):
    resp = client.post("/predict", json=body)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["detail"]


def test_a_byte_order_mark_before_the_json_is_ignored(client):
    # Some tools (PowerShell, Notepad) write one; RFC 8259 lets a reader ignore it.
    body = b"\xef\xbb\xbf" + json.dumps({"bitmap": [0] * 300 + [255] * 184 + [0] * 300}).encode()
    resp = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"bitmap": [NaN]}', "finite"),
        (b'{"strokes": [[[0, Infinity], [0, 1]]]}', "finite"),
    ],
)
def test_malformed_json_and_non_finite_numbers(client, raw, words):
    resp = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and words in resp.json()["detail"]


def _drawn_png(draw, size: int = 400) -> str:
    from PIL import ImageDraw

    img = Image.new("L", (size, size), 255)
    draw(ImageDraw.Draw(img))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return b64(buf.getvalue())


def test_ink_too_faint_for_float32_is_answered_and_explained(client):
    # Ink as the schema says (above 0), 0 once read as float32: the explanation has no patch to blank
    # (it used to be a 500); every patch changes nothing.
    resp = client.post("/predict", json={"bitmap": [1e-300] * 784, "explain": True})
    assert resp.status_code == 200, resp.text
    explanation = resp.json()["explanation"]
    assert all(p["drop"] == 0 for p in explanation["patches"]) and explanation["counterfactual"] is None


def test_a_hairline_picture_keeps_its_line_and_is_explained(client):
    # A 1-pixel line on a 400-pixel picture used to fall between the resampling's samples: an empty
    # 28x28, answered as a blank guess, and a 500 when explained.
    line = _drawn_png(lambda d: d.line([(50, 200), (350, 200)], fill=0, width=1))
    resp = client.post("/predict", json={"image": line, "explain": True, "return_bitmap": True})
    assert resp.status_code == 200, resp.text
    assert np.asarray(resp.json()["bitmap"]).any()
    assert resp.json()["explanation"]["patches"]


def test_a_filled_shape_is_answered_at_once(client):
    # Read as one line as thick as the shape: its thinning took thousands of filter passes (minutes).
    disk = _drawn_png(lambda d: d.ellipse([50, 50, 350, 350], fill=0))
    started = time.monotonic()
    resp = client.post("/predict", json={"image": disk})
    assert resp.status_code == 200, resp.text
    assert time.monotonic() - started < 10  # a hang guard, not a speed target


def test_a_drawing_within_the_point_limit_is_never_refused_for_its_number_of_values(client):
    # 20,000 points as one-point strokes with times: the most commas and brackets the limits allow.
    strokes = [[[i % 500], [i // 500], [i]] for i in range(20_000)]
    resp = client.post("/predict", json={"strokes": strokes})
    assert resp.status_code == 200, resp.text[:300]
    resp = client.post("/predict", json={"strokes": [*strokes, [[0], [0], [0]]]})
    assert resp.status_code == 422 and "at most 20000" in resp.json()["detail"]


def test_truncated_image(client, cat):
    png = draw_png(parse_strokes(cat[1]), size=200)
    resp = client.post("/predict", json={"image": b64(png[: len(png) // 2])})
    assert resp.status_code == 422 and "could not be decoded" in resp.json()["detail"]


def test_body_over_the_limit_is_413(client):
    resp = client.post("/predict", content=b" " * 2_000_001, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "too large" in resp.json()["detail"]


def test_batch_errors_name_the_item(client, cat):
    items = [{"strokes": cat[1]}, {"strokes": []}]
    resp = client.post("/predict/batch", json={"items": items})
    assert resp.status_code == 422 and resp.json()["detail"].startswith("items[1]: empty drawing")
    resp = client.post("/predict/batch", json={"items": [{"strokes": cat[1]}] * 65})
    assert resp.status_code == 422 and "items: List should have at most 64 items" in resp.json()["detail"]


def test_missing_model_store_keeps_the_process_up(tmp_path):
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path / "nowhere") as c:
        assert c.get("/health").status_code == 200
        ready = c.get("/ready")
        assert ready.status_code == 503 and "does not exist" in ready.json()["detail"]
        resp = c.post("/predict", json={"strokes": [[[0, 1], [0, 1]]]})
        assert resp.status_code == 503 and "is not available" in resp.json()["detail"]
        assert "does not exist" in resp.json()["detail"]


def copy_of_shipped(store: Path, kind: str, **card_changes) -> Path:
    """A store holding a copy of a shipped model, its card changed as given."""
    src = latest_version(MODEL_STORE / kind)
    dst = store / kind / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("saved_model", "model.keras", "report"))
    card = json.loads((dst / "card.json").read_text()) | card_changes
    (dst / "card.json").write_text(json.dumps(card))
    return dst


def test_corrupt_model_is_reported_by_ready(tmp_path):
    version = copy_of_shipped(tmp_path, "cnn")
    (version / "model.onnx").write_bytes(b"definitely not onnx")
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and "cannot load" in ready.json()["detail"]
        assert c.get("/models").json()["available"] == []
        resp = c.post("/predict", json={"bitmap": [[255] * 28] * 28})
        assert resp.status_code == 503 and "model 'cnn' is not available: cannot load" in resp.json()["detail"]


def test_a_card_for_other_preprocessing_is_refused_with_the_reason(tmp_path):
    copy_of_shipped(tmp_path, "cnn", preprocessing_version="0-old")
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert "made with preprocessing version 0-old, this code runs" in ready.json()["detail"]


def test_a_card_whose_input_does_not_match_its_kind_is_refused(tmp_path):
    card = json.loads((latest_version(MODEL_STORE / "rnn") / "card.json").read_text())
    copy_of_shipped(tmp_path, "rnn", input={**card["input"], "max_len": None})
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path) as c:
        assert "a sequence input needs max_len" in c.get("/ready").json()["detail"]


def test_a_wrong_onnx_file_is_refused_not_served(tmp_path):
    """A valid ONNX graph for another model (the RNN's) in the CNN's place: refused at load, never a 500."""
    version = copy_of_shipped(tmp_path, "cnn")
    shutil.copy(latest_version(MODEL_STORE / "rnn") / "model.onnx", version / "model.onnx")
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path) as c:
        assert "rank-3 input, the card says rank 4" in c.get("/ready").json()["detail"]
        assert c.post("/predict", json={"bitmap": [[255] * 28] * 28}).status_code == 503


@pytest.mark.parametrize(
    ("file", "quantized"),
    [("probabilities.onnx", True), ("embedding.onnx", True), ("probabilities.onnx", False)],
    ids=["int8", "int8-embedding", "float"],
)
def test_a_probabilities_graph_that_is_not_the_exported_one_is_refused(tmp_path, file, quantized):
    """files.onnx_probabilities and files.onnx_embedding answer every probability: an int8 file must
    be the one the card's check was made on (its sha256), a float one must answer as the full graph."""
    onnx = pytest.importorskip("onnx")  # a training dependency: edits the graph here
    card = json.loads((latest_version(MODEL_STORE / "cnn") / "card.json").read_text())
    assert card["quantization"]["top1_agreement"] > 0.95  # the shipped CNN answers in int8
    version = copy_of_shipped(tmp_path, "cnn", **({} if quantized else {"quantization": None}))
    graph = onnx.load(str(version / "model.onnx"))
    (bias,) = [t for t in graph.graph.initializer if list(t.dims) == [len(card["classes"])]]
    values = onnx.numpy_helper.to_array(bias).copy()
    values[0] += 5.0  # the first class's logit raised: other probabilities
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    onnx.save(graph, str(version / file))
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        expected = "not the int8 file the card was exported with" if quantized else "does not give the full graph's"
        assert expected in ready.json()["detail"]


def test_a_missing_onnx_copy_is_reported_not_silently_replaced(tmp_path):
    version = copy_of_shipped(tmp_path, "cnn")
    (version / "model.onnx").unlink()
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path, INFERENCE_RUNTIME="onnx") as c:
        assert "no ONNX copy" in c.get("/ready").json()["detail"]


def test_models_lists_every_kind_from_one_declaration(client):
    body = client.get("/models").json()
    assert body["available"] == list(KINDS) and set(body["models"]) == set(KINDS)
    assert body["errors"] == {}
    for name, card in body["models"].items():
        assert card["kind"] == name and card["classes"] and card["runtime"]
    for name in ("cnn", "rnn"):
        check = body["models"][name]["onnx_check"]
        assert check["split"] == "test" and check["n"] > 1000 and check["max_abs_diff"] < check["tolerance"]
    assert body["models"]["rnn"]["input"]["max_len"] >= 2
    ensemble = body["models"]["ensemble"]
    assert ensemble["classes"] == body["models"]["cnn"]["classes"]  # every CNN class, not only the shared ones
    assert ensemble["ensemble"]["members"] == {
        "cnn": body["models"]["cnn"]["version"],
        "rnn": body["models"]["rnn"]["version"],
    }
    assert body["defaults"] == {"strokes": "prototypes", "bitmap": "prototypes", "image": "prototypes"}
    assert set(client.get("/classes").json()) == {*KINDS, "all"}


def test_limits_are_published(client):
    assert client.get("/limits").json() == {
        "max_top_k": 400,
        "max_batch_items": 64,
        "max_batch_points": 40_000,
        "max_points": 20_000,
        "max_body_bytes": 2_000_000,
        "max_image_pixels": 4096 * 4096,
    }


def read_extremes() -> list[dict]:
    return [json.loads(line) for line in gzip.decompress((FIXTURES / "extremes.ndjson.gz").read_bytes()).splitlines()]


@pytest.mark.parametrize("line", read_extremes(), ids=lambda d: f"{d['_format']}-{d['word']}")
def test_the_official_extremes_are_accepted_by_every_route(client, line):
    """The drawings with the most strokes, the most points and the longest path: never refused."""
    for name in KINDS:
        resp = client.post("/predict", json={"strokes": line["drawing"], "model": name})
        assert resp.status_code == 200, resp.text
    resp = client.post("/predict/batch", json={"items": [{"strokes": line["drawing"]}] * 3})
    assert resp.status_code == 200
    resp = client.post(
        "/submissions",
        json={"label": line["word"], "strokes": line["drawing"], "canvas": {"width": 400, "height": 400}},
    )
    assert resp.status_code == 201, resp.text


def test_hundreds_of_strokes_are_accepted(client, pairs):
    """Dotting and hatching players reach hundreds of strokes (an official drawing has 366): points bound the work."""
    _, simplified, _ = pairs["cat"]
    cat = simplified[0]["drawing"]
    dots = [[[x, x + 1], [y, y]] for x in range(0, 255, 12) for y in range(0, 255, 14)][:366]
    drawing = cat + dots
    assert len(drawing) > 366
    for name in KINDS:
        assert client.post("/predict", json={"strokes": drawing, "model": name}).status_code == 200
    resp = client.post(
        "/submissions", json={"label": "cat", "strokes": drawing, "canvas": {"width": 256, "height": 256}}
    )
    assert resp.status_code == 201, resp.text


def test_default_model_by_input(client, cat):
    bitmap, simplified, _ = cat
    # The model that answers every category (trained, prototype and taught ones) answers all inputs.
    for body in ({"strokes": simplified}, {"bitmap": bitmap.tolist()}):
        assert client.post("/predict", json=body).json()["model"]["name"] == "prototypes"


def test_multi_worker_launcher_serves(tmp_path, cat):
    """python -m api.serve: a SO_REUSEPORT socket per worker, same app; stops cleanly on SIGTERM."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"MODEL_STORE": str(REPO / "model_store"), "DATABASE_URL": f"sqlite:///{tmp_path}/s.db", "PATH": ""}
    cmd = [sys.executable, "-m", "api.serve", "--workers", "2", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not become ready"
                time.sleep(0.5)
        body = json.dumps({"strokes": cat[1]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", body, {"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r)["predictions"][0]["label"] == "cat"
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0


def test_a_truncated_prototypes_file_leaves_the_other_models_serving(tmp_path):
    for kind in ("cnn", "rnn", "ensemble"):
        copy_of_shipped(tmp_path, kind)
    version = copy_of_shipped(tmp_path, "prototypes")
    (bank,) = version.glob("*.npz")
    bank.write_bytes(bank.read_bytes()[: bank.stat().st_size // 2])
    with app_client(f"sqlite:///{tmp_path}/submissions.db", tmp_path) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and f"{bank} is unreadable" in ready.json()["detail"]
        assert c.get("/health").status_code == 200
        strokes = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]
        assert c.post("/predict", json={"strokes": strokes, "model": "cnn"}).status_code == 200
        fallback = c.post("/predict", json={"strokes": strokes})  # the default's next choice answers
        assert fallback.status_code == 200 and fallback.json()["model"]["name"] == "ensemble"
        refused = c.post("/predict", json={"strokes": strokes, "model": "prototypes"})
        assert refused.status_code == 503 and "is unreadable" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("DELETE", "/submissions/stats", 405, "GET, HEAD"),  # not taken for a submission id
        ("OPTIONS", "/submissions/stats", 405, "GET, HEAD"),
        ("PUT", "/predict", 405, "POST"),
        ("OPTIONS", "/categories", 405, "GET, HEAD, POST"),
    ],
)
def test_methods_a_path_does_not_serve_get_405_naming_those_it_does(client, method, path, status, allow):
    resp = client.request(method, path)
    assert (resp.status_code, resp.headers["allow"]) == (status, allow)


@pytest.mark.parametrize("path", ["/health", "/ready", "/models", "/classes", "/limits", "/submissions", "/scores"])
def test_head_answers_every_get_route_without_a_body(client, path):
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_an_unknown_path_is_named_in_its_404(client):
    resp = client.get("/submissions/abc")
    assert resp.status_code == 404 and resp.json()["detail"].startswith("no route for GET /submissions/abc")
