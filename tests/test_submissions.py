"""The submissions store: validation, paging, stats, and that an acknowledged row is never lost."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import get_settings
from api.submissions import SubmissionStore, sqlite_path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "pairs"


def first_drawing(name: str) -> list:
    with gzip.open(PAIRS / f"{name}.simplified.ndjson.gz", "rt") as f:
        return json.loads(f.readline())["drawing"]


CAT = first_drawing("cat")


def body(**overrides) -> dict:
    out = {"label": "cat", "strokes": CAT, "canvas": {"width": 256, "height": 256}}
    out.update(overrides)
    return out


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/nested/submissions.db"


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):
    # No models are needed here: an empty store keeps start-up fast (/predict would answer 503).
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "no-models"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def client(env):
    with TestClient(create_app()) as c:
        yield c


def test_sqlite_path_relative_and_absolute():
    assert sqlite_path("sqlite:///data/submissions.db") == Path("data/submissions.db")
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    for bad in ("postgres://u@h/db", "data/x.db", "sqlite:///:memory:", "sqlite:///"):
        with pytest.raises(ValueError, match="DATABASE_URL"):
            sqlite_path(bad)


def test_schema_created_at_start_in_wal_mode(client, db_url):
    path = sqlite_path(db_url)
    assert path.is_file()  # the parent folder was created too
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 0


def test_post_then_get(client):
    preds = [{"label": "cat", "probability": 0.9}, {"label": "dog", "probability": 0.05}]
    r = client.post("/submissions", json=body(label="  cat ", predictions=preds))
    assert r.status_code == 201, r.text
    created = r.json()
    assert isinstance(created["id"], int)
    assert created["label"] == "cat"
    assert created["predictions"] == preds

    r = client.get(f"/submissions/{created['id']}")
    assert r.status_code == 200
    item = r.json()
    assert item["strokes"] == CAT  # dataset form [[x...], [y...]], as sent
    assert item["canvas"] == {"width": 256, "height": 256}
    # The simplified copy is what training reads: integers 0-255, one [[x...], [y...]] per stroke.
    assert len(item["simplified"]) == len(CAT)
    assert all(0 <= v <= 255 for s in item["simplified"] for axis in s for v in axis)
    assert client.get("/submissions/999999").status_code == 404


def test_canvas_coordinates_and_timestamps_are_kept(client):
    strokes = [[[10.5, 200.25, 380.0], [20.0, 40.5, 390.0], [0, 16, 40]]]
    r = client.post("/submissions", json=body(strokes=strokes, canvas={"width": 400, "height": 400}))
    assert r.status_code == 201, r.text
    assert client.get(f"/submissions/{r.json()['id']}").json()["strokes"] == strokes


def test_list_is_paged_newest_first_and_filtered(client):
    ids = []
    for label in ["cat", "dog", "cat", "airplane", "cat"]:
        ids.append(client.post("/submissions", json=body(label=label)).json()["id"])

    page = client.get("/submissions", params={"limit": 2}).json()
    assert page["total"] == 5
    assert [i["id"] for i in page["items"]] == ids[::-1][:2]
    page2 = client.get("/submissions", params={"limit": 2, "offset": 2}).json()
    assert [i["id"] for i in page2["items"]] == ids[::-1][2:4]
    assert all("strokes" in i and "id" in i for i in page["items"])

    cats = client.get("/submissions", params={"label": "cat"}).json()
    assert cats["total"] == 3
    assert [i["id"] for i in cats["items"]] == [ids[4], ids[2], ids[0]]
    assert client.get("/submissions", params={"label": "zebra"}).json() == {
        "items": [],
        "total": 0,
        "limit": 20,
        "offset": 0,
    }

    stats = client.get("/submissions/stats").json()
    assert stats == {"total": 5, "labels": {"cat": 3, "airplane": 1, "dog": 1}}


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"label": "x" * 65}, "label"),
    ],
)
def test_list_bad_query(client, params, needle):
    r = client.get("/submissions", params=params)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


@pytest.mark.parametrize(
    ("overrides", "status", "needle"),
    [
        ({"label": ""}, 422, "label must not be empty"),
        ({"label": "   "}, 422, "label must not be empty"),
        ({"label": "x" * 65}, 422, "label is too long"),
        ({"label": "cat\n"}, 201, None),  # surrounding whitespace is stripped
        ({"label": "c\x00t"}, 422, "control characters"),
        ({"label": None}, 422, "label"),
        ({"strokes": []}, 422, "empty drawing"),
        ({"strokes": [[[], []]]}, 422, "empty drawing"),
        ({"strokes": [[[1, 2, 3], [1, 2]]]}, 422, "different lengths"),
        ({"strokes": [[[1, 2]]]}, 422, "strokes.0: List should have at least 2 items"),
        ({"strokes": [[list(range(20_001)), list(range(20_001))]]}, 422, "at most 20000 items"),
        ({"strokes": "cat"}, 422, "strokes"),
        ({"canvas": {"width": 0, "height": 400}}, 422, "canvas.width"),
        ({"canvas": {"width": 400, "height": 5000}}, 422, "canvas.height"),
        ({"canvas": {"width": 400}}, 422, "canvas.height"),
        ({"canvas": None}, 422, "canvas"),
        ({"predictions": [{"label": "cat"}]}, 422, "predictions"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_post_validation(client, overrides, status, needle):
    r = client.post("/submissions", json=body(**overrides))
    assert r.status_code == status, r.text
    if needle:
        assert needle in r.json()["detail"]


def test_missing_fields_and_bad_json(client):
    r = client.post("/submissions", json={"label": "cat"})
    assert r.status_code == 422
    assert "strokes" in r.json()["detail"] and "canvas" in r.json()["detail"]
    r = client.post("/submissions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["detail"]
    r = client.post("/submissions", content=b'{"label": "cat", "strokes": [[[NaN], [1]]], "canvas": {}}')
    assert r.status_code == 422


def test_nothing_is_stored_after_a_refusal(client):
    client.post("/submissions", json=body(label=""))
    client.post("/submissions", json=body(strokes=[]))
    assert client.get("/submissions/stats").json()["total"] == 0


def test_acknowledged_row_is_read_by_a_new_app_and_connection(env, db_url):
    with TestClient(create_app()) as c:
        new_id = c.post("/submissions", json=body(label="dog")).json()["id"]
    # A plain connection of its own, and then a fresh app on the same file.
    with sqlite3.connect(sqlite_path(db_url)) as conn:
        assert conn.execute("SELECT label FROM submissions WHERE id = ?", (new_id,)).fetchone() == ("dog",)
    with TestClient(create_app()) as c:
        assert c.get(f"/submissions/{new_id}").json()["label"] == "dog"


def test_concurrent_writes_from_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store = SubmissionStore(tmp_path / "c.db")
    assert store.open()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: store.add(f"l{i % 3}", CAT, (256, 256))["id"], range(40)))
    assert len(set(ids)) == 40
    assert sum(store.stats().values()) == 40


def test_unopenable_database_answers_503_then_recovers(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{blocker}/sub/x.db")
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "no-models"))
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as c:
            r = c.post("/submissions", json=body())
            assert r.status_code == 503
            assert "cannot be opened" in r.json()["detail"]
            assert c.get("/submissions").status_code == 503
            assert c.get("/health").status_code == 200  # the process stays up
            blocker.unlink()  # the disk is back: the next call opens the store
            assert c.post("/submissions", json=body()).status_code == 201
    finally:
        get_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_api(port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("uvicorn did not start within 60 s")


def test_acknowledged_submission_survives_kill_9(tmp_path):
    """POST, get 201, SIGKILL the server at once, restart it: the submission is there."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/db/submissions.db",
        "MODEL_STORE": str(tmp_path / "no-models"),
    }
    port = _free_port()
    proc = _start_api(port, env)
    try:
        ids = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for label in ("cat", "dog", "airplane"):
                r = http.post("/submissions", json=body(label=label))
                assert r.status_code == 201
                ids.append(r.json()["id"])
        proc.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint, no close
        proc.wait(10)
        proc = _start_api(port, env)
        r = httpx.get(f"http://127.0.0.1:{port}/submissions", timeout=10)
        assert [i["id"] for i in r.json()["items"]] == ids[::-1]
        assert [i["label"] for i in r.json()["items"]] == ["airplane", "dog", "cat"]
    finally:
        proc.kill()
        proc.wait(10)
