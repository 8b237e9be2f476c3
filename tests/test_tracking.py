"""Every training run is an MLflow run: params, per-epoch metrics, report, card, registered model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.utils.fixtures import FIXTURES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    from training.train import main

    root = tmp_path_factory.mktemp("tracked")
    data = root / "official"
    (data / "numpy_bitmap").mkdir(parents=True)
    for cat in ("cat", "dog", "airplane"):
        np.save(data / "numpy_bitmap" / f"{cat}.npy", np.load(FIXTURES / "pairs" / f"{cat}.npy"))
    uri = f"sqlite:///{root}/mlruns.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    argv = ["cnn", "--data-dir", str(data), "--output-dir", str(root / "store"), "--shards-dir", str(root / "shards")]
    main([*argv, "--epochs", "2", "--batch-size", "16"])
    mp.undo()
    (version_dir,) = (root / "store" / "cnn").iterdir()
    return uri, version_dir, json.loads((version_dir / "card.json").read_text())


def test_the_card_names_its_run_and_registered_version(tracked):
    uri, version_dir, card = tracked
    entry = card["mlflow_run"]
    assert entry["registered_model"] == "deepdraw-cnn" and entry["registered_version"] == "1"
    assert entry["experiment"] == "deepdraw" and entry["run_id"] and entry["tracking_uri"] == uri
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    registered = client.get_model_version("deepdraw-cnn", "1")
    assert registered.tags["model_store_version"] == version_dir.name == card["version"]
    assert registered.run_id == entry["run_id"]


def test_params_and_per_epoch_metrics(tracked):
    uri, _, card = tracked
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(card["mlflow_run"]["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["arch"] == "deepdraw" and params["epochs"] == "2" and params["batch_size"] == "16"
    assert params["class_weight_power"] == "0.5"
    history = card["training"]["history"]
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        logged = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in logged] == [0, 1]
        assert [round(m.value, 4) for m in logged] == pytest.approx(history[name], abs=1e-4)
    for name in ("top1", "top5", "macro_f1"):
        assert run.data.metrics[f"test_{name}"] == pytest.approx(card["metrics"][name])


def test_artifacts_are_the_report_and_the_card(tracked, tmp_path):
    uri, _, card = tracked
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    run_id = card["mlflow_run"]["run_id"]
    report = {a.path for a in client.list_artifacts(run_id, "report")}
    expected = {"confusion_matrix.png", "per_class.csv", "training_curves.png", "evaluation.json"}
    assert {f"report/{n}" for n in expected} <= report
    local = client.download_artifacts(run_id, "card.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == card
    evaluation = json.loads(
        Path(client.download_artifacts(run_id, "report/evaluation.json", str(tmp_path))).read_text()
    )
    assert evaluation["top1"] == card["metrics"]["top1"]


def test_the_registered_model_is_the_exported_model(tracked):
    uri, version_dir, _ = tracked
    import keras
    import mlflow
    import mlflow.keras

    mlflow.set_tracking_uri(uri)
    registered = mlflow.keras.load_model("models:/deepdraw-cnn/1")
    x = np.load(FIXTURES / "pairs" / "cat.npy")[:4].reshape(-1, 28, 28, 1).astype(np.float32)
    exported = keras.saving.load_model(version_dir / "model.keras")
    np.testing.assert_allclose(registered.predict(x, verbose=0), exported.predict(x, verbose=0), atol=1e-6)


def test_default_store_is_inside_the_project_and_ignored(monkeypatch):
    from training import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{tracking.REPO / 'mlruns.db'}"
    assert tracking._artifact_root(tracking.tracking_uri()) == (tracking.REPO / "mlruns").as_uri()
    ignored = (tracking.REPO / ".gitignore").read_text().split()
    assert "mlruns.db" in ignored and "mlruns/" in ignored
    assert tracking._public_uri("https://user:secret@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    assert tracking._public_uri("sqlite:////tmp/mlruns.db") == "sqlite:////tmp/mlruns.db"
