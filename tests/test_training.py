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
