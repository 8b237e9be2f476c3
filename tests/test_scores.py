"""The leaderboard on both back ends: bounds, names, ordering, and the database's own checks."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from store import scores as queries
from store.db import Database


def score(**overrides) -> dict:
    out = {"name": "Ada", "rounds_won": 3, "rounds_played": 5, "total_seconds": 42.5}
    out.update(overrides)
    return out


def test_post_then_leaderboard_order(db_client):
    posted = [
        score(name="slow", rounds_won=4, total_seconds=200.0),
        score(name="fast", rounds_won=4, total_seconds=100.0),
        score(name="best", rounds_won=5, total_seconds=250.0),
        score(name="tie first", rounds_won=4, total_seconds=100.0),
        score(name="none", rounds_won=0, total_seconds=10.0),
    ]
    for s in posted:
        r = db_client.post("/scores", json=s)
        assert r.status_code == 201, r.text
        created = r.json()
        assert {k: created[k] for k in s} == s
        assert isinstance(created["id"], int) and created["created_at"].endswith("+00:00")
    board = db_client.get("/scores").json()["items"]
    # Most rounds won, then fastest, then whoever was first.
    assert [i["name"] for i in board] == ["best", "fast", "tie first", "slow", "none"]
    assert [i["name"] for i in db_client.get("/scores", params={"limit": 2}).json()["items"]] == ["best", "fast"]


def test_empty_leaderboard(db_client):
    assert db_client.get("/scores").json() == {"items": []}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"name": ""}, "name must be 1-24 characters"),
        ({"name": "   "}, "name must be 1-24 characters"),
        ({"name": "x" * 25}, "name must be 1-24 characters"),
        ({"name": "<script>"}, "'<', '>'"),
        ({"name": "Bob'); DROP TABLE scores"}, "name may hold"),
        ({"name": "tab\there"}, "name may hold"),
        ({"name": 7}, "name"),
        ({"rounds_won": True}, "rounds_won: Input should be a valid integer"),
        ({"rounds_played": "5"}, "rounds_played: Input should be a valid integer"),
        ({"total_seconds": False}, "total_seconds: Input should be a valid number"),
        ({"rounds_won": -1}, "rounds_won"),
        ({"rounds_won": 6}, "rounds_won (6) > rounds_played (5)"),
        ({"rounds_played": 0, "rounds_won": 0}, "rounds_played"),
        ({"rounds_played": 21, "rounds_won": 0}, "rounds_played"),
        ({"rounds_played": 2**63}, "rounds_played"),
        ({"total_seconds": 0}, "total_seconds"),
        ({"total_seconds": -3}, "total_seconds"),
        ({"total_seconds": 300.5}, "total_seconds (300.5) > 60 s x 5 rounds"),
        ({"total_seconds": 5e-324}, "total_seconds"),  # first place by a time no game can take
        ({"total_seconds": 2.0}, "total_seconds (2) < 0.5 s x 5 rounds: no round ends that soon"),
        ({"name": "\u3164"}, "name must not hold invisible characters (U+3164)"),
        ({"name": "Ada\u200b"}, "invisible characters (U+200B)"),
        ({"name": "\u0410da"}, "name mixes scripts"),  # a Cyrillic capital A passing for "Ada"
        ({"rounds_won": 2.5}, "rounds_won"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_scores_are_422(db_client, overrides, needle):
    r = db_client.post("/scores", json=score(**overrides))
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert db_client.get("/scores").json() == {"items": []}


def test_names_are_trimmed_and_may_be_any_script(db_client):
    # Full-width and mathematical letters are stored as the plain letters they show.
    pairs = [
        ("  Zoë_2.0 ", "Zoë_2.0"),
        ("Ωmega-Team", "Ωmega-Team"),
        ("李 小龙", "李 小龙"),
        ("Ａｄａ", "Ada"),
        ("𝐀𝐝𝐚", "Ada"),
        ("Conan O'Brien", "Conan O'Brien"),
        ("Conan O\u2019Brien", "Conan O\u2019Brien"),  # as a phone types the apostrophe
    ]
    for name, stored in pairs:
        r = db_client.post("/scores", json=score(name=name))
        assert r.status_code == 201, r.text
        assert r.json()["name"] == stored


def test_lone_surrogate_name_is_422(db_client):
    raw = b'{"name": "A\\ud800", "rounds_won": 1, "rounds_played": 1, "total_seconds": 5}'
    r = db_client.post("/scores", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "hex escape at line 1 column" in r.json()["detail"]  # by the JSON parser


@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
def test_bad_limit(db_client, limit):
    r = db_client.get("/scores", params={"limit": limit})
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_the_database_refuses_impossible_scores_too(database_url):
    """CHECK constraints in the schema: a client of the database that skips the API cannot store them."""
    db = Database(database_url)
    for bad in (
        {"rounds_won": 3, "rounds_played": 2, "total_seconds": 5.0},
        {"rounds_won": 0, "rounds_played": 21, "total_seconds": 5.0},
        {"rounds_won": 1, "rounds_played": 1, "total_seconds": 61.0},
    ):
        with db.session() as s, pytest.raises(IntegrityError):
            queries.add(s, name="x", **bad)
    with db.session() as s:
        assert queries.top(s, 10) == []
    db.dispose()
