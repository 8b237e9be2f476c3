"""The Probabilities page, with AppTest against a fake API (``tests/utils/fake_api.py``)."""

from __future__ import annotations

from tests.utils.fake_api import (
    CAT_STROKES,
    CLASSES,
    DRAWING,
    app,
    charts,
    texts,
)


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
    assert chart.count("%") == len(CLASSES)  # fewer classes than the chart holds: all of them
    assert len(at.get("image")) == 1  # the 28x28 (the drawing has no PNG in this test)
    models, every = at.dataframe
    (row,) = models.value.to_dict("records")
    assert row["model"] == "CNN (bitmap)" and row["version"] == "20261124-1200"
    assert row["top-1 (test)"] == "81.2%" and row["top-5 (test)"] == "94.6%"
    # Every class in the table, most likely first.
    assert every.value["class"].tolist()[0] == "cat" and sorted(every.value["class"]) == sorted(CLASSES)


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
