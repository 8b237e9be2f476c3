"""Export a trained Keras model into the versioned model store, with its card written once.

``model_store/<kind>/<version>/`` holds ``saved_model/`` (the artifact of record, from
``model.export``), ``model.keras`` (to resume training or compare), ``model.onnx`` (the same graph
for onnxruntime, checked against the SavedModel on real inputs here), ``card.json`` (the model
card, ``models.card``) and ``report/``. The card is written last, complete: a folder without one
is an unfinished export, and the API never loads it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import sketch
from models.card import Files, Metrics, ModelCard, OnnxCheck, PriorCorrection, Training
from models.runtime import onnx_runner, tensorflow_runner
from training.evaluate import evaluate, summary, write_report
from training.shards import predict
from training.tracking import Run

ONNX_TOLERANCE = 1e-4


def new_version() -> str:
    """Versions sort by creation time, so the newest is simply the largest name."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def framework_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def test_metrics(result: dict) -> Metrics:
    """The card's ``metrics``: the test split's headline figures from ``training.evaluate``."""
    return Metrics(split="test", **{k: result[k] for k in ("n", "top1", "top3", "top5", "macro_f1", "worst5_f1")})


def training_info(
    history: dict, model, args, minutes: float, prior_correction: PriorCorrection | None = None
) -> Training:
    return Training(
        prior_correction=prior_correction,
        epochs_run=len(history["loss"]),
        params={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        parameters_count=int(model.count_params()),
        minutes=round(minutes, 1),
        history={k: [round(float(x), 4) for x in v] for k, v in history.items()},
    )


def convert_to_onnx(saved_model: Path, onnx_path: Path) -> None:
    # tf2onnx's Python API breaks on Keras 3; its CLI on the SavedModel works.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--saved-model",
            str(saved_model),
            "--output",
            str(onnx_path),
            "--opset",
            "17",
        ],
        check=True,
        capture_output=True,
    )


def check_onnx(out_dir: Path, batches: Iterable[np.ndarray], rank: int, num_classes: int, split: str) -> OnnxCheck:
    """The ONNX copy against the SavedModel on ``batches`` (model inputs); raises above the tolerance."""
    saved = tensorflow_runner(out_dir / "saved_model")
    onnx = onnx_runner(out_dir / "model.onnx", rank, num_classes)
    diff, n = 0.0, 0
    for x in batches:
        a, b = saved(x), onnx(x)
        if len(a) > 1 and set(a) != set(b):  # several outputs are matched by name
            raise RuntimeError(f"{out_dir}: the ONNX outputs {sorted(b)} are not the SavedModel's {sorted(a)}")
        pairs = zip(a.values(), b.values(), strict=True) if len(a) == 1 else ((a[k], b[k]) for k in a)
        diff = max(diff, *(float(np.abs(u - v).max()) for u, v in pairs))
        n += len(x)
    if n == 0:
        raise ValueError("the ONNX check needs at least one input")
    if diff > ONNX_TOLERANCE:
        raise RuntimeError(f"{out_dir}/model.onnx differs from the SavedModel by {diff:.2e}")
    return OnnxCheck(split=split, n=n, max_abs_diff=diff, tolerance=ONNX_TOLERANCE)


def evaluate_and_export(
    model,
    kind: str,
    args,
    classes: list[str],
    history: dict,
    minutes: float,
    test_batches: Callable[[], Iterable],
    card_fields: dict[str, Any],
    run: Run,
    example: np.ndarray,
    prior_correction: PriorCorrection | None = None,
) -> Path:
    """The tail every trainer shares: evaluate on the test split, write the report, export the model
    and its card, log both to the run. ``test_batches()`` gives ``(inputs, labels)`` batches afresh."""
    probs, labels = predict(model, test_batches())
    result = evaluate(probs, labels, classes)
    print(summary(result, minutes))
    out_dir = Path(args.output_dir) / kind / new_version()
    write_report(result, classes, out_dir / "report", history)
    card = export_model(
        model,
        out_dir,
        {
            "kind": kind,
            "classes": classes,
            "metrics": test_metrics(result),
            "training": training_info(history, model, args, minutes, prior_correction),
            **card_fields,
            "mlflow_run": run.log_model(model, out_dir.name, example),
        },
        (x.numpy() for x, _ in test_batches()),
    )
    run.log_results(result, out_dir)
    print(f"exported {out_dir} (ONNX matches the SavedModel within {card.onnx_check.max_abs_diff:.1e})")
    return out_dir


def export_model(
    model,
    out_dir: Path,
    card_fields: dict[str, Any],
    check_batches: Iterable[np.ndarray],
    check_split: str = "test",
) -> ModelCard:
    """Write the SavedModel, its checked ONNX copy and, last, the card; returns the card."""
    write_model_files(model, out_dir)
    return write_card(out_dir, card_fields, check_batches, check_split)


def write_model_files(model, out_dir: Path) -> None:
    """The SavedModel, ``model.keras`` and the ONNX copy (not yet checked: ``write_card`` does)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = out_dir / "saved_model"
    model.export(str(saved), verbose=False)
    model.save(out_dir / "model.keras")
    convert_to_onnx(saved, out_dir / "model.onnx")


def write_card(
    out_dir: Path,
    card_fields: dict[str, Any],
    check_batches: Iterable[np.ndarray],
    check_split: str = "test",
    files: Files | None = None,
) -> ModelCard:
    """Check the ONNX copy against the SavedModel, then write the card, last and once."""
    fields = {"version": out_dir.name, **card_fields}
    input_spec = fields["input"]
    rank = len(input_spec["shape"] if isinstance(input_spec, dict) else input_spec.shape)
    card = ModelCard(
        **fields,
        preprocessing_version=sketch.PREPROCESSING_VERSION,
        framework_versions=framework_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        files=files or Files(),
        onnx_check=check_onnx(out_dir, check_batches, rank, len(fields["classes"]), check_split),
    )
    card.check_compatible()
    card.write(out_dir)
    return card
