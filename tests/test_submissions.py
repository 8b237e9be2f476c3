"""The submissions API on both back ends: validation, paging, stats, delete with the token,
thumbnails, text and integer bounds, a database that is down, and that an acknowledged row is never lost."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text

from api.thumbnails import canvas_side, render_png
from sketch.raster import render_simplified
from sketch.strokes import from_dataset_format
from store import submissions as queries
from store.db import Database, parse_database_url
from store.schema import head
from store.submissions import hash_token
from tests.utils.app import app_client
from tests.utils.postgres import postgres_server
from tests.utils.servers import api_env, free_port, start_api, wait_for
from tests.utils.submissions import CAT, body

ROOT = Path(__file__).resolve().parents[1]
MAX_INT64 = 2**63 - 1


def raw_rows(database_url: str, sql: str, **params) -> list[tuple]:
    """Read with an engine of its own (not the app's), to see what is really stored."""
    engine = create_engine(parse_database_url(database_url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


@pytest.fixture
def client(db_client: TestClient) -> TestClient:
    return db_client


def test_database_url_forms():
    assert parse_database_url("sqlite:///data/submissions.db").database == "data/submissions.db"
    assert parse_database_url("sqlite:////abs/x.db").database == "/abs/x.db"
    # What managed PostgreSQL services hand out means psycopg 3 here.
    for given in ("postgres://u:p@h/db", "postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"):
        assert parse_database_url(given).drivername == "postgresql+psycopg"
    for bad in ("data/x.db", "sqlite:///:memory:", "sqlite://", "mysql://u@h/db", "postgresql+psycopg2://u@h/db"):
        with pytest.raises(ValueError, match=r"DATABASE_URL|psycopg"):
            parse_database_url(bad)


def test_schema_is_migrated_at_start(client, database_url):
    assert raw_rows(database_url, "SELECT version_num FROM alembic_version") == [(head(),)]
    assert raw_rows(database_url, "SELECT COUNT(*) FROM submissions") == [(0,)]
    if database_url.startswith("sqlite"):
        assert Path(parse_database_url(database_url).database).is_file()  # the folder was created too
        assert raw_rows(database_url, "PRAGMA journal_mode") == [("wal",)]


def test_post_then_get(client):
    preds = [{"label": "cat", "probability": 0.9}, {"label": "dog", "probability": 0.05}]
    r = client.post("/submissions", json=body(label="  cat ", predictions=preds))
    assert r.status_code == 201, r.text
    created = r.json()
    assert isinstance(created["id"], int)
    assert created["label"] == "cat"
    assert created["label_source"] == "player"
    assert created["predictions"] == preds
    assert len(created["delete_token"]) >= 32

    r = client.get(f"/submissions/{created['id']}")
    assert r.status_code == 200
    item = r.json()
    assert "delete_token" not in item  # shown once, at creation
    assert item["strokes"] == CAT  # dataset form [[x...], [y...]], as sent
    assert item["canvas"] == {"width": 256, "height": 256}
    assert item == {k: v for k, v in created.items() if k != "delete_token"}
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
    # A list carries no strokes: the thumbnail's path and the counts; the drawing is one GET away.
    first = page["items"][0]
    assert "strokes" not in first and "simplified" not in first
    assert first["thumbnail"] == f"/submissions/{first['id']}/thumbnail.png"
    assert client.get(first["thumbnail"]).headers["content-type"] == "image/png"
    full = client.get(f"/submissions/{first['id']}").json()
    assert (first["strokes_count"], first["points_count"]) == (
        len(full["strokes"]),
        sum(len(s[0]) for s in full["strokes"]),
    )

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
        ({"offset": 2**63}, "offset"),
        ({"offset": 10**30}, "offset"),
        ({"label": "x" * 65}, "label"),
    ],
)
def test_list_bad_query(client, params, needle):
    r = client.get("/submissions", params=params)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


@pytest.mark.parametrize("path", ["/submissions/{}", "/submissions/{}/thumbnail.png"])
def test_ids_beyond_64_bits_are_422_and_the_largest_is_404(client, path):
    """Issue 11 item 5: SQLite raised OverflowError (500) for ids >= 2^63."""
    for too_big in (2**63, 2**64, 10**30):
        r = client.get(path.format(too_big))
        assert r.status_code == 422, r.text
        assert "submission_id" in r.json()["detail"]
    assert client.delete(f"/submissions/{2**63}", headers={"X-Delete-Token": "x"}).status_code == 422
    assert client.get(path.format(MAX_INT64)).status_code == 404
    assert client.get(path.format(0)).status_code == 422


def test_the_largest_offset_is_an_empty_page(client):
    client.post("/submissions", json=body())
    r = client.get("/submissions", params={"offset": MAX_INT64})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [] and r.json()["total"] == 1


@pytest.mark.parametrize(
    ("overrides", "status", "needle"),
    [
        ({"label": ""}, 422, "label must not be empty"),
        ({"label": "   "}, 422, "label must not be empty"),
        ({"label": "x" * 65}, 422, "label is too long"),
        ({"label": "cat\n"}, 201, None),  # surrounding whitespace is stripped
        ({"label": "c\x00t"}, 422, "must not contain control"),
        ({"label": "dog\u202ecat"}, 422, "text-direction"),  # would read backwards to other players
        ({"label": "a\u2028b"}, 422, "line-break"),
        ({"label": "family \U0001f468\u200d\U0001f469\u200d\U0001f467"}, 201, None),  # joined emoji
        ({"label": "caf\u00e9\u00a0cr\u00e8me"}, 201, None),  # a no-break space
        ({"label": None}, 422, "label"),
        ({"label_source": "prompt"}, 201, None),
        ({"label_source": "confirmed"}, 201, None),
        ({"label_source": "unknown"}, 422, "label_source"),
        ({"strokes": []}, 422, "empty drawing"),
        ({"strokes": [[[], []]]}, 422, "empty drawing"),
        ({"strokes": [[[1, 2, 3], [1, 2]]]}, 422, "different lengths"),
        ({"strokes": [[[1, 2]]]}, 422, "strokes.0"),
        ({"strokes": [[list(range(10_001)), list(range(10_001))]] * 2}, 422, "too many points"),
        ({"strokes": [[list(range(20_001)), list(range(20_001))]]}, 422, "at most 20000"),
        ({"strokes": "cat"}, 422, "strokes"),
        ({"canvas": {"width": 0, "height": 400}}, 422, "canvas.width"),
        ({"canvas": {"width": 400, "height": 5000}}, 422, "canvas.height"),
        ({"canvas": {"width": 400}}, 422, "canvas.height"),
        ({"canvas": None}, 422, "canvas"),
        ({"predictions": [{"label": "cat"}]}, 422, "predictions"),
        ({"predictions": [{"label": "", "probability": 0.5}]}, 422, "predictions.0.label"),
        ({"predictions": [{"label": "cat", "probability": 1.5}]}, 422, "predictions.0.probability"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_post_validation(client, overrides, status, needle):
    r = client.post("/submissions", json=body(**overrides))
    assert r.status_code == status, r.text
    if needle:
        assert needle in r.json()["detail"]
    if status == 201:
        assert r.json()["label_source"] == overrides.get("label_source", "player")


def test_missing_fields_and_bad_json(client):
    r = client.post("/submissions", json={"label": "cat"})
    assert r.status_code == 422
    assert "strokes" in r.json()["detail"] and "canvas" in r.json()["detail"]
    r = client.post("/submissions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["detail"]
    r = client.post(
        "/submissions",
        content=b'{"label": "cat", "strokes": [[[NaN], [1]]], "canvas": {}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None])
def test_a_body_not_declared_as_json_is_refused_and_nothing_is_stored(client, content_type):
    """What a page on another site may send without a CORS preflight must not plant a drawing."""
    body = json.dumps({"label": "cat", "label_source": "player", "strokes": CAT, "canvas": {"width": 9, "height": 9}})
    before = client.get("/submissions/stats").json()
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/submissions", content=body.encode(), headers=headers)
    assert r.status_code == 415
    assert "Content-Type: application/json" in r.json()["detail"]
    assert client.get("/submissions/stats").json() == before
    r = client.post("/submissions", content=body.encode(), headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201


@pytest.mark.parametrize(
    "raw",
    [
        '{"label": "\\ud800", "strokes": STROKES, "canvas": {"width": 9, "height": 9}}',
        '{"label": "c\\udfffat", "strokes": STROKES, "canvas": {"width": 9, "height": 9}}',
        '{"label": "cat", "strokes": STROKES, "canvas": {"width": 9, "height": 9},'
        ' "predictions": [{"label": "\\ud800", "probability": 0.5}]}',
    ],
)
def test_lone_surrogates_are_refused_before_commit(client, raw):
    """Issue 11 item 1: a lone surrogate used to be committed and then answered 500, for ever after."""
    r = client.post(
        "/submissions",
        content=raw.replace("STROKES", json.dumps(CAT)).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    # Refused by the JSON parser itself (a surrogate escape must come in a pair), naming where.
    detail = r.json()["detail"]
    assert "surrogate" in detail or "hex escape at line 1 column" in detail, detail
    assert "\ud800" not in r.text and "\\ud800" not in r.text  # not echoed back
    assert client.get("/submissions/stats").json()["total"] == 0
    assert client.get("/submissions").status_code == 200


def test_nothing_is_stored_after_a_refusal(client):
    client.post("/submissions", json=body(label=""))
    client.post("/submissions", json=body(strokes=[]))
    assert client.get("/submissions/stats").json()["total"] == 0


def test_delete_with_the_token(client, database_url):
    keep = client.post("/submissions", json=body(label="dog")).json()
    gone = client.post("/submissions", json=body(label="cat")).json()
    # Only a hash of the token is stored.
    stored = raw_rows(database_url, "SELECT delete_token_hash FROM submissions WHERE id = :i", i=gone["id"])
    assert stored == [(hash_token(gone["delete_token"]),)]
    assert gone["delete_token"] not in str(raw_rows(database_url, "SELECT * FROM submissions"))

    url = f"/submissions/{gone['id']}"
    assert client.delete(url).status_code == 403  # no token
    assert client.delete(url, headers={"X-Delete-Token": keep["delete_token"]}).status_code == 403
    assert client.get(url).status_code == 200

    r = client.delete(url, headers={"X-Delete-Token": gone["delete_token"]})
    assert r.status_code == 204 and r.content == b""
    assert client.get(url).status_code == 404
    assert client.get(f"{url}/thumbnail.png").status_code == 404
    assert [i["id"] for i in client.get("/submissions").json()["items"]] == [keep["id"]]
    assert client.get("/submissions/stats").json() == {"total": 1, "labels": {"dog": 1}}
    assert raw_rows(database_url, "SELECT COUNT(*) FROM submissions WHERE id = :i", i=gone["id"]) == [(0,)]
    assert client.delete(url, headers={"X-Delete-Token": gone["delete_token"]}).status_code == 404
    # The id of a deleted submission is never given to another one.
    assert client.post("/submissions", json=body()).json()["id"] > gone["id"]


def test_thumbnail_png_matches_the_dataset_rendering(client):
    item = client.post("/submissions", json=body()).json()
    r = client.get(f"/submissions/{item['id']}/thumbnail.png")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (112, 112)
    for size in (28, 56, 256):
        image = Image.open(io.BytesIO(client.get(f"/submissions/{item['id']}/thumbnail.png?size={size}").content))
        assert image.size == (size, size)
    # Dark ink on white, where sketch.raster puts the (white on black) ink of the dataset's bitmap.
    ink = 255 - np.asarray(image.convert("L"), dtype=float)
    expected = render_simplified(from_dataset_format(item["simplified"]), side=256).astype(float)
    assert np.corrcoef(ink.ravel(), expected.ravel())[0, 1] > 0.95
    for bad in (27, 257, "big"):
        r = client.get(f"/submissions/{item['id']}/thumbnail.png", params={"size": bad})
        assert r.status_code == 422 and "size" in r.json()["detail"]


def test_acknowledged_row_is_read_by_a_new_app_and_engine(database_url, no_models):
    with app_client(database_url, no_models) as c:
        new_id = c.post("/submissions", json=body(label="dog")).json()["id"]
    assert raw_rows(database_url, "SELECT label FROM submissions WHERE id = :i", i=new_id) == [("dog",)]
    with app_client(database_url, no_models) as c:
        assert c.get(f"/submissions/{new_id}").json()["label"] == "dog"


def test_concurrent_writes_from_threads(database_url):
    db = Database(database_url)

    def add(i: int) -> int:
        with db.session() as s:
            row, _ = queries.add(
                s,
                label=f"l{i % 3}",
                label_source="player",
                strokes=CAT,
                simplified=CAT,
                canvas=(9, 9),
                predictions=None,
            )
            return row.id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(add, range(40)))
    assert len(set(ids)) == 40
    with db.session() as s:
        assert sum(queries.stats(s).values()) == 40
    db.dispose()


def test_unopenable_sqlite_answers_503_then_recovers(tmp_path, no_models):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be")
    with app_client(f"sqlite:///{blocker}/sub/x.db", no_models) as c:
        r = c.post("/submissions", json=body())
        assert r.status_code == 503
        assert "cannot be opened" in r.json()["detail"]
        assert c.get("/submissions").status_code == 503
        assert c.get("/health").status_code == 200  # the process stays up
        blocker.unlink()  # the disk is back: the next call opens the store
        assert c.post("/submissions", json=body()).status_code == 201


def test_postgres_down_answers_503_then_recovers(no_models):
    """A server of its own, stopped and started under the running app: 503 with the reason, then back."""
    with postgres_server() as server:
        url = server.create_database()
        server.stop()
        with app_client(url, no_models) as c:
            r = c.post("/submissions", json=body(label="early"))
            assert r.status_code == 503
            assert "the database cannot be opened: connection failed" in r.json()["detail"]
            assert c.get("/health").status_code == 200
            server.start()
            first = c.post("/submissions", json=body(label="first"))
            assert first.status_code == 201, first.text

            server.stop("immediate")
            for call in (lambda: c.post("/submissions", json=body(label="lost")), lambda: c.get("/submissions")):
                r = call()
                assert r.status_code == 503, r.text
                assert "the database is unavailable" in r.json()["detail"]
            server.start()
            assert c.post("/submissions", json=body(label="second")).status_code == 201
            labels = [i["label"] for i in c.get("/submissions").json()["items"]]
            assert labels == ["second", "first"]  # nothing refused was stored


def _start_api(port: int, env: dict, log: Path) -> subprocess.Popen:
    proc = start_api(port, env, log)
    wait_for(f"http://127.0.0.1:{port}/health", proc, 60, "the API")  # no models: /ready stays 503
    return proc


def test_acknowledged_submission_survives_kill_9(tmp_path, database_url):
    """POST, get 201, SIGKILL the server at once, restart it, after every submission: all are there."""
    env = api_env(database_url, MODEL_STORE=str(tmp_path / "no-models"))
    port, log = free_port(), tmp_path / "api.log"
    proc = _start_api(port, env, log)
    ids: list[int] = []
    try:
        for label in ("cat", "dog", "airplane"):
            r = httpx.post(f"http://127.0.0.1:{port}/submissions", json=body(label=label), timeout=10)
            assert r.status_code == 201
            ids.append(r.json()["id"])
            proc.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint, no close
            proc.wait(10)
            proc = _start_api(port, env, log)
            r = httpx.get(f"http://127.0.0.1:{port}/submissions", timeout=10)
            assert [i["id"] for i in r.json()["items"]] == ids[::-1]
        assert [i["label"] for i in r.json()["items"]] == ["airplane", "dog", "cat"]
    finally:
        proc.kill()
        proc.wait(10)


def test_thumbnail_of_a_pathological_drawing_is_drawn_small_and_scaled_up():
    """Ink is bounded: 20,000 page-wide zigzag points are drawn on a small canvas, not a 512 px one."""
    zigzag = [[list(range(0, 250)) * 80, [0, 255] * 10_000]]
    strokes = [np.asarray(s, dtype=float).T for s in zigzag]
    assert canvas_side(strokes, 256) == 28
    assert canvas_side([np.asarray(s, dtype=float).T for s in CAT], 256) == 512  # an ordinary drawing
    image = Image.open(io.BytesIO(render_png(zigzag, 256)))
    assert image.size == (256, 256)
    assert np.asarray(image).min() < 128  # ink is there


def test_a_page_of_fat_drawings_stays_small(client):
    """100 legal drawings of 20,000 points each: the list answers without their strokes."""
    zigzag = [[[float(i % 2 * 300) for i in range(20_000)], [float(i) for i in range(20_000)]]]
    for _ in range(100):
        assert client.post("/submissions", json=body(strokes=zigzag)).status_code == 201
    resp = client.get("/submissions", params={"limit": 100})
    assert resp.status_code == 200 and len(resp.json()["items"]) == 100
    assert len(resp.content) < 100_000  # ~270 KB of strokes per drawing stay in the database


def test_a_postgresql_query_that_hangs_is_stopped_and_answered_503(postgres):
    """The statement deadline: a query the server does not finish in time becomes a 503, not a wait."""
    from sqlalchemy import text

    from store.db import PG_STATEMENT_TIMEOUT_MS, StoreUnavailableError

    db = Database(postgres.create_database(), migrate=True)
    with db.session() as session:
        assert session.execute(text("SHOW statement_timeout")).scalar() == f"{PG_STATEMENT_TIMEOUT_MS // 1000}s"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError), db.session() as session:
        session.execute(text("SELECT pg_sleep(30)"))
    assert time.monotonic() - started < PG_STATEMENT_TIMEOUT_MS / 1000 + 3
    db.dispose()


def test_a_frozen_postgresql_server_is_answered_503_and_loses_nothing_acknowledged(postgres):
    """A server stopped with SIGSTOP still has its connections acknowledged by the kernel, so neither
    TCP deadline nor the server's statement timeout fires: the client's own deadline answers 503.
    The write refused that way was never committed, and once the server resumes all is served."""
    from store.db import PG_ANSWER_DEADLINE_S, PG_CONNECT_TIMEOUT_S

    with app_client(postgres.create_database()) as client:
        assert client.post("/submissions", json=body(label="cat")).status_code == 201
        with postgres.frozen(), ThreadPoolExecutor(2) as pool:
            started = time.monotonic()
            write = pool.submit(client.post, "/submissions", json=body(label="dog"))
            read = pool.submit(client.get, "/submissions")
            answers = [write.result(), read.result()]
            waited = time.monotonic() - started
        assert [a.status_code for a in answers] == [503, 503]
        assert "did not answer" in answers[0].json()["detail"] or "timeout" in answers[0].json()["detail"]
        assert waited < PG_ANSWER_DEADLINE_S + PG_CONNECT_TIMEOUT_S + 3
        resp = client.get("/submissions")
        assert resp.status_code == 200
        assert [item["label"] for item in resp.json()["items"]] == ["cat"]
        assert client.post("/submissions", json=body(label="owl")).status_code == 201
