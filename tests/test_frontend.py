"""Each Streamlit page with AppTest, against a fake API at the HTTP boundary (an httpx.MockTransport).

The sketchpad cannot be drawn on without a browser: a test puts a drawing (strokes, as the
component sends them) in the session, and the page mounts its pad from it as it does when a
player comes back from another page. ``test_browser.py`` draws for real.
"""

from __future__ import annotations

import base64
import importlib
import json
import random
import re
import sys
import time
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

import api_client
import game_rules

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
THRESHOLD = 0.62  # the fake default model's Challenge threshold

CLASSES = ["airplane", "apple", "banana", "bicycle", "cat", "dog", "fish", "house"]
# A cat as the sketchpad sends it: two strokes (head, then an ear), canvas pixels.
CAT_STROKES = [
    [[100.0, 150.0, 200.0, 100.0], [200.0, 100.0, 200.0, 200.0]],
    [[110.0, 120.0, 140.0], [150.0, 110.0, 140.0]],
]
DRAWING = {"strokes": CAT_STROKES, "canvas": {"width": 360, "height": 360}, "image": None}
CREATED = "2026-11-30T04:00:00+00:00"
# A 1x1 PNG: what a thumbnail looks like to the page.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAG7buVgAAAABJRU5ErkJggg==")


class FakeApi:
    """Answers like the Deep Draw API (the contract test at the end of this file holds it to the real schema)."""

    def __init__(self):
        self.mode = "up"  # "up", "down" (connection refused), "slow" (timeout), "loading" (503)
        self.available = ["cnn"]
        self.top = "cat"
        self.top_probability = 0.8
        self.max_top_k = 50
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []
        self.submissions: list[dict] = []
        self.scores: list[dict] = []

    def _probabilities(self, top_k: int) -> list[dict]:
        others = [c for c in CLASSES if c != self.top]
        rest = 1 - self.top_probability
        probs = [self.top_probability] + [rest / 2 ** (i + 1) for i in range(len(others))]
        return [{"label": c, "probability": p} for c, p in zip([self.top, *others], probs, strict=True)][:top_k]

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "slow":
            raise httpx.ReadTimeout("timed out", request=request)
        response = self.answer(request)
        self.exchanges.append((request, response))
        return response

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path, method = request.url.path, request.method
        if self.mode == "loading":
            return httpx.Response(503, json={"detail": "no model is loaded: model store is empty"})
        if path == "/classes":
            return httpx.Response(200, json={"cnn": CLASSES, "all": [{"label": c, "kind": "trained"} for c in CLASSES]})
        if path == "/limits":
            limits = {"max_batch_items": 64, "max_body_bytes": 2_000_000, "max_points": 20_000}
            return httpx.Response(200, json={"max_top_k": self.max_top_k, **limits, "max_image_pixels": 16_777_216})
        if path == "/models":
            meta = {
                name: {
                    "name": name,
                    "version": "20261124-1200",
                    "kind": name,
                    "classes": CLASSES,
                    "metrics": {"split": "test", "top1": 0.8123, "top5": 0.9456, "macro_f1": 0.8},
                    "runtime": "onnx",
                    "challenge": {
                        "threshold": THRESHOLD,
                        "prompts": CLASSES,
                        "recall": [round(0.9 - 0.05 * i, 2) for i in range(len(CLASSES))],
                    },
                }
                for name in self.available
            }
            defaults = dict.fromkeys(("strokes", "bitmap", "image"), self.available[0])
            return httpx.Response(
                200, json={"models": meta, "available": self.available, "defaults": defaults, "errors": {}}
            )
        if path == "/predict":
            if body["top_k"] > self.max_top_k:
                return httpx.Response(422, json={"detail": f"top_k must be between 1 and {self.max_top_k}"})
            out = {
                "predictions": self._probabilities(body["top_k"]),
                "model": {"name": body.get("model", self.available[0]), "version": "20261124-1200"},
                "timings_ms": {"preprocess": 0.5, "inference": 1.0},
            }
            if body.get("return_bitmap"):
                out["bitmap"] = [[255 if 8 < r < 20 and 8 < c < 20 else 0 for c in range(28)] for r in range(28)]
            return httpx.Response(200, json=out)
        if path == "/submissions" and method == "POST":
            item = {"id": len(self.submissions) + 1, "created_at": CREATED, "simplified": [], **body}
            self.submissions.append(item)
            return httpx.Response(201, json={**item, "delete_token": f"token-{item['id']}"})
        if path == "/submissions" and method == "GET":
            label = request.url.params.get("label")
            limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
            items = [s for s in reversed(self.submissions) if label in (None, s["label"])]
            page = {"items": items[offset : offset + limit], "total": len(items), "limit": limit, "offset": offset}
            return httpx.Response(200, json=page)
        if path == "/submissions/stats":
            labels: dict[str, int] = {}
            for s in self.submissions:
                labels[s["label"]] = labels.get(s["label"], 0) + 1
            return httpx.Response(200, json={"total": len(self.submissions), "labels": labels})
        if match := re.fullmatch(r"/submissions/(\d+)/thumbnail.png", path):
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        if (match := re.fullmatch(r"/submissions/(\d+)", path)) and method == "DELETE":
            ids = [s["id"] for s in self.submissions]
            sid = int(match.group(1))
            if sid not in ids:
                return httpx.Response(404, json={"detail": f"no submission {sid}"})
            if request.headers.get("X-Delete-Token") != f"token-{sid}":
                return httpx.Response(403, json={"detail": "wrong delete token"})
            self.submissions = [s for s in self.submissions if s["id"] != sid]
            return httpx.Response(204)
        if path == "/scores" and method == "POST":
            if not re.fullmatch(r"[A-Za-z0-9 _.-]{1,24}", body["name"]):
                return httpx.Response(422, json={"detail": "name must be 1-24 letters, digits, spaces, _ - or ."})
            item = {"id": len(self.scores) + 1, **body, "created_at": CREATED}
            self.scores.append(item)
            return httpx.Response(201, json=item)
        if path == "/scores" and method == "GET":
            ranked = sorted(self.scores, key=lambda s: (-s["rounds_won"], s["total_seconds"]))
            return httpx.Response(200, json={"items": ranked[: int(request.url.params.get("limit", 10))]})
        return httpx.Response(404, json={"detail": "Not Found"})

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.content) for r, _ in self.exchanges if r.url.path == path and r.content]

    def predict_bodies(self) -> list[dict]:
        return self.bodies("/predict")


@pytest.fixture
def fake():
    fake = FakeApi()
    api_client.transport = httpx.MockTransport(fake.handler)
    api_client.reset()
    yield fake
    api_client.transport = None
    api_client.reset()


def app(page: str | None = None, drawing: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(FRONTEND / "app.py"), default_timeout=30)
    if drawing is not None:
        at.session_state["drawing"] = drawing
    if page:
        at.switch_page(f"views/{page}.py")
    return at.run()


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "subheader", "caption", "info", "error", "warning", "success")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list[str]:
    """The alt text of each chart on the page: it lists the guesses shown."""
    return [chart.proto.alt for chart in at.get("vega_lite_chart")]


# ---------------------------------------------------------------- Draw


def test_draw_empty_canvas_asks_for_a_drawing(fake):
    at = app()
    assert not at.exception
    assert "Draw something" in at.info[0].value
    assert fake.predict_bodies() == []


@pytest.mark.parametrize(("mode", "message"), [("down", "cannot be reached"), ("loading", "no model is loaded")])
def test_draw_says_at_once_that_the_api_is_down(fake, mode, message):
    # Before any stroke: the player learns it now, not after drawing.
    fake.mode = mode
    at = app()
    assert not at.exception
    assert message in at.error[0].value
    assert not at.info
    fake.mode = "up"
    at.button(key="draw_status_retry").click().run()
    assert not at.error
    assert "Draw something" in at.info[0].value


def test_draw_sends_strokes_and_shows_the_top5(fake):
    at = app(drawing=DRAWING)
    assert not at.exception
    (body,) = fake.predict_bodies()
    # The strokes of the canvas JSON, in canvas pixels: the API normalises them like the dataset.
    assert body["strokes"] == CAT_STROKES
    assert body["top_k"] == 5 and "model" not in body  # the API's default: the player's model
    assert at.subheader[0].value == "I think it is: cat"
    (chart,) = charts(at)
    assert chart == "Guesses: cat 80%, airplane 10%, apple 5%, banana 2%, bicycle 1%"
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["layer"][0]["encoding"]["y"]["sort"] == "-x"  # best guess on top
    assert spec["layer"][1]["encoding"]["text"]["format"] == ".1%"  # each bar says its percentage
    assert "20261124-1200" in texts(at)


def test_draw_reruns_do_not_ask_again(fake):
    at = app(drawing=DRAWING)
    at.run()
    at.run()
    assert len(fake.predict_bodies()) == 1  # answered from the cache: same strokes, same answer


def test_client_refuses_an_empty_drawing_without_asking(fake):
    with pytest.raises(api_client.ApiRejected, match="empty drawing"):
        api_client.predict([])
    assert fake.predict_bodies() == []


def test_draw_clear(fake):
    at = app(drawing=DRAWING)
    at.button(key="draw_clear").click().run()
    assert not at.exception
    assert at.session_state["drawing"] is None
    assert "Draw something" in at.info[0].value


@pytest.mark.parametrize(
    ("mode", "message"),
    [("down", "cannot be reached"), ("slow", "did not answer in time"), ("loading", "no model is loaded")],
)
def test_draw_api_trouble_is_a_message_and_recovers(fake, mode, message):
    fake.mode = mode
    at = app(drawing=DRAWING)
    assert not at.exception
    assert message in at.error[0].value
    assert not charts(at)

    fake.mode = "up"  # the API is back: "Try again" (or any click) brings the guesses
    at.button(key="draw_predict_retry").click().run()
    assert not at.exception
    assert not at.error
    assert len(charts(at)) == 1


def test_draw_submit_with_the_top_guess(fake):
    at = app(drawing=DRAWING)
    at.button(key="draw_submit").click().run()
    assert not at.exception
    (sub,) = fake.submissions
    assert sub["label"] == "cat" and sub["label_source"] == "confirmed"  # the shown top guess, confirmed
    assert sub["strokes"] == CAT_STROKES
    assert sub["canvas"] == {"width": 360, "height": 360}
    assert sub["predictions"][0] == {"label": "cat", "probability": 0.8}
    assert "submission #1" in at.success[0].value
    assert at.button(key="draw_submit").disabled  # the same drawing is not stored twice


def test_draw_submit_with_a_chosen_label(fake):
    at = app(drawing=DRAWING)
    at.selectbox(key="draw_label").set_value("dog")
    at.button(key="draw_submit").click().run()
    assert [(s["label"], s["label_source"]) for s in fake.submissions] == [("dog", "player")]


def test_draw_submit_refused_is_a_message(fake):
    at = app(drawing=DRAWING)
    fake.mode = "down"
    at.button(key="draw_submit").click().run()
    assert not at.exception
    assert "cannot be reached" in at.error[0].value


# ---------------------------------------------------------------- Probabilities


def test_probabilities_without_a_drawing(fake):
    at = app("probabilities")
    assert not at.exception
    assert "Nothing drawn yet" in at.info[0].value


def test_probabilities_full_distribution_bitmap_and_metrics(fake):
    at = app("probabilities", drawing=DRAWING)
    assert not at.exception
    (body,) = fake.predict_bodies()
    assert body["model"] == "cnn" and body["top_k"] == len(CLASSES) and body["return_bitmap"] is True
    (chart,) = charts(at)
    assert chart.count("%") == len(CLASSES)  # every class
    assert len(at.get("image")) == 1  # the 28x28 (the drawing has no PNG in this test)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top-1 (test)"] == "81.2%" and metrics["Top-5 (test)"] == "94.6%"
    assert "20261124-1200" in texts(at)


def test_probabilities_when_the_api_caps_top_k(fake):
    fake.max_top_k = 5
    at = app("probabilities", drawing=DRAWING)
    assert not at.exception
    # The published limit is read from GET /limits: one request, never a refused one first.
    assert [b["top_k"] for b in fake.predict_bodies()] == [5]
    assert f"The 5 most likely of {len(CLASSES)} classes" in texts(at)


def test_probabilities_side_by_side_once_the_rnn_exists(fake):
    fake.available = ["cnn", "rnn", "ensemble"]
    at = app("probabilities", drawing=DRAWING)
    assert not at.exception
    assert [b["model"] for b in fake.predict_bodies()] == ["cnn", "rnn", "ensemble"]
    assert len(charts(at)) == 3
    assert {"CNN (bitmap)", "RNN (strokes)", "Ensemble"} <= {s.value for s in at.subheader}


def test_probabilities_shows_whatever_models_the_api_lists(fake):
    # Model names come from GET /models "available": a new kind appears without a frontend change.
    fake.available = ["cnn", "transformer"]
    at = app("probabilities", drawing=DRAWING)
    assert not at.exception
    assert [b["model"] for b in fake.predict_bodies()] == ["cnn", "transformer"]
    assert "transformer" in {s.value for s in at.subheader}


def test_probabilities_api_down(fake):
    fake.mode = "down"
    at = app("probabilities", drawing=DRAWING)
    assert not at.exception
    assert "cannot be reached" in at.error[0].value


def test_drawing_is_shared_between_pages(fake):
    at = app(drawing=DRAWING)
    at.switch_page("views/probabilities.py").run()
    at.switch_page("views/draw.py").run()
    assert not at.exception
    # Back on Draw, the new canvas starts from the kept drawing.
    assert at.session_state["drawing"]["strokes"] == CAT_STROKES
    assert at.subheader[0].value == "I think it is: cat"


# ---------------------------------------------------------------- Challenge


def start_challenge(fake) -> AppTest:
    at = app("challenge")
    assert not at.exception
    at.button(key="challenge_start").click().run()
    assert not at.exception
    return at


def draw_in_challenge(at: AppTest, drawing: dict = DRAWING) -> AppTest:
    # A new canvas generation mounts a canvas holding this drawing, as if the player had drawn it.
    at.session_state["challenge_drawing"] = drawing
    at.session_state["challenge_drawing_generation"] += 1
    return at.run()


def shifted(dx: float) -> dict:
    return {**DRAWING, "strokes": [[[x + dx for x in xs], ys] for xs, ys in CAT_STROKES]}


def test_challenge_start_gives_a_prompt(fake):
    at = start_challenge(fake)
    game = at.session_state["challenge"]
    assert game["phase"] == "playing" and game["round"] == 0 and game["score"] == 0
    assert len(game["prompts"]) == 6 and set(game["prompts"]) <= set(CLASSES)
    prompt = game["prompts"][0]
    assert at.subheader[0].value in (f"Draw: a {prompt}", f"Draw: an {prompt}")
    assert "Round 1 of 6" in texts(at)


@pytest.mark.parametrize(
    ("prompt", "heading"),
    [("cat", "Draw: a cat"), ("owl", "Draw: an owl"), ("scissors", "Draw: scissors"), ("octopus", "Draw: an octopus")],
)
def test_challenge_prompt_wording(fake, prompt, heading):
    at = start_challenge(fake)
    at.session_state["challenge"]["prompts"][0] = prompt
    at.run()
    assert at.subheader[0].value == heading


def test_challenge_new_game(fake):
    at = start_challenge(fake)
    at.session_state["challenge"]["started"] = time.time() - 21
    at.run()
    at.button(key="challenge_restart").click().run()
    game = at.session_state["challenge"]
    assert game["phase"] == "playing" and game["results"] == [] and game["score"] == 0


def test_challenge_ends_on_i_know_at_the_threshold(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top, fake.top_probability = prompt, THRESHOLD
    draw_in_challenge(at)
    assert not at.exception
    game = at.session_state["challenge"]
    assert game["phase"] == "done" and game["score"] == 1 and game["results"] == [True]
    assert 0 < game["seconds"][0] < 20
    assert at.success[0].value.startswith("I know, it's ") and prompt in at.success[0].value
    assert at.get("balloons")


def test_challenge_below_the_threshold_keeps_guessing(fake):
    # The prompt is the top guess but the model is not sure enough yet: "I see …", the round goes on.
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top, fake.top_probability = prompt, THRESHOLD - 0.01
    draw_in_challenge(at)
    assert at.session_state["challenge"]["phase"] == "playing"
    assert f"I see {prompt}, or " in texts(at)
    assert not at.get("balloons")


def test_prompts_come_from_every_category_the_easiest_first():
    spec = {"prompts": [f"c{i}" for i in range(345)], "recall": [1 - i / 345 for i in range(345)]}
    seen: set[str] = set()
    for seed in range(300):
        prompts = game_rules.pick_prompts(spec, 6, random.Random(seed))
        assert len(set(prompts)) == 6
        assert prompts == sorted(prompts, key=spec["prompts"].index)  # most recognisable first
        seen |= set(prompts)
    assert len(seen) > 250  # every part of the list comes up, not only the easy end


def test_challenge_round_not_won_by_another_class(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top = next(c for c in CLASSES if c != prompt)
    draw_in_challenge(at)
    assert at.session_state["challenge"]["phase"] == "playing"
    assert not at.get("balloons")


def test_challenge_round_lost_after_20_seconds(fake):
    at = start_challenge(fake)
    at.session_state["challenge"]["started"] = time.time() - 21
    at.run()
    assert not at.exception
    game = at.session_state["challenge"]
    assert game["phase"] == "done" and game["results"] == [False]
    assert "Time is up" in at.warning[0].value


def test_challenge_a_game_is_six_rounds_with_a_score(fake):
    at = start_challenge(fake)
    for i in range(6):
        game = at.session_state["challenge"]
        if i % 2 == 0:  # win the even rounds, let the odd ones time out
            fake.top = game["prompts"][i]
            # Another drawing each round: answers are cached per drawing, and the fake changes its mind.
            draw_in_challenge(at, shifted(i))
        else:
            game["started"] = time.time() - 21
            at.run()
        at.button(key="challenge_next").click().run()
        assert not at.exception
    assert at.session_state["challenge"]["phase"] == "over"
    assert "you scored 3 out of 6" in at.subheader[0].value

    # The leaderboard: a name at the end, then the table from GET /scores.
    at.text_input(key="leaderboard_name").set_value("Ada L.")
    at.button(key="leaderboard_save").click().run()
    assert not at.exception
    (score,) = fake.scores
    assert score["name"] == "Ada L." and score["rounds_won"] == 3 and score["rounds_played"] == 6
    assert 60 < score["total_seconds"] <= 120  # three lost rounds count 20 s each
    assert "on the leaderboard as Ada L." in at.success[0].value
    (table,) = at.dataframe
    assert list(table.value["Name"]) == ["Ada L."] and list(table.value["Won"]) == ["3 / 6"]

    at.button(key="challenge_start").click().run()  # play again
    assert at.session_state["challenge"]["phase"] == "playing"


def test_leaderboard_refuses_a_bad_name_with_the_reason(fake):
    at = start_challenge(fake)
    game = at.session_state["challenge"]
    game.update(phase="over", results=[True, False], seconds=[5.0, 20.0], score=1)
    at.run()
    at.text_input(key="leaderboard_name").set_value("<script>")
    at.button(key="leaderboard_save").click().run()
    assert not at.exception
    assert "The API refused this score: name must be" in at.warning[0].value
    assert fake.scores == []


def test_challenge_submit_is_labelled_with_the_prompt(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    draw_in_challenge(at)
    at.button(key="challenge_submit").click().run()
    assert not at.exception
    (sub,) = fake.submissions
    assert sub["label"] == prompt and sub["label_source"] == "confirmed" and sub["strokes"] == CAT_STROKES
    assert "submission #1" in at.success[-1].value


def test_challenge_api_down(fake):
    fake.mode = "down"
    at = app("challenge")
    assert not at.exception
    assert "cannot be reached" in at.error[0].value
    fake.mode = "up"
    at.button(key="challenge_classes_retry").click().run()
    assert not at.error
    assert at.button(key="challenge_start")


def test_leaderboard_through_the_real_api(tmp_path):
    # The page against the real app and database (in-process): a refused name, a saved score, the table.
    from tests.utils.app import app_client

    with app_client(f"sqlite:///{tmp_path}/scores.db") as client:
        api_client.transport = client._transport
        api_client.reset()
        try:
            at = app("challenge")
            at.session_state["challenge"] = {
                "phase": "over", "results": [True, False, True], "seconds": [4.5, 20.0, 7.25], "score": 2,
            }  # fmt: skip
            at.run()
            at.text_input(key="leaderboard_name").set_value("Ada; DROP TABLE")
            at.button(key="leaderboard_save").click().run()
            assert "The API refused this score:" in at.warning[0].value and "name" in at.warning[0].value
            at.text_input(key="leaderboard_name").set_value("Ada L.")
            at.button(key="leaderboard_save").click().run()
            assert not at.exception
            assert "on the leaderboard as Ada L." in at.success[0].value
            (table,) = at.dataframe
            assert list(table.value["Name"]) == ["Ada L."] and list(table.value["Won"]) == ["2 / 3"]
            assert list(table.value["Time (s)"]) == [31.8]
        finally:
            api_client.transport = None
            api_client.reset()


# ---------------------------------------------------------------- Submit


def keep(fake, at: AppTest, label: str, dx: float) -> None:
    """Keep a drawing from the Draw page, as a player does (one click)."""
    at.switch_page("views/draw.py")
    at.session_state["drawing"] = shifted(dx)
    at.session_state["drawing_generation"] = at.session_state["drawing_generation"] + 1
    at.run()
    at.selectbox(key="draw_label").set_value(label)
    at.button(key="draw_submit").click().run()
    assert not at.exception


def test_submit_gallery_is_filtered_and_paged(fake):
    for i in range(15):  # kept by other players: no token in this session
        fake.submissions.append({"id": i + 1, "label": "cat" if i % 3 else "dog", "strokes": CAT_STROKES,
                                 "simplified": [], "canvas": DRAWING["canvas"], "created_at": CREATED,
                                 "label_source": "player",
                                 "predictions": [{"label": "cat", "probability": 0.8}]})  # fmt: skip
    at = app("submit")
    assert not at.exception
    assert len(at.get("image")) == 12  # one page of thumbnails
    assert "Page 1 of 2 · 15 drawings" in texts(at)
    assert "guessed cat (80%)" in texts(at)
    assert not [b for b in at.button if b.key and b.key.startswith("gallery_delete_")]  # not ours
    at.button(key="gallery_next").click().run()
    assert len(at.get("image")) == 3 and "Page 2 of 2" in texts(at)
    at.selectbox(key="gallery_label").set_value("dog").run()
    assert "Page 1 of 1 · 5 drawings" in texts(at)  # a new filter starts on its first page
    assert fake.bodies("/submissions") == []  # listing never posts
    params = [r.url.params for r, _ in fake.exchanges if r.url.path == "/submissions"]
    assert params[-1]["label"] == "dog" and params[-1]["offset"] == "0"


def test_submit_own_drawing_can_be_deleted(fake):
    at = app()
    keep(fake, at, "cat", 0)
    keep(fake, at, "dog", 5)
    at.switch_page("views/submit.py").run()
    assert not at.exception
    assert len(at.get("image")) == 2
    at.button(key="gallery_delete_1").click().run()
    assert not at.exception
    deletes = [r for r, _ in fake.exchanges if r.method == "DELETE"]
    assert [(r.url.path, r.headers["X-Delete-Token"]) for r in deletes] == [("/submissions/1", "token-1")]
    assert [s["id"] for s in fake.submissions] == [2]
    assert "Submission #1 is deleted" in at.success[0].value
    assert len(at.get("image")) == 1


def test_submit_page_api_down(fake):
    fake.mode = "down"
    at = app("submit")
    assert not at.exception
    assert "cannot be reached" in at.error[0].value


def test_live_guesses_use_the_browser_facing_api_url(monkeypatch):
    # Inside Compose the app reaches the API as http://api:8000, which a player's browser cannot.
    sketchpad = importlib.import_module("sketchpad")
    monkeypatch.setenv("API_URL", "http://api:8000")
    monkeypatch.delenv("PUBLIC_API_URL", raising=False)
    assert sketchpad.public_api_url() == "http://api:8000"
    monkeypatch.setenv("PUBLIC_API_URL", "http://127.0.0.1:8000/")
    assert sketchpad.public_api_url() == "http://127.0.0.1:8000"


def test_app_starts_from_a_relative_path():
    # `streamlit run frontend/app.py` from the repo root (and the container's check) must find the pages.
    import subprocess

    code = (
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('frontend/app.py', default_timeout=30).run()\n"
        "print('EXCEPTION' if at.exception else 'OK')"
    )
    env = {"API_URL": "http://127.0.0.1:9", "PATH": ""}  # nothing listens there: the page shows its notice
    out = subprocess.run([sys.executable, "-c", code], cwd=FRONTEND.parent, env=env, capture_output=True, text=True)
    assert out.stdout.strip().endswith("OK"), out.stdout + out.stderr


# ---------------------------------------------------------------- contract: the fake against the real schema


@pytest.fixture(scope="module")
def openapi() -> dict:
    from api.main import create_app

    return create_app().openapi()


def operation(schema: dict, method: str, path: str) -> dict:
    for template, ops in schema["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method.lower() in ops:
            return ops[method.lower()]
    raise AssertionError(f"the fake answers {method} {path}, which the real API does not have")


def conforms(schema: dict, part: dict | None, value, what: str) -> None:
    import jsonschema

    if not part:
        return
    # Refs point into the document's components: validate with them alongside.
    jsonschema.validate(value, {**part, "components": schema["components"]}, cls=jsonschema.Draft202012Validator)


def check_exchange(schema: dict, request: httpx.Request, response: httpx.Response) -> None:
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    op = operation(schema, request.method, request.url.path)
    known = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    assert set(request.url.params) <= known, f"{where}: query {set(request.url.params) - known} unknown"
    if request.content:
        body_schema = op["requestBody"]["content"]["application/json"]["schema"]
        conforms(schema, body_schema, json.loads(request.content), f"{where} request")
    answer = op["responses"].get(str(response.status_code))
    assert answer is not None, f"{where}: the real API never answers {response.status_code} here"
    media = response.headers.get("content-type", "").split(";")[0]
    if response.status_code == 204:
        return
    assert media in answer.get("content", {media: None}), f"{where}: {media} not in {list(answer['content'])}"
    if media == "application/json":
        conforms(schema, answer.get("content", {}).get(media, {}).get("schema"), response.json(), where)


def test_fake_api_matches_the_real_openapi_schema(fake, openapi):
    """Every call the pages make, answered by the fake, must fit the real app's schema (no drift)."""
    fake.available = ["cnn", "rnn", "ensemble"]
    api_client.classes()
    api_client.models()
    api_client.limits()
    api_client.predict(CAT_STROKES, "cnn", 5, True)
    saved = api_client.submit("cat", "player", CAT_STROKES, DRAWING["canvas"], [{"label": "cat", "probability": 0.8}])
    api_client.submissions("cat", 12, 0)
    api_client.submission_labels()
    api_client.thumbnail(saved["id"])
    with pytest.raises(api_client.ApiRejected):
        api_client.delete_submission(saved["id"], "wrong")  # 403
    api_client.delete_submission(saved["id"], saved["delete_token"])  # 204
    with pytest.raises(api_client.ApiRejected):
        api_client.delete_submission(saved["id"], saved["delete_token"])  # 404
    api_client.post_score("Ada", 3, 6, 71.5)
    with pytest.raises(api_client.ApiRejected):
        api_client.post_score("<b>", 3, 6, 71.5)  # 422
    api_client.scores(10)
    with pytest.raises(api_client.ApiRejected):
        api_client.predict(CAT_STROKES, "cnn", fake.max_top_k + 1)  # 422
    fake.mode = "loading"
    with pytest.raises(api_client.ApiUnavailable):
        api_client.predict(CAT_STROKES, "cnn", 3)  # 503
    assert len(fake.exchanges) == 16
    for request, response in fake.exchanges:
        check_exchange(openapi, request, response)
