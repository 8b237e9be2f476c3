"""Each Streamlit page with AppTest, against a fake API at the HTTP boundary (an httpx.MockTransport).

The canvas cannot be drawn on without a browser: a test puts a drawing (canvas JSON, as the
component sends it) in the session, and the page mounts its canvas from it as it does when a
player comes back from another page. ``test_browser.py`` draws for real.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
sys.path.insert(0, str(FRONTEND))
api_client = importlib.import_module("api_client")

CLASSES = ["airplane", "apple", "banana", "bicycle", "cat", "dog", "fish", "house"]
# A cat as the canvas sends it: two freedraw paths (head, then an ear), canvas pixels.
CAT_JSON = {
    "version": "7.4.0",
    "objects": [
        {"type": "Path", "path": [["M", 100, 200], ["Q", 150, 100, 200, 200], ["L", 100, 200]]},
        {"type": "Path", "path": [["M", 110, 150], ["L", 120, 110], ["L", 140, 140]]},
    ],
}
CAT_STROKES = [
    [[100.0, 150.0, 200.0, 100.0], [200.0, 100.0, 200.0, 200.0]],
    [[110.0, 120.0, 140.0], [150.0, 110.0, 140.0]],
]
DRAWING = {"strokes": CAT_STROKES, "canvas": {"width": 360, "height": 360}, "image": None, "json": CAT_JSON}


class FakeApi:
    """Answers like the Deep Draw API; ``top`` is the class it finds most likely."""

    def __init__(self):
        self.mode = "up"  # "up", "down" (connection refused), "slow" (timeout), "loading" (503)
        self.available = ["cnn"]
        self.top = "cat"
        self.max_top_k = 50
        self.requests: list[tuple[str, dict | None]] = []
        self.submissions: list[dict] = []

    def _probabilities(self, top_k: int) -> list[dict]:
        others = [c for c in CLASSES if c != self.top]
        probs = [0.8] + [0.2 / 2 ** (i + 1) for i in range(len(others))]
        return [{"label": c, "probability": p} for c, p in zip([self.top, *others], probs, strict=True)][:top_k]

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.url.path, body))
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "slow":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.mode == "loading":
            return httpx.Response(503, json={"detail": "no model is loaded: model store is empty"})
        path = request.url.path
        if path == "/classes":
            return httpx.Response(200, json={"cnn": CLASSES})
        if path == "/models":
            meta = {
                name: {
                    "name": name,
                    "version": "20261124-1200",
                    "classes": CLASSES,
                    "metrics": {"split": "test", "top1": 0.8123, "top5": 0.9456, "macro_f1": 0.8},
                    "runtime": "onnx",
                }
                for name in self.available
                if name != "ensemble"
            }
            return httpx.Response(200, json={"models": meta, "available": self.available, "errors": {}})
        if path == "/predict":
            if body["top_k"] > self.max_top_k:
                return httpx.Response(422, json={"detail": f"top_k must be between 1 and {self.max_top_k}"})
            if not body.get("strokes") and not body.get("image"):
                return httpx.Response(422, json={"detail": "empty drawing: no points"})
            out = {
                "predictions": self._probabilities(body["top_k"]),
                "model": {"name": body["model"], "version": "20261124-1200"},
                "timings_ms": {"preprocess": 0.5, "inference": 1.0},
            }
            if body.get("return_bitmap"):
                out["bitmap"] = [[255 if 8 < r < 20 and 8 < c < 20 else 0 for c in range(28)] for r in range(28)]
            return httpx.Response(200, json=out)
        if path == "/submissions" and request.method == "POST":
            self.submissions.append(body)
            return httpx.Response(201, json={"id": len(self.submissions), **body})
        return httpx.Response(404, json={"detail": "Not Found"})

    def predict_bodies(self) -> list[dict]:
        return [body for path, body in self.requests if path == "/predict"]


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


def test_draw_sends_strokes_and_shows_the_top5(fake):
    at = app(drawing=DRAWING)
    assert not at.exception
    (body,) = fake.predict_bodies()
    # The strokes of the canvas JSON, in canvas pixels: the API normalises them like the dataset.
    assert body["strokes"] == CAT_STROKES
    assert body["top_k"] == 5 and body["model"] == "cnn" and "image" not in body
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


def test_client_sends_the_image_only_without_strokes(fake):
    api_client.predict(CAT_STROKES, None)
    api_client.predict(None, "aGVsbG8=")
    assert [("strokes" in b, b.get("image")) for b in fake.predict_bodies()] == [(True, None), (False, "aGVsbG8=")]
    with pytest.raises(api_client.ApiRejected, match="empty drawing"):
        api_client.predict(None, None)


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
    assert sub["label"] == "cat"
    assert sub["strokes"] == CAT_STROKES
    assert sub["canvas"] == {"width": 360, "height": 360}
    assert sub["predictions"][0] == {"label": "cat", "probability": 0.8}
    assert "submission #1" in at.success[0].value
    assert at.button(key="draw_submit").disabled  # the same drawing is not stored twice


def test_draw_submit_with_a_chosen_label(fake):
    at = app(drawing=DRAWING)
    at.selectbox(key="draw_label").set_value("dog")
    at.button(key="draw_submit").click().run()
    assert [s["label"] for s in fake.submissions] == ["dog"]


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
    assert [b["top_k"] for b in fake.predict_bodies()] == [len(CLASSES), 5]
    assert f"The 5 most likely of {len(CLASSES)} classes" in texts(at)


def test_probabilities_side_by_side_once_the_rnn_exists(fake):
    fake.available = ["cnn", "rnn", "ensemble"]
    at = app("probabilities", drawing=DRAWING)
    assert not at.exception
    assert [b["model"] for b in fake.predict_bodies()] == ["cnn", "rnn", "ensemble"]
    assert len(charts(at)) == 3
    assert {"CNN (bitmap)", "RNN (strokes)", "Ensemble"} <= {s.value for s in at.subheader}


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


def shift_json(dx: float) -> dict:
    return {
        "objects": [
            {
                **obj,
                "path": [
                    [cmd[0], *[v + dx if k % 2 == 0 else v for k, v in enumerate(cmd[1:])]] for cmd in obj["path"]
                ],
            }
            for obj in CAT_JSON["objects"]
        ]
    }


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


def test_challenge_round_won_when_the_prompt_is_top1(fake):
    at = start_challenge(fake)
    fake.top = at.session_state["challenge"]["prompts"][0]
    draw_in_challenge(at)
    assert not at.exception
    game = at.session_state["challenge"]
    assert game["phase"] == "done" and game["score"] == 1 and game["results"] == [True]
    assert "Recognised" in at.success[0].value
    assert at.get("balloons")


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
            draw_in_challenge(at, {**DRAWING, "json": shift_json(i)})
        else:
            game["started"] = time.time() - 21
            at.run()
        at.button(key="challenge_next").click().run()
        assert not at.exception
    assert at.session_state["challenge"]["phase"] == "over"
    assert "you scored 3 out of 6" in at.subheader[0].value
    at.button(key="challenge_start").click().run()  # play again
    assert at.session_state["challenge"]["phase"] == "playing"


def test_challenge_submit_is_labelled_with_the_prompt(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    draw_in_challenge(at)
    at.button(key="challenge_submit").click().run()
    assert not at.exception
    (sub,) = fake.submissions
    assert sub["label"] == prompt and sub["strokes"] == CAT_STROKES
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
