"""Categories taught by players: POST/GET/DELETE /categories, guessed from the next request on,
durable across a restart and seen by a second API process on the same database (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from tests.utils.app import app_client
from tests.utils.servers import running_api


def letter(name: str, jitter: int = 0, seed: int = 0) -> list:
    """A hand-drawn-looking capital letter (canvas pixels), a shape no Quick, Draw! category has."""
    rng = np.random.default_rng(seed)
    shapes = {
        "K": [[(100, 50), (100, 350)], [(260, 50), (100, 210), (270, 350)]],
        "E": [[(250, 50), (100, 50), (100, 350), (250, 350)], [(100, 200), (220, 200)]],
    }

    def wobble(points):
        xs = [float(x + rng.integers(-jitter, jitter + 1)) for x, _ in points]
        ys = [float(y + rng.integers(-jitter, jitter + 1)) for _, y in points]
        return [xs, ys]

    return [wobble(stroke) for stroke in shapes[name]]


def examples(name: str, n: int, first_seed: int = 0) -> list:
    return [letter(name, jitter=12, seed=first_seed + i) for i in range(n)]


@pytest.fixture()
def client(fresh_database_url):
    """The app on the shipped models, on a new SQLite file or a new PostgreSQL database (migrated at start)."""
    with app_client(fresh_database_url, MAX_TAUGHT_CATEGORIES="2") as c:
        yield c


def guess(client_or_url, strokes) -> dict:
    body = {"strokes": strokes, "top_k": 3, "model": "prototypes"}  # the model that answers taught classes
    if isinstance(client_or_url, str):
        return httpx.post(f"{client_or_url}/predict", json=body, timeout=30).json()["predictions"][0]
    return client_or_url.post("/predict", json=body).json()["predictions"][0]


def test_teach_guess_list_and_delete(client):
    assert client.get("/categories").json() == {"items": [], "max_categories": 2}
    before = guess(client, letter("K", 12, seed=99))
    assert before["kind"] in ("trained", "prototype")

    resp = client.post("/categories", json={"name": "  letter   K ", "drawings": examples("K", 3)})
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "letter K" and resp.json()["examples"] == 3
    top = guess(client, letter("K", 12, seed=99))
    assert (top["label"], top["kind"]) == ("letter K", "taught")
    listed = client.get("/categories").json()["items"]
    assert [(c["name"], c["examples"]) for c in listed] == [("letter K", 3)]
    classes = client.get("/classes").json()
    assert {"label": "letter K", "kind": "taught"} in classes["all"] and len(classes["all"]) == 346

    # Only whoever taught it may delete it: the token of the 201, stored only hashed.
    token = resp.json()["delete_token"]
    assert "delete_token" not in listed[0]
    assert client.delete("/categories/letter K").status_code == 403
    assert client.delete("/categories/letter K", headers={"X-Delete-Token": "guess"}).status_code == 403
    assert client.get("/categories").json()["items"] != []
    assert client.delete("/categories/LETTER k", headers={"X-Delete-Token": token}).status_code == 204
    assert client.get("/categories").json()["items"] == []
    assert guess(client, letter("K", 12, seed=99))["label"] != "letter K"
    assert client.delete("/categories/letter K", headers={"X-Delete-Token": token}).status_code == 404


def test_classes_lists_every_category_with_its_kind(client):
    body = client.get("/classes").json()
    kinds = [c["kind"] for c in body["all"]]
    assert len(body["all"]) == 345 and kinds.count("trained") == 345  # one network knows every category
    assert body["prototypes"] == [c["label"] for c in body["all"]] == body["cnn"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": "cat", "drawings": examples("K", 3)}, "'cat' is already a category of the model"),
        ({"name": "The Great Wall of china", "drawings": examples("K", 3)}, "already a category"),
        ({"name": "K", "drawings": examples("K", 2)}, "drawings: List should have at least 3 items"),
        ({"name": "K", "drawings": examples("K", 51)}, "drawings: List should have at most 50 items"),
        ({"name": "K", "drawings": [*examples("K", 2), [[[], []]]]}, "drawings[2]: empty drawing"),
        ({"name": "K", "drawings": [*examples("K", 2), []]}, "drawings[2]"),
        ({"name": "K", "drawings": [*examples("K", 2), [[[1, 2, 3], [1]]]]}, "drawings[2]"),
        ({"name": "   ", "drawings": examples("K", 3)}, "name must not be empty"),
        ({"name": "x" * 41, "drawings": examples("K", 3)}, "name is too long"),
        ({"name": "<script>", "drawings": examples("K", 3)}, "name may hold letters"),
        # Look-alikes of a built-in name: case, full-width, mathematical bold, a Cyrillic "а".
        ({"name": "CAT", "drawings": examples("K", 3)}, "'cat' is already a category of the model"),
        ({"name": "ｃａｔ", "drawings": examples("K", 3)}, "'cat' is already a category of the model"),
        ({"name": "𝐜𝐚𝐭", "drawings": examples("K", 3)}, "'cat' is already a category of the model"),
        ({"name": "c\u0430t", "drawings": examples("K", 3)}, "'cat' is already a category of the model"),
        # Names that show as nothing, or hide characters.
        ({"name": "\u3164", "drawings": examples("K", 3)}, "name must not hold invisible characters (U+3164)"),
        ({"name": "K\u200bK", "drawings": examples("K", 3)}, "invisible characters (U+200B)"),
        ({"name": "K", "drawings": examples("K", 3), "extra": 1}, "extra"),
    ],
)
def test_bad_categories_are_refused_with_the_reason(client, body, detail):
    resp = client.post("/categories", json=body)
    assert resp.status_code in (409, 422) and detail in resp.json()["detail"], resp.text
    assert client.get("/categories").json()["items"] == []


def test_existing_names_and_the_limit_are_conflicts(client):
    assert client.post("/categories", json={"name": "K", "drawings": examples("K", 3)}).status_code == 201
    for same in ("K", "k", "Ｋ", "\u039a"):  # itself, its lower case, full-width, a Greek capital kappa
        again = client.post("/categories", json={"name": same, "drawings": examples("K", 3, 10)})
        assert again.status_code == 409 and "named 'K' exists already" in again.json()["detail"], same
    assert client.post("/categories", json={"name": "E", "drawings": examples("E", 3)}).status_code == 201
    third = client.post("/categories", json={"name": "E2", "drawings": examples("E", 3, 10)})
    assert third.status_code == 409 and "at most 2" in third.json()["detail"]
    assert [c["name"] for c in client.get("/categories").json()["items"]] == ["K", "E"]


def settled(probe, wanted, seconds: float = 10.0):
    """``probe()`` once it equals ``wanted``, or its last value after ``seconds``: another process
    catches up with taught categories in the background (``api.taught.POLL_SECONDS``)."""
    deadline = time.monotonic() + seconds
    while (value := probe()) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_taught_categories_survive_a_restart_and_reach_every_process(tmp_path, fresh_database_url):
    db = fresh_database_url
    with running_api(db, tmp_path / "a.log") as a, running_api(db, tmp_path / "b.log") as b:
        resp = httpx.post(f"{a}/categories", json={"name": "letter E", "drawings": examples("E", 4)}, timeout=60)
        assert resp.status_code == 201, resp.text
        # The other process answers it within its poll interval; this one at once.
        assert guess(a, letter("E", 12, seed=77))["label"] == "letter E"
        assert settled(lambda: guess(b, letter("E", 12, seed=77))["label"], "letter E") == "letter E"
        token = {"X-Delete-Token": resp.json()["delete_token"]}
        assert httpx.delete(f"{b}/categories/letter E", headers=token, timeout=30).status_code == 204
        assert guess(b, letter("E", 12, seed=77))["label"] != "letter E"
        assert settled(lambda: guess(a, letter("E", 12, seed=77))["label"] != "letter E", True)
        assert httpx.post(f"{b}/categories", json={"name": "K", "drawings": examples("K", 3)}, timeout=60).is_success
    with running_api(db, tmp_path / "c.log") as c:
        assert [i["name"] for i in httpx.get(f"{c}/categories", timeout=30).json()["items"]] == ["K"]
        top = guess(c, letter("K", 12, seed=5))
        assert (top["label"], top["kind"]) == ("K", "taught")
