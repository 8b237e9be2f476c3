"""``"explain": true`` on /predict: every stroke's (or patch's) effect is what /predict answers without it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from api.routes import predict as predict_route
from models import shared_call
from models.answer import Answer
from models.explain import (
    GRID,
    MAX_STROKES,
    MAX_VARIANT_POINTS,
    PAIR_CANDIDATES,
    PATCH,
    explain_strokes,
    explained_strokes,
    leave_one_out,
    pair_candidates,
    pairs_to_try,
    with_pairs,
)
from models.inputs import COMPOSITE_FROM_STROKES, Inputs, inputs_of, inputs_without
from models.kinds import BITMAP, SEQUENCE
from models.shared_call import helper, predict_rows
from sketch.sequence import MAX_LEN
from sketch.strokes import normalize, parse_strokes, pen_path
from tests.utils.fixtures import FIXTURES, official_drawings, read_ndjson


@pytest.fixture(scope="module")
def held_out() -> list[dict]:
    """Official drawings of categories without bitmaps, from the held-out split (ATTRIBUTION.md)."""
    return read_ndjson(FIXTURES / "prototype_test_split.ndjson.gz")[::6]


@pytest.fixture(scope="module")
def extremes() -> dict[str, list]:
    return {row["word"]: row["drawing"] for row in read_ndjson(FIXTURES / "extremes.ndjson.gz")}


def explain(client, **body) -> dict:
    resp = client.post("/predict", json=body | {"explain": True})
    assert resp.status_code == 200, resp.text
    return resp.json()


def top_without(client, strokes: list, removed: list[int], **body) -> str:
    kept = [s for i, s in enumerate(strokes) if i not in removed]
    resp = client.post("/predict", json={"strokes": kept, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()["predictions"][0]["label"]


@pytest.mark.parametrize("model", [None, "cnn", "ensemble"])
def test_the_counterfactual_is_what_predict_answers_without_those_strokes(client, held_out, model):
    named = {"model": model} if model else {}
    found = 0
    for row in held_out:
        answer = explain(client, strokes=row["drawing"], **named)
        explanation = answer["explanation"]
        assert explanation["label"] == answer["predictions"][0]["label"]
        assert [s["index"] for s in explanation["strokes"]] == list(range(len(row["drawing"])))
        counterfactual = explanation["counterfactual"]
        if counterfactual is None:
            continue
        found += 1
        assert 1 <= len(counterfactual["remove"]) <= 2
        assert counterfactual["label"] != explanation["label"]
        assert top_without(client, row["drawing"], counterfactual["remove"], **named) == counterfactual["label"]
    assert found >= len(held_out) // 2  # most drawings hinge on a stroke or two


def test_each_stroke_says_what_predict_answers_without_it(client, held_out):
    row = max(held_out, key=lambda r: len(r["drawing"]))
    explanation = explain(client, strokes=row["drawing"])["explanation"]
    for part in explanation["strokes"]:
        assert top_without(client, row["drawing"], [part["index"]]) == part["label_without"]
    # A single stroke cannot change the guess unless a stroke says so, and then it is the one named.
    singles = [p for p in explanation["strokes"] if p["label_without"] not in (None, explanation["label"])]
    if singles and explanation["counterfactual"]:
        assert explanation["counterfactual"]["remove"] == [max(singles, key=lambda p: p["drop"])["index"]]


def test_indices_name_the_request_strokes_even_around_an_empty_one(client, held_out):
    strokes = held_out[0]["drawing"]
    with_empty = [[[], []], *strokes]
    explanation = explain(client, strokes=with_empty)["explanation"]
    assert explanation["strokes_total"] == len(with_empty)
    assert [s["index"] for s in explanation["strokes"]] == list(range(1, len(with_empty)))
    if explanation["counterfactual"]:
        remove = explanation["counterfactual"]["remove"]
        assert 0 not in remove
        assert top_without(client, with_empty, remove) == explanation["counterfactual"]["label"]


def test_a_one_stroke_drawing_has_nothing_left_without_it(client):
    explanation = explain(client, strokes=[[[0, 50, 100], [0, 80, 0]]])["explanation"]
    (part,) = explanation["strokes"]
    assert part["label_without"] is None and part["drop"] == pytest.approx(explanation["probability"], abs=1e-4)
    assert explanation["counterfactual"] is None


def test_past_the_cap_the_longest_strokes_are_explained(client, extremes):
    television = extremes["television"]  # the official drawing with the most strokes
    strokes = television + [[[0], [0]]] * (MAX_STROKES + 5 - len(television))  # dots: no pen path
    explanation = explain(client, strokes=strokes)["explanation"]
    assert explanation["strokes_total"] == len(strokes)
    indices = [s["index"] for s in explanation["strokes"]]
    assert len(indices) == MAX_STROKES and indices == sorted(indices)
    assert set(range(len(television))) <= set(indices)  # the dots added last are the ones left out


def test_a_drawing_made_to_be_costly_has_fewer_strokes_explained_and_no_pairs(client):
    # 64 strokes of 300 random points: each variant took ~70 ms to draw, 109 of them 8.5 s.
    rng = np.random.default_rng(0)
    strokes = [rng.uniform(0, 1000, (2, 300)).round(1).tolist() for _ in range(64)]
    explanation = explain(client, strokes=strokes)["explanation"]
    assert explanation["strokes_total"] == 64
    assert len(explanation["strokes"]) == MAX_VARIANT_POINTS // (64 * 300)
    drawing = parse_strokes(strokes)
    assert pair_candidates(drawing, len(explanation["strokes"])) == 1  # no pair fits what is left


def test_pairs_are_searched_among_the_usual_candidates_for_real_drawings(extremes):
    for name in ("television", "cello", "yoga"):
        drawing = parse_strokes(extremes[name])
        assert len(explained_strokes(drawing)) == min(len(drawing), MAX_STROKES)
        assert pair_candidates(drawing, len(drawing)) == PAIR_CANDIDATES


@pytest.fixture
def hand_offs(monkeypatch) -> list[str]:
    """The functions /predict handed to the thread pool, by name."""
    handed: list[str] = []
    real = predict_route.run_in_threadpool

    async def counted(func, *args):
        handed.append(func.__name__)
        return await real(func, *args)

    monkeypatch.setattr(predict_route, "run_in_threadpool", counted)
    return handed


def test_a_small_drawing_is_explained_on_the_event_loop_and_its_pairs_in_the_pool(client, hand_offs):
    model = client.app.state.models.by_name["prototypes"]
    reads, tried = model.uses, {False: 0, True: 0}
    for row in read_ndjson(FIXTURES / "prototype_test_split.ndjson.gz"):
        drawing = parse_strokes(row["drawing"])
        assert len(drawing) <= predict_route.QUICK_EXPLAINED_STROKES
        assert pen_path(drawing) <= predict_route.QUICK_PEN_PATH
        _, singles = leave_one_out(model.predict, drawing, normalize(drawing), reads, MAX_LEN)
        pairs = bool(pairs_to_try(drawing, singles))  # a few drawings of the split need them
        if tried[pairs] == 4:
            continue
        tried[pairs] += 1
        hand_offs.clear()
        answer = explain(client, strokes=row["drawing"])
        assert hand_offs == (["_explain_rest"] if pairs else [])
        _, found = explain_strokes(model.predict, drawing, normalize(drawing), reads, MAX_LEN)
        assert answer["predictions"][0]["label"] == found.label
        got = answer["explanation"]["counterfactual"]
        assert (got and (got["remove"], got["label"])) == (found.counterfactual and tuple(found.counterfactual))
    assert tried[False] and tried[True]  # both ways were taken


def test_a_drawing_of_many_strokes_is_explained_in_the_pool(client, extremes, hand_offs):
    television = extremes["television"]
    assert len(television) > predict_route.QUICK_EXPLAINED_STROKES
    explain(client, strokes=television)
    assert hand_offs == ["_explain_rest"]


def test_the_largest_official_drawing_is_explained(client, extremes):
    resp = client.post("/predict", json={"strokes": extremes["cello"], "explain": True})
    assert resp.status_code == 200
    assert len(resp.json()["explanation"]["strokes"]) == len(extremes["cello"])


def test_a_bitmap_is_explained_by_patches(client, test_split_bitmaps):
    bitmaps, _, _ = test_split_bitmaps
    bitmap = bitmaps[0].tolist()
    answer = explain(client, bitmap=bitmap)
    explanation = answer["explanation"]
    patches = explanation["patches"]
    assert [p["index"] for p in patches] == list(range(GRID * GRID)) and "strokes" not in explanation
    for p in patches:
        r, c = divmod(p["index"], GRID)
        ink = any(v for line in bitmap[r * PATCH : (r + 1) * PATCH] for v in line[c * PATCH : (c + 1) * PATCH])
        if not ink:
            assert p["drop"] == 0 and p["label_without"] == explanation["label"]
    if explanation["counterfactual"]:
        (k,) = explanation["counterfactual"]["remove"]
        r, c = divmod(k, GRID)
        blanked = [
            [
                0 if r * PATCH <= y < (r + 1) * PATCH and c * PATCH <= x < (c + 1) * PATCH else v
                for x, v in enumerate(line)
            ]
            for y, line in enumerate(bitmap)
        ]
        resp = client.post("/predict", json={"bitmap": blanked})
        assert resp.json()["predictions"][0]["label"] == explanation["counterfactual"]["label"]


def test_explain_is_refused_in_a_batch_by_name(client, held_out):
    item = {"strokes": held_out[0]["drawing"]}
    resp = client.post("/predict/batch", json={"items": [item, item | {"explain": True}]})
    assert resp.status_code == 422
    assert resp.json()["detail"] == "items[1]: explain is answered by /predict, one drawing at a time"


def test_the_schema_describes_the_explanation(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "explain" in schemas["PredictRequest"]["properties"]
    explanation = schemas["Explanation"]["properties"]
    assert {"strokes", "patches", "counterfactual", "strokes_total"} <= set(explanation)
    assert str(MAX_STROKES) in explanation["strokes"]["description"]


def test_the_variants_are_prepared_exactly_as_each_drawing_alone():
    """What the model reads for each leave-one-out variant (and a pair) is, to the last bit, what it
    reads for that drawing sent on its own: composited or rendered afresh, whichever is chosen."""
    both_ways = set()
    for strokes in official_drawings():
        drawing = parse_strokes(strokes)
        n = len(drawing)
        removals = [(i,) for i in range(n)] + [(0, n - 1)] * (n > 1)
        left, got = inputs_without(drawing, removals, frozenset({BITMAP, SEQUENCE}))
        kept = [r for r, drawn in zip(removals, left, strict=True) if drawn]
        assert len(kept) == (0 if got is None else len(got.bitmaps))
        if not kept:
            continue
        want = inputs_of([normalize(drawing.without(r)) for r in kept], frozenset({BITMAP, SEQUENCE}))
        np.testing.assert_array_equal(got.bitmaps, want.bitmaps)
        for a, b in zip(got.sequences, want.sequences, strict=True):
            np.testing.assert_array_equal(a, b)
        both_ways.add(n >= COMPOSITE_FROM_STROKES)
    assert both_ways == {True, False}


def _rows_predict(threads: list[str]):
    """A stand-in model whose answer is each row's own (its ink, scaled), noting the threads it ran on;
    it takes a millisecond a row, as a network would take some time."""

    def predict(inputs: Inputs) -> Answer:
        threads.append(threading.current_thread().name)
        time.sleep(len(inputs.bitmaps) / 1000)
        ink = inputs.bitmaps.reshape(len(inputs.bitmaps), -1).sum(axis=1, keepdims=True)
        return Answer(np.hstack([ink, 2 * ink]).astype(np.float32), ["a", "b"], ["trained", "trained"])

    return predict


def _batches(bitmaps: np.ndarray, order: list[list[int]]):
    """``bitmaps`` as batches of the given positions, made one after the other as they are drawn."""
    for positions in order:
        time.sleep(0.002)  # as preparing them takes some time
        yield positions, Inputs(bitmaps=bitmaps[positions])


def test_rows_are_predicted_in_parts_as_in_one_call(monkeypatch):
    """Rows in batches out of order, the helper starting on the first while the rest are made: the
    answer is one call's, row for row."""
    monkeypatch.setattr(shared_call, "SHARE", True)  # as on any machine with two cores or more
    bitmaps = np.random.default_rng(0).random((21, 28, 28)).astype(np.float32)
    threads: list[str] = []
    predict = _rows_predict(threads)
    whole = predict(Inputs(bitmaps=bitmaps)).probabilities
    threads.clear()
    order = [[0], [*range(3, 18)], [1], [2], [18, 19, 20]]
    parts = predict_rows(predict, _batches(bitmaps, order))
    np.testing.assert_array_equal(parts.probabilities, whole)
    assert set(threads) == {"MainThread", "helper_0"}


def test_a_busy_helper_leaves_the_rows_to_the_caller(monkeypatch):
    """Rows the helper has not started are taken back: the caller never waits behind other work."""
    monkeypatch.setattr(shared_call, "SHARE", True)
    release = threading.Event()
    blocker = helper().submit(release.wait)
    try:
        bitmaps = np.random.default_rng(1).random((16, 28, 28)).astype(np.float32)
        threads: list[str] = []
        predict = _rows_predict(threads)
        parts = predict_rows(predict, _batches(bitmaps, [[*range(8)], [*range(8, 16)]]))
        np.testing.assert_array_equal(parts.probabilities, predict(Inputs(bitmaps=bitmaps)).probabilities)
        assert set(threads) == {threading.current_thread().name}
    finally:
        release.set()
        blocker.result(timeout=10)


def test_a_category_taught_between_the_parts_gives_one_answer(monkeypatch):
    """Parts answered over different classes (a category taught in between) are answered again at once."""
    monkeypatch.setattr(shared_call, "SHARE", True)
    bitmaps = np.random.default_rng(2).random((12, 28, 28)).astype(np.float32)
    calls: list[int] = []

    def predict(inputs: Inputs) -> Answer:
        calls.append(len(inputs.bitmaps))
        classes = ["a", "b", "taught"][: 2 + (len(calls) > 1)]
        ink = inputs.bitmaps.reshape(len(inputs.bitmaps), -1).sum(axis=1, keepdims=True)
        return Answer(np.repeat(ink, len(classes), axis=1), classes, ["trained"] * len(classes))

    answer = predict_rows(predict, _batches(bitmaps, [[*range(12)]]))
    assert answer.classes == ["a", "b", "taught"] and calls[-1] == 12
    np.testing.assert_array_equal(answer.probabilities[:, 0], bitmaps.reshape(12, -1).sum(axis=1))


def test_a_guess_deleted_before_the_pairs_leaves_no_counterfactual(client):
    """The pairs are tried after leave-one-out (in the thread pool, behind other costly requests):
    a taught category that was the guess and is deleted in between ends the search, not the request."""
    model = client.app.state.models.by_name["prototypes"]
    rows = read_ndjson(FIXTURES / "prototype_test_split.ndjson.gz")
    for row in rows:
        drawing = parse_strokes(row["drawing"])
        _, found = leave_one_out(model.predict, drawing, normalize(drawing), model.uses, MAX_LEN)
        if pairs_to_try(drawing, found):
            break
    classes = model.predict(Inputs(bitmaps=np.zeros((1, 28, 28), np.float32))).classes

    def without_the_guess(inputs: Inputs) -> Answer:
        answer = model.predict(inputs)
        kept = [i for i, c in enumerate(answer.classes) if c != found.label]
        return Answer(answer.probabilities[:, kept], [classes[i] for i in kept], [answer.origins[i] for i in kept])

    assert with_pairs(without_the_guess, drawing, normalize(drawing), found, model.uses, MAX_LEN) == found


def test_no_rows_no_answer():
    assert predict_rows(_rows_predict([]), []) is None


@pytest.mark.parametrize("model", [None, "cnn", "ensemble"])
def test_an_explained_answer_is_the_plain_answer(client, held_out, model):
    """The answer is computed alongside the explanation: the same guesses, to the last digit."""
    for row in held_out[:6]:
        body = {"strokes": row["drawing"], "model": model, "top_k": 10}
        plain = client.post("/predict", json=body).json()
        explained = explain(client, **body)
        assert explained["predictions"] == plain["predictions"]
        top = plain["predictions"][0]
        assert (explained["explanation"]["label"], explained["explanation"]["probability"]) == (
            top["label"],
            top["probability"],
        )


def test_an_explained_bitmap_answer_is_the_plain_answer(client, test_split_bitmaps):
    bitmap = test_split_bitmaps[0][0].tolist()
    plain = client.post("/predict", json={"bitmap": bitmap, "top_k": 10}).json()
    explained = explain(client, bitmap=bitmap, top_k=10)
    assert explained["predictions"] == plain["predictions"]
    assert explained["explanation"]["label"] == plain["predictions"][0]["label"]
