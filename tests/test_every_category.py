"""One CNN for every category: a category known only by stroke drawings trains beside the bitmap ones,
and the player's model built on it ranks them all, with the Challenge's settings in its card."""

import gzip
import json

import numpy as np
import pytest

from models.answer import TAUGHT, TRAINED
from models.card import read_card
from models.inputs import Inputs
from models.loading import load_store
from models.network import load_network
from sketch.raster import render_simplified
from sketch.strokes import normalize, parse_strokes
from tests.utils.fixtures import FIXTURES
from training import prepare, records
from training.proto_data import proto_split
from training.prototypes import MAX_FALSE_I_KNOW

pytestmark = pytest.mark.slow
BITMAP_CATEGORIES = ("cat", "dog", "airplane")
THIN = "lollipop"


def official_folder(root):
    """numpy_bitmap/ for three categories; lollipop only as official stroke drawings and 10 sample bitmaps."""
    (root / "numpy_bitmap").mkdir(parents=True)
    for cat in BITMAP_CATEGORIES:
        np.save(root / "numpy_bitmap" / f"{cat}.npy", np.load(FIXTURES / "pairs" / f"{cat}.npy"))
    (root / "simplified").mkdir()
    (root / "simplified" / f"{THIN}.ndjson.gz").write_bytes((FIXTURES / "thin_lollipop.ndjson.gz").read_bytes())
    (root / "numpy_bitmap_samples").mkdir()
    np.save(root / "numpy_bitmap_samples" / f"{THIN}.npy", np.load(FIXTURES / "thin_lollipop_samples.npy"))
    return root


def thin_drawings() -> list[np.ndarray]:
    lines = [json.loads(x) for x in gzip.decompress((FIXTURES / "thin_lollipop.ndjson.gz").read_bytes()).splitlines()]
    return [render_simplified(normalize(parse_strokes(line["drawing"]))) for line in lines]


def read_bitmaps(paths: list[str]) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy()[-784:] for p in paths for r in tf.data.TFRecordDataset(p)]


def test_stroke_categories_get_rendered_bitmap_shards_split_like_the_prototypes(tmp_path):
    root = official_folder(tmp_path / "official")
    manifest = prepare.prepare(root, tmp_path / "shards", kinds=("bitmap",), workers=1, log=lambda *_: None)
    info = manifest["kinds"]["bitmap"]
    assert info["classes"] == sorted([*BITMAP_CATEGORIES, THIN])
    shard = {s: [str(tmp_path / "shards" / p) for p in info["shards"][THIN][s]] for s in ("train", "val", "test")}
    samples = np.load(FIXTURES / "thin_lollipop_samples.npy").reshape(-1, 28, 28)
    clean = [*samples, *thin_drawings()]
    by_split = {s: {b.tobytes() for b in clean if {"bank": "train"}.get(proto_split(b), proto_split(b)) == s}
                for s in ("train", "val", "test")}  # fmt: skip
    # Held-out drawings are exactly the rendered drawings of the prototypes' val and test splits.
    for split in ("val", "test"):
        assert sorted(read_bitmaps(shard[split])) == sorted(by_split[split])
    # Training: each drawing once, plus augmented copies of the stroke drawings, all different.
    train = read_bitmaps(shard["train"])
    strokes_in_train = sum(1 for b in thin_drawings() if b.tobytes() in by_split["train"])
    assert by_split["train"] <= set(train)
    assert len(train) == len(by_split["train"]) + records.AUGMENTED_COPIES * strokes_in_train
    assert len(set(train)) > len(by_split["train"]) + 0.9 * records.AUGMENTED_COPIES * strokes_in_train
    assert not set(train) & (by_split["val"] | by_split["test"])
    # The same records on every run.
    again = prepare.prepare(root, tmp_path / "again", kinds=("bitmap",), workers=1, log=lambda *_: None)
    paths = [str(tmp_path / "again" / p) for p in again["kinds"]["bitmap"]["shards"][THIN]["train"]]
    assert read_bitmaps(paths) == train


def test_rendered_categories_are_prepared_again_for_another_number_of_copies(tmp_path, monkeypatch):
    root = official_folder(tmp_path / "official")
    out = tmp_path / "shards"
    logs: list[str] = []
    first = prepare.prepare(root, out, kinds=("bitmap",), workers=1, log=logs.append, augmented_copies=2)
    # The same folder spelled another way is the same sources: nothing to convert.
    monkeypatch.chdir(root.parent)
    logs.clear()
    prepare.prepare("official", out, kinds=("bitmap",), workers=1, log=logs.append, augmented_copies=2)
    assert "4 category files already current, 0 converted" in logs
    logs.clear()
    second = prepare.prepare(root, out, kinds=("bitmap",), workers=1, log=logs.append, augmented_copies=5)
    assert "3 category files already current, 1 converted" in logs
    counts = [m["kinds"]["bitmap"]["counts"][THIN]["train"] for m in (first, second)]
    strokes_in_train = (counts[1] - counts[0]) // 3
    assert strokes_in_train > 0 and counts[0] == counts[1] - 3 * strokes_in_train


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from training import embedding, prototypes
    from training.train import main

    data = official_folder(tmp_path_factory.mktemp("official"))
    out = tmp_path_factory.mktemp("store")
    main(["cnn", "--data-dir", str(data), "--output-dir", str(out), "--epochs", "4", "--batch-size", "16"])
    embedding.main(["--data-dir", str(data), "--model-store", str(out), "--replace"])
    prototypes.main(["--data-dir", str(data), "--model-store", str(out)])
    return out


def test_the_cnn_trains_on_every_category_and_its_card_says_from_what(store):
    (cnn_dir,) = (store / "cnn").iterdir()
    card = read_card(cnn_dir)
    assert card.classes == sorted([*BITMAP_CATEGORIES, THIN])
    assert card.data.source_files[THIN] == [f"numpy_bitmap_samples/{THIN}.npy", f"simplified/{THIN}.ndjson.gz"]
    assert card.data.source_files["cat"] == ["numpy_bitmap/cat.npy"]
    correction = card.training.prior_correction
    assert correction is not None and str(correction.tau) in correction.val_balanced_top1
    assert len(correction.log_prior) == 4 and correction.log_prior[card.classes.index(THIN)] < 0
    # Its probabilities answer from an int8 copy, checked on the test split against the float graph.
    quantized = card.quantization
    assert quantized is not None and quantized.n > 0 and 0.0 <= quantized.top1_agreement <= 1.0
    assert "training split" in quantized.calibration
    network = load_network(cnn_dir)
    assert network.run_probabilities is not None  # the file is the one checked (sha256)
    # The int8 file with the embedding too: checked on the whole test split against the float graph.
    assert card.files.onnx_embedding and network.run_embedding is not None
    assert quantized.embedding_cosine_min > 0.99


def test_the_players_model_ranks_every_category_and_carries_the_challenge(store):
    loaded = load_store(store)
    assert loaded.errors == {}
    model = loaded.teachable
    assert model is loaded.by_name["prototypes"]
    card = model.card
    assert model.classes == sorted([*BITMAP_CATEGORIES, THIN]) and set(model.origins) == {TRAINED}
    challenge = card.challenge
    assert sorted(challenge.prompts) == model.classes and len(challenge.recall) == 4
    assert challenge.recall == sorted(challenge.recall, reverse=True)
    assert 0 < challenge.threshold < 1
    # A four-category model trained for seconds may miss the false 'I know' bound; its card says so.
    met = challenge.false_i_know_rate <= MAX_FALSE_I_KNOW
    assert met == ("no threshold keeps" not in challenge.chosen_on), challenge.chosen_on
    x = np.stack(thin_drawings()[:4]).astype(np.float32)
    answer = model.predict(Inputs(bitmaps=x))
    assert answer.probabilities.shape == (4, 4) and np.allclose(answer.probabilities.sum(axis=1), 1, atol=1e-5)
    # Taught classes join the ranking beside the trained ones.
    dim = model.cnn.card.embedding.dim
    try:
        model.set_taught(["my lollipop"], model.embed(Inputs(bitmaps=x[:3])), np.zeros(3, int))
        answer = model.predict(Inputs(bitmaps=x[3:]))
        assert answer.classes[-1] == "my lollipop" and answer.origins[-1] == TAUGHT
    finally:
        model.set_taught([], np.zeros((0, dim), np.float32), np.zeros(0, int))


def test_a_warm_start_takes_every_weight_and_the_known_classes_outputs():
    """``--init-from``: the second stage of ``make train`` starts from the bitmap-only CNN."""
    from models.loading import latest_version
    from training.cnn import make_deepdraw
    from training.train_cnn import warm_start, weight_layers

    source = latest_version(FIXTURES.parents[1] / "model_store" / "cnn")
    old_classes = read_card(source).classes
    classes = sorted([*old_classes[:20], "my new thing", "zzz another"])
    model = make_deepdraw(len(classes))
    fresh_head = model.get_layer("probabilities").get_weights()[0].copy()
    warm_start(model, source, classes)
    import keras

    import training.embedding  # noqa: F401

    old = keras.saving.load_model(source / "model.keras")
    theirs = [layer for layer in weight_layers(old) if layer.name not in ("projection", "probabilities")]
    for layer, source_layer in zip(weight_layers(model)[:-1], theirs, strict=True):
        for a, b in zip(layer.get_weights(), source_layer.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    kernel, bias = model.get_layer("probabilities").get_weights()
    old_kernel, old_bias = old.get_layer("probabilities").get_weights()
    for j, c in enumerate(classes):
        if c in old_classes:
            np.testing.assert_array_equal(kernel[:, j], old_kernel[:, old_classes.index(c)])
            assert bias[j] == old_bias[old_classes.index(c)]
        else:
            np.testing.assert_array_equal(kernel[:, j], fresh_head[:, j])


def test_a_warm_start_into_another_dense_width_takes_only_the_convolutions():
    """The second stage of ``make train`` widens the first stage's dense layer: it starts afresh."""
    import keras

    import training.embedding  # noqa: F401
    from models.loading import latest_version
    from training.cnn import make_deepdraw
    from training.train_cnn import warm_start, weight_layers

    source = latest_version(FIXTURES.parents[1] / "model_store" / "cnn")
    old = keras.saving.load_model(source / "model.keras")
    width = next(layer for layer in weight_layers(old) if layer.name == "dense_linear").units // 2
    model = make_deepdraw(len(read_card(source).classes), dense=width)
    fresh = [w.copy() for name in ("dense", "probabilities") for w in model.get_layer(name).get_weights()]
    warm_start(model, source, read_card(source).classes)
    above = ("dense_linear", "projection", "probabilities")  # the source's dense layer and what reads it
    theirs = [layer for layer in weight_layers(old) if layer.name not in above]
    for layer, source_layer in zip(weight_layers(model)[:-2], theirs, strict=True):
        for a, b in zip(layer.get_weights(), source_layer.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    now = [w for name in ("dense", "probabilities") for w in model.get_layer(name).get_weights()]
    for a, b in zip(now, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
