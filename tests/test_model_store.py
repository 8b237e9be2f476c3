"""The shipped models: complete, faithful exports (Keras = SavedModel = ONNX) with their reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

from api.registry import latest_version, load_model

STORE = REPO / "model_store"
KINDS = [k for k in ("cnn", "rnn") if (STORE / k).is_dir()]


@pytest.fixture(scope="module", params=KINDS)
def shipped(request):
    return request.param, latest_version(STORE / request.param)


def test_cnn_is_shipped():
    assert "cnn" in KINDS


def test_metadata_and_report(shipped):
    kind, path = shipped
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["kind"] == kind and meta["version"] == path.name
    assert len(meta["classes"]) == len(set(meta["classes"])) == meta["output"]["shape"][-1]
    for key in ("input", "preprocessing_version", "counts", "metrics", "training", "data", "framework_versions"):
        assert key in meta
    for name in ("per_class.csv", "confusion_matrix.png"):
        assert (path / "report" / name).is_file()


def test_shipped_cnn_covers_all_bitmap_categories_and_meets_targets():
    meta = json.loads((latest_version(STORE / "cnn") / "metadata.json").read_text())
    assert len(meta["classes"]) == 78
    assert meta["metrics"]["top5"] >= 0.95


def test_cnn_savedmodel_and_onnx_give_the_keras_outputs():
    import keras
    import tensorflow as tf

    path = latest_version(STORE / "cnn")
    data = np.load(REPO / "tests" / "fixtures" / "bitmaps_test_split.npz")
    x = data["x"][:16].reshape(-1, 28, 28, 1).astype(np.float32)
    expected = keras.saving.load_model(path / "model.keras")(x, training=False).numpy()
    loaded = tf.saved_model.load(str(path / "saved_model"))
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, atol=1e-5)
    served = load_model(path, runtime="onnx").predict(x)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert load_model(path, runtime="tensorflow").predict(x).argmax(1).tolist() == expected.argmax(1).tolist()
