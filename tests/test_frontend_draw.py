"""The Draw page, with AppTest against a fake API (``tests/utils/fake_api.py``)."""

from __future__ import annotations

import json

import pytest

import api_client
import explanations
from tests.utils.fake_api import (
    CAT_STROKES,
    DRAWING,
    app,
    charts,
    texts,
)


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
    assert body["explain"] is True
    assert at.subheader[0].value == "I think it is: cat"
    # The cat's first stroke is its head, the larger one: it spans the drawing, so it sits in the middle.
    assert at.markdown[0].value == "Without your 1st stroke (middle) I'd say: house."
    (chart,) = charts(at)
    assert chart == "Guesses: cat 80%, airplane 10%, apple 5%, banana 2%, bicycle 1%"
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["layer"][0]["encoding"]["y"]["sort"] == "-x"  # best guess on top
    assert spec["layer"][1]["encoding"]["text"]["format"] == ".1%"  # each bar says its percentage
    assert "20261124-1200" in texts(at)


def test_draw_shows_the_answer_the_pad_asked_for_without_asking_again(fake):
    """At a pen lift the pad asks for the explained answer (to colour the strokes) and hands it to the
    page with the strokes: the page shows that answer, so each pen lift is explained once."""
    answer = json.loads(json.dumps(api_client.predict(CAT_STROKES, explain=True)))
    answer["predictions"][0] |= {"label": "owl", "kind": "taught"}  # what only the pad's answer says
    asked = len(fake.predict_bodies())
    at = app(drawing={**DRAWING, "answer": answer})
    assert not at.exception
    assert len(fake.predict_bodies()) == asked
    assert at.subheader[0].value == "I think it is: owl (taught)"
    assert any("red strokes" in c.value for c in at.caption)  # the pad painted the strokes by it
    # Something that is not an answer is ignored: the page asks the API itself, and nothing was painted.
    at = app(drawing={**DRAWING, "answer": {"predictions": "owl"}})
    assert at.subheader[0].value == "I think it is: cat"
    assert not any("red strokes" in c.value for c in at.caption)


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


def test_draw_says_when_no_stroke_decides(fake):
    fake.counterfactual = None
    at = app(drawing=DRAWING)
    assert not at.exception
    assert at.markdown[0].value == ("No stroke or two alone decides it: without any of them I'd still say cat.")


def test_draw_names_two_strokes_and_escapes_a_taught_label(fake):
    fake.top = "my_dog [Rex]"
    fake.counterfactual = {"remove": [0, 1], "label": "*star*"}
    at = app(drawing=DRAWING)
    assert not at.exception
    assert at.subheader[0].value == "I think it is: my\\_dog \\[Rex\\]"
    assert at.markdown[0].value == "Without your 1st and 2nd strokes I'd say: \\*star\\*."


@pytest.mark.parametrize(("n", "word"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (22, "22nd")])
def test_strokes_are_named_by_their_order(n, word):
    assert explanations.ordinal(n) == word


def test_strokes_are_placed_in_the_drawing():
    # A face: the outline spans the drawing; eyes at the top left and right, a mouth at the bottom.
    face = [
        [[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]],
        [[20, 25], [20, 25]],
        [[75, 80], [20, 25]],
        [[40, 60], [85, 85]],
    ]
    assert [explanations.place(face, i) for i in range(4)] == ["middle", "top left", "top right", "bottom"]
    assert explanations.name_strokes(face, [1]) == "your 2nd stroke (top left)"
