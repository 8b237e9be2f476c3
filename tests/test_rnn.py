"""The stroke RNN: padding-proof model, faithful export, and the shipped model through the API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sketch.sequence import normalized_to_sequence, pad_batch, to_sequence
from sketch.strokes import parse_strokes
from tests.utils.fixtures import REPO, every_stroke_source, load_pairs

HAS_RNN = (REPO / "model_store" / "rnn").is_dir()


def sequences(category: str, n: int) -> list[np.ndarray]:
    _, simplified, _ = load_pairs(category)
    return [to_sequence(parse_strokes(line["drawing"])) for line in simplified[:n]]


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from training.rnn import make_rnn

    keras.utils.set_random_seed(0)
    return make_rnn(3, conv=((8, 5), (8, 3)), lstm_units=8, lstm_layers=2, dropout=0.0)


def test_padding_does_not_change_the_model_output(tiny_model):
    seqs = [*sequences("cat", 4), to_sequence(parse_strokes([[[1.0], [2.0]]]))]
    alone = np.concatenate([tiny_model(pad_batch([s]), training=False).numpy() for s in seqs])
    together = tiny_model(pad_batch(seqs), training=False).numpy()
    padded_more = tiny_model(pad_batch(seqs, length=max(map(len, seqs)) + 37), training=False).numpy()
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(padded_more, alone, atol=1e-6)


@pytest.mark.slow
def test_export_reloaded_as_saved_model_gives_the_keras_outputs(tiny_model, tmp_path):
    import keras
    import onnxruntime as ort
    import tensorflow as tf

    from models.card import InputSpec
    from models.network import load_network
    from training.export import export_model

    x = pad_batch(sequences("cat", 8) + sequences("dog", 8) + sequences("airplane", 8))
    y = np.repeat(np.arange(3), 8)
    tiny_model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    tiny_model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    out = tmp_path / "rnn" / "v1"
    spec = InputSpec(name="sequence", shape=[None, None, 3], description="test", max_len=200)
    fields = {"kind": "rnn", "architecture": "tiny", "classes": ["airplane", "cat", "dog"], "input": spec}
    card = export_model(tiny_model, out, fields, [x])
    assert card.onnx_check.n == len(x) and card.onnx_check.max_abs_diff < 1e-4
    assert load_network(out).card == card  # written once, read back whole
    expected = tiny_model(x, training=False).numpy()

    loaded = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, atol=1e-5)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(onnx, expected, atol=1e-5)
    # Variable length through the exported graph: one point, and a sequence longer than any seen.
    for seq in (np.array([[0.0, 0.0, 1.0]], np.float32), np.tile(x[0, :1], (1000, 1))):
        np.testing.assert_allclose(
            loaded.serve(seq[None]).numpy(), tiny_model(seq[None], training=False).numpy(), atol=1e-5
        )


def test_training_batches_stream_every_drawing_and_its_augmented_copies(tmp_path):
    """The RNN's input pipeline on stroke shards: one pass holds each training drawing's sequence and
    two augmented copies, in zero-padded batches of similar lengths, reproducibly from the seed."""
    from sketch.drawing import Drawing
    from training import prepare
    from training.shards import ShardSet
    from training.stroke_batches import batches, length_boundaries

    root = every_stroke_source(tmp_path / "official")
    prepare.prepare(root, tmp_path / "s", kinds=("strokes",), workers=1, log=lambda *_: None)
    data = ShardSet(tmp_path / "s", "strokes", ["cat", "pig"])
    originals = {
        (int(label), normalized_to_sequence(Drawing(points, lengths)).tobytes())
        for points, lengths, label in data.strokes("train").as_numpy_iterator()
    }
    bounds = [0, *length_boundaries(200), 10**6]

    def one_pass(seed: int) -> list[tuple[int, bytes]]:
        seqs = []
        for x, y, w in batches(data, "train", 8, 200, True, seed, copies=2, weights={0: 0.5, 1: 2.0}):
            x, y = x.numpy(), y.numpy()
            lengths = [int(np.flatnonzero(row.any(axis=1))[-1]) + 1 for row in x]  # no sequence has a zero row
            assert x.shape[1] == max(lengths), "padded to the longest of the batch, as pad_batch pads"
            bucket = [next(i for i, b in enumerate(bounds) if n < b) for n in lengths]
            assert len(set(bucket)) == 1, f"lengths {lengths} span buckets"
            np.testing.assert_array_equal(w.numpy(), np.where(y == 0, 0.5, 2.0))
            seqs += [(int(label), row[:n].tobytes()) for row, label, n in zip(x, y, lengths, strict=True)]
        return seqs

    first = one_pass(seed=5)
    assert len(first) == 3 * data.size("train")
    assert np.array_equal(np.bincount([label for label, _ in first]), 3 * data.class_counts("train"))
    assert originals <= set(first)  # each drawing as it is, and two copies that are not
    assert len(set(first) - originals) == 2 * len(originals)
    assert one_pass(seed=5) == first
    assert one_pass(seed=6) != first
    # Evaluation: one pass of the split's own drawings, nothing added.
    val = [
        (int(y), row) for x, ys in batches(data, "val", 4, 200) for row, y in zip(x.numpy(), ys.numpy(), strict=True)
    ]
    assert len(val) == data.size("val")


@pytest.mark.slow
def test_training_command_prepares_stroke_shards_and_exports(tmp_path):
    """``python -m training.train rnn`` on every kind of stroke source: the pair drawings in three
    copies (raw: same key_ids; Kaggle-style: same strokes), and pig from sketch-rnn files, too few to train."""
    from training import prepare, records
    from training.shards import read_manifest
    from training.train import main

    data = every_stroke_source(tmp_path / "data")
    store = tmp_path / "store"
    main(
        ["rnn", "--data-dir", str(data), "--output-dir", str(store), "--epochs", "4", "--batch-size", "16",
         "--lstm-units", "16", "--lstm-layers", "1", "--augment", "1", "--workers", "1", "--no-compare",
         "--min-per-class", "11"]
    )  # fmt: skip
    shards = read_manifest(records.default_shard_dir(data, 1000))["kinds"]["strokes"]
    assert shards["counts"]["pig"]["train"] == 10  # --min-per-class 11 leaves it out
    (version,) = (store / "rnn").iterdir()
    meta = json.loads((version / "card.json").read_text())
    assert meta["kind"] == "rnn" and meta["classes"] == ["airplane", "cat", "dog"]
    assert meta["input"]["shape"] == [None, None, 3] and meta["input"]["max_len"] == 200
    # 25 drawings per class, in two or three copies: only one copy of each is kept.
    assert meta["data"]["counts"] == {c: shards["counts"][c] for c in meta["classes"]}
    assert sum(sum(c.values()) for c in meta["data"]["counts"].values()) == 75
    raw_lines = sum(len(load_pairs(c)[2]) for c in ("cat", "dog", "airplane"))
    assert meta["data"]["duplicates_dropped"] == {"same key_id": raw_lines, "identical strokes": 75}
    assert meta["data"]["sources_per_class"] == {c: {"simplified": 25} for c in meta["classes"]}
    assert meta["data"]["manifest_hash"] == prepare.data_hash(shards)
    assert "TFRecord shards" in meta["data"]["format"]
    assert meta["onnx_check"]["max_abs_diff"] < 1e-4
    loss = meta["training"]["history"]["loss"]
    assert len(loss) == 4 and loss[-1] < loss[0]
    assert (version / "report" / "per_class.csv").is_file()


# --- the shipped model, through the API -----------------------------------------------------

api = pytest.mark.skipif(not HAS_RNN, reason="no RNN in model_store/ (train one with python -m training.train rnn)")


def post(client, strokes, model="rnn", **extra):
    return client.post("/predict", json={"strokes": strokes, "model": model, **extra})


def ok(resp) -> list[dict]:
    assert resp.status_code == 200, resp.text
    return resp.json()["predictions"]


@api
def test_rnn_and_ensemble_are_served(client):
    assert client.get("/ready").status_code == 200
    body = client.get("/models").json()
    assert {"cnn", "rnn", "ensemble"} <= set(body["available"])
    assert body["models"]["rnn"]["input"]["shape"] == [None, None, 3]
    assert len(client.get("/classes").json()["rnn"]) > 100


@api
@pytest.mark.parametrize(
    "strokes",
    [
        [[[120], [80]]],  # one point
        [[[0, 40, 80, 120], [0, 60, 0, 60]]],  # one stroke
        [[list(range(1000)), [int(50 + 40 * np.sin(i / 15)) for i in range(1000)]]],  # 1,000 points
        [[[i, i + 3], [0, 40]] for i in range(0, 600, 4)],  # 150 strokes
    ],
    ids=["1-point", "1-stroke", "1000-points", "150-strokes"],
)
def test_variable_length_inputs(client, strokes):
    classes = client.get("/classes").json()
    for model in ("rnn", "ensemble"):
        preds = ok(post(client, strokes, model, top_k=5))
        assert len(preds) == 5 and all(p["label"] in classes[model] for p in preds)
        probs = [p["probability"] for p in preds]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


@api
def test_padding_does_not_change_a_prediction_through_the_api(client):
    _, simplified, _ = load_pairs("cat")
    drawings = [line["drawing"] for line in simplified[:3]] + [[[[5], [5]]]]
    alone = [ok(post(client, d, top_k=10)) for d in drawings]
    batch = client.post(
        "/predict/batch", json={"items": [{"strokes": d, "model": "rnn", "top_k": 10} for d in drawings]}
    )
    assert batch.status_code == 200, batch.text
    for single, together in zip(alone, batch.json()["results"], strict=True):
        assert [p["label"] for p in single] == [p["label"] for p in together["predictions"]]
        np.testing.assert_allclose(
            [p["probability"] for p in single], [p["probability"] for p in together["predictions"]], atol=1e-5
        )


@api
def test_ensemble_answers_every_cnn_class(client):
    classes = client.get("/classes").json()
    assert classes["ensemble"] == classes["cnn"]
    assert set(classes["cnn"]) - set(classes["rnn"]), "some CNN classes are unknown to the RNN"
    _, simplified, _ = load_pairs("cat")
    resp = post(client, simplified[0]["drawing"], "ensemble", top_k=400)
    preds = ok(resp)
    assert {p["label"] for p in preds} == set(classes["cnn"])
    assert abs(sum(p["probability"] for p in preds) - 1) < 1e-3
    assert resp.json()["model"]["name"] == "ensemble"


def test_an_ensemble_that_gives_the_rnn_no_weight_does_not_run_it():
    """With ``rnn_weight`` 0 the RNN's probabilities change no number of the answer: it is not run."""
    from models.ensemble import combine
    from models.inputs import inputs_of
    from models.kinds import BITMAP, SEQUENCE
    from models.loading import load_store
    from sketch.strokes import normalize

    ensemble = load_store(REPO / "model_store").by_name["ensemble"]
    assert ensemble.card.ensemble.rnn_weight == 0.0  # what training.compare chose for the shipped models
    _, simplified, _ = load_pairs("cat")
    drawings = [normalize(parse_strokes(d["drawing"])) for d in simplified[:8]]
    inputs = inputs_of(drawings, frozenset({BITMAP, SEQUENCE}), ensemble.max_len)
    with_rnn = combine(
        ensemble.cnn.probabilities(inputs),
        ensemble.cnn.classes,
        ensemble.rnn.probabilities(inputs),
        ensemble.rnn.classes,
        0.0,
        ensemble.card.ensemble.unknown_scale,
    )
    called = []
    ensemble.rnn.run = lambda x: called.append(x)
    np.testing.assert_array_equal(ensemble.predict(inputs).probabilities, with_rnn)
    assert called == []


@api
def test_the_rnn_is_served_at_the_length_it_was_trained_with(client):
    """Sequences are fitted to the card's max_len, not to a constant of the API."""
    max_len = client.get("/models").json()["models"]["rnn"]["input"]["max_len"]
    long_drawing = [[list(range(0, 1000, 3)), [int(50 + 40 * np.sin(i / 7)) for i in range(0, 1000, 3)]]]
    from sketch.sequence import to_sequence

    assert len(to_sequence(parse_strokes(long_drawing), max_len)) <= max_len
    assert post(client, long_drawing).status_code == 200


@api
def test_held_out_real_drawings_are_recognised(client):
    """The 75 cat/dog/airplane pair drawings are held out of every training set here.

    Thresholds sit below what the shipped models score (RNN top-5 37%, ensemble top-1 60% among all
    345 categories; 84% when the CNN knew only 78): cat, dog and airplane have only ~100 stroke
    drawings each, so the RNN alone is weak on them, but far above chance (5 of 298 classes = 1.7%).
    """
    hits = {"rnn": 0, "ensemble": 0}
    for category in ("cat", "dog", "airplane"):
        _, simplified, _ = load_pairs(category)
        for line in simplified:
            hits["rnn"] += category in [p["label"] for p in ok(post(client, line["drawing"], top_k=5))]
            hits["ensemble"] += ok(post(client, line["drawing"], "ensemble"))[0]["label"] == category
    assert hits["rnn"] / 75 >= 0.25
    assert hits["ensemble"] / 75 >= 0.55


@api
@pytest.mark.parametrize("model", ["rnn"])
def test_bitmap_or_image_with_a_stroke_model_is_a_clear_422(client, model):
    resp = client.post("/predict", json={"bitmap": [[0] * 28] * 27 + [[255] * 28], "model": model})
    assert resp.status_code == 422 and "strokes" in resp.json()["detail"]
    resp = client.post("/predict", json={"image": "aGVsbG8=", "model": model})
    assert resp.status_code == 422 and "strokes" in resp.json()["detail"]
