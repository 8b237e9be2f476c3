"""The shipped models: complete, faithful exports (Keras = SavedModel = ONNX) with their reports."""

from __future__ import annotations

import numpy as np
import pytest

from models.card import read_card
from models.inputs import Inputs
from models.kinds import KINDS as ALL_KINDS
from models.loading import latest_version
from models.network import load_network
from tests.utils.fixtures import REPO

STORE = REPO / "model_store"
KINDS = [k for k in ALL_KINDS if (STORE / k).is_dir() and not ALL_KINDS[k].composite]


@pytest.fixture(scope="module", params=KINDS)
def shipped(request):
    return request.param, latest_version(STORE / request.param)


def test_cnn_is_shipped():
    assert "cnn" in KINDS


def test_card_and_report(shipped):
    kind, path = shipped
    card = read_card(path)
    card.check_compatible()
    assert card.kind == kind and card.version == path.name
    assert card.metrics and card.training and card.data and card.framework_versions
    assert card.onnx_check.split == "test" and card.onnx_check.max_abs_diff < card.onnx_check.tolerance
    for name in ("per_class.csv", "confusion_matrix.png"):
        assert (path / "report" / name).is_file()


def test_shipped_cnn_covers_every_category_and_meets_targets():
    card = read_card(latest_version(STORE / "cnn"))
    assert len(card.classes) == 345 and card.classes == sorted(card.classes)
    assert card.metrics.top5 >= 0.85
    assert card.training.prior_correction is not None  # chosen on validation, folded into the graph


def test_cnn_savedmodel_and_onnx_give_the_keras_outputs():
    import keras
    import tensorflow as tf

    import training.embedding  # noqa: F401  (registers the embedding's layers for model.keras)

    path = latest_version(STORE / "cnn")
    data = np.load(REPO / "tests" / "fixtures" / "bitmaps_test_split.npz")
    x = data["x"][:16].reshape(-1, 28, 28, 1).astype(np.float32)
    # The CNN has two outputs, probabilities and its embedding: each is compared by name.
    expected = {k: v.numpy() for k, v in keras.saving.load_model(path / "model.keras")(x, training=False).items()}
    loaded = tf.saved_model.load(str(path / "saved_model"))
    for name, value in loaded.serve(x).items():
        np.testing.assert_allclose(value.numpy(), expected[name], atol=1e-5)
    onnx = load_network(path, runtime="onnx")
    full = onnx.outputs(Inputs(bitmaps=x[..., 0]))
    np.testing.assert_allclose(full["probabilities"], expected["probabilities"], atol=1e-5)
    np.testing.assert_allclose(full["embedding"], expected["embedding"], atol=1e-5)
    # The embedding served comes from the int8 file: within int8 rounding of the float network's.
    assert (onnx.embed(Inputs(bitmaps=x[..., 0])) * expected["embedding"]).sum(axis=1).min() > 0.999
    # What answers is the int8 copy of the probabilities graph, averaged with the mirrored drawing:
    # close to the float network's mean over both, and the same top guess nearly always.
    served = onnx.probabilities(Inputs(bitmaps=x[..., 0]))
    mirror = keras.saving.load_model(path / "model.keras")(x[:, :, ::-1].copy(), training=False)["probabilities"]
    mirrored = (expected["probabilities"] + mirror.numpy()) / 2
    assert np.abs(served - mirrored).max() < 0.2
    assert (served.argmax(1) == mirrored.argmax(1)).mean() >= 0.9
    saved = load_network(path, runtime="tensorflow").probabilities(Inputs(bitmaps=x[..., 0]))
    assert saved.argmax(1).tolist() == expected["probabilities"].argmax(1).tolist()
