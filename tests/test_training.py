"""A tiny end-to-end training run on real fixture drawings: the loss falls, the export is faithful."""

import json

import numpy as np
import pytest

from tests.utils.fixtures import FIXTURES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.train import main

    data = tmp_path_factory.mktemp("data")
    (data / "numpy_bitmap").mkdir()
    for cat in ("cat", "dog", "airplane"):
        np.save(data / "numpy_bitmap" / f"{cat}.npy", np.load(FIXTURES / "pairs" / f"{cat}.npy"))
    out = tmp_path_factory.mktemp("store")
    main(["cnn", "--data-dir", str(data), "--output-dir", str(out), "--epochs", "4", "--batch-size", "16"])
    (version_dir,) = (out / "cnn").iterdir()
    return version_dir


def test_export_layout_and_card(trained):
    from models.card import read_card

    card = read_card(trained)
    card.check_compatible()
    assert card.kind == "cnn" and card.classes == ["airplane", "cat", "dog"] and card.version == trained.name
    assert card.input.shape == [None, 28, 28, 1] and card.framework_versions["tensorflow"]
    assert sum(c["test"] for c in card.data.counts.values()) == card.metrics.n
    assert card.onnx_check.n == card.metrics.n and card.onnx_check.max_abs_diff < card.onnx_check.tolerance
    for name in ("per_class.csv", "confusion_matrix.png", "training_curves.png"):
        assert (trained / "report" / name).stat().st_size > 0
    assert (trained / "saved_model" / "saved_model.pb").is_file()


def test_loss_fell(trained):
    history = json.loads((trained / "card.json").read_text())["training"]["history"]
    assert history["loss"][-1] < history["loss"][0]


def test_savedmodel_and_onnx_match_keras(trained):
    import keras
    import onnxruntime as ort
    import tensorflow as tf

    x = np.load(FIXTURES / "pairs" / "cat.npy")[:8].reshape(-1, 28, 28, 1).astype(np.float32)
    expected = keras.saving.load_model(trained / "model.keras")(x, training=False).numpy()
    loaded = tf.saved_model.load(str(trained / "saved_model"))
    served = loaded.serve(x).numpy()
    session = ort.InferenceSession(str(trained / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(onnx, expected, atol=1e-5)


def test_unknown_category_exits_with_a_clear_message(tmp_path, capsys):
    from training.train import main

    (tmp_path / "numpy_bitmap").mkdir()
    np.save(tmp_path / "numpy_bitmap" / "cat.npy", np.load(FIXTURES / "pairs" / "cat.npy"))
    with pytest.raises(SystemExit) as exc:
        main(["cnn", "--data-dir", str(tmp_path), "--categories", "unicorn"])
    assert exc.value.code == 2
    assert "unknown categories ['unicorn']; available: cat" in capsys.readouterr().err


def test_the_adjusted_loss_is_cross_entropy_of_the_logits_shifted_by_the_prior():
    from training.prior import adjusted_loss

    counts = np.array([900.0, 90.0, 10.0])
    logits = np.array([[2.0, 1.0, -1.0], [0.5, 0.2, 0.1]], np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([2, 0])
    shifted = logits + 0.7 * np.log(counts / counts.sum())
    expected = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(2), labels]
    got = np.asarray(adjusted_loss(counts, 0.7)(labels, probabilities))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # A rare class's drawing costs more than with plain cross-entropy, a frequent one's less.
    plain = -np.log(probabilities[np.arange(2), labels])
    assert got[0] > plain[0] and got[1] < plain[1]
