"""Every training run is an MLflow run: parameters, per-epoch metrics, the report, the model card,
and the model itself, logged and registered (``deepdraw-cnn``, ``deepdraw-rnn``).

The default store lives in the project, needs no server and is git-ignored: runs and the registry
in ``mlruns.db`` (SQLite), artifacts in ``mlruns/``; ``make mlflow-ui`` opens them.
``MLFLOW_TRACKING_URI`` points at another store (e.g. a shared server) instead. MLflow is a
training dependency only: nothing under ``api/`` imports this module.

The registry numbers its versions 1, 2, 3...; ``model_store/`` names them by time. Each registered
version carries the tag ``model_store_version`` (and the card's ``mlflow_run`` holds the registry
version), so either side finds the other.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URI = f"sqlite:///{REPO / 'mlruns.db'}"
EXPERIMENT = "deepdraw"
REGISTERED = {"cnn": "deepdraw-cnn", "rnn": "deepdraw-rnn"}
# MLflow 3 reports usage to its makers unless told not to; this project talks to no third party.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside its database (``mlruns/``); a server decides its own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
    return None


def _flat(params: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:6000]
    return out


class Run:
    """One MLflow run around a training run; a disabled one (not the chief, ``--no-mlflow``) does nothing."""

    def __init__(self, kind: str, params: dict, enabled: bool = True):
        self.kind = kind
        self.params = params
        self.enabled = enabled
        self.run_id: str | None = None

    def __enter__(self) -> Run:
        if not self.enabled:
            return self
        import mlflow

        uri = tracking_uri()
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=_artifact_root(uri))
        mlflow.set_experiment(EXPERIMENT)
        name = f"{self.kind}-{self.params.get('arch', self.kind)}"
        run = mlflow.start_run(run_name=name, tags={"kind": self.kind, "workers": str(_workers())})
        self.run_id = run.info.run_id
        mlflow.log_params(_flat(self.params))
        print(f"MLflow run {self.run_id} in {uri}")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.enabled:
            import mlflow

            mlflow.end_run("FAILED" if exc_type else "FINISHED")

    def epoch_callback(self):
        """A Keras callback logging every epoch's metrics (loss, accuracy, val_*...) at step = epoch."""
        import keras

        run = self

        class _LogEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if run.enabled and logs:
                    import mlflow

                    mlflow.log_metrics({k: float(v) for k, v in logs.items()}, step=epoch)

        return _LogEpoch()

    def log_model(self, model, store_version: str, input_example=None) -> dict | None:
        """Log and register the trained model; returns the model card's ``mlflow_run`` entry.

        ``{"run_id", "experiment", "tracking_uri", "registered_model", "registered_version"}``; None when
        tracking is off.
        """
        if not self.enabled:
            return None
        import mlflow
        import mlflow.keras

        name = REGISTERED[self.kind]
        signature = None
        if input_example is not None:
            signature = mlflow.models.infer_signature(input_example, model.predict_on_batch(input_example))
        info = mlflow.keras.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=signature,
            # Written out: MLflow would otherwise import-scan the environment to guess them.
            pip_requirements=[_requirement("tensorflow-cpu", "tensorflow"), _requirement("keras")],
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_model_version_tag(name, version, "model_store_version", store_version)
        mlflow.set_tag("model_store_version", store_version)
        return {
            "run_id": self.run_id,
            "experiment": EXPERIMENT,
            "tracking_uri": _public_uri(tracking_uri()),
            "registered_model": name,
            "registered_version": version,
        }

    def log_results(self, result: dict, out_dir: Path) -> None:
        """Test metrics, the evaluation report and the exported model card (``card.json``)."""
        if not self.enabled:
            return
        import mlflow

        mlflow.log_metrics({f"test_{k}": float(result[k]) for k in ("top1", "top3", "top5", "macro_f1")})
        report = out_dir / "report"
        if report.is_dir():
            mlflow.log_artifacts(str(report), "report")
        with tempfile.TemporaryDirectory() as tmp:
            summary = {k: result[k] for k in ("n", "top1", "top3", "top5", "macro_f1", "worst5_f1")}
            (Path(tmp) / "evaluation.json").write_text(json.dumps(summary, indent=2, default=str))
            mlflow.log_artifact(str(Path(tmp) / "evaluation.json"), "report")
        mlflow.log_artifact(str(out_dir / "card.json"))


def _workers() -> int:
    from training.distributed import worker_count

    return worker_count()


def _requirement(*names: str) -> str:
    """``name==version`` of the first of ``names`` installed (TensorFlow ships as -cpu or not)."""
    from importlib.metadata import PackageNotFoundError, version

    for name in names:
        try:
            return f"{name}=={version(name)}"
        except PackageNotFoundError:
            continue
    raise RuntimeError(f"none of {names} is installed")


def _public_uri(uri: str) -> str:
    """The store's address without credentials (``https://user:token@host`` -> ``https://host``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if not (parts.password or parts.username):
        return uri  # unchanged (urlunsplit would turn sqlite://// into sqlite://)
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
