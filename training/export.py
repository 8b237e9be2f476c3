"""Export a trained Keras model into the versioned model store.

``model_store/<kind>/<version>/`` holds ``saved_model/`` (the artifact of record, from
``model.export``), ``model.keras`` (to resume training or compare), ``model.onnx`` (the same
graph for onnxruntime, checked against the SavedModel),
``metadata.json`` (the class list travels with the model) and ``report/``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import sketch


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


def run_metadata(result: dict, history: dict, model, args, minutes: float) -> dict:
    """The ``metrics`` (test split) and ``training`` entries of every model's metadata.json."""
    return {
        "metrics": {
            "split": "test",
            **{k: result[k] for k in ("n", "top1", "top3", "top5", "macro_f1")},
            "worst5_f1": result["worst5_f1"],
        },
        "training": {
            "epochs_run": len(history["loss"]),
            "params": {k: v for k, v in vars(args).items() if k != "func"},
            "parameters_count": int(model.count_params()),
            "minutes": round(minutes, 1),
            "history": {k: [round(float(x), 4) for x in v] for k, v in history.items()},
        },
    }


def export_model(model, out_dir: Path, metadata: dict) -> Path:
    """Write the SavedModel, its ONNX copy and metadata.json into ``out_dir``; returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = out_dir / "saved_model"
    model.export(str(saved), verbose=False)
    model.save(out_dir / "model.keras")
    onnx_path = out_dir / "model.onnx"
    # tf2onnx's Python API breaks on Keras 3; its CLI on the SavedModel works.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--saved-model",
            str(saved),
            "--output",
            str(onnx_path),
            "--opset",
            "17",
        ],
        check=True,
        capture_output=True,
    )
    metadata = {
        **metadata,
        "preprocessing_version": sketch.PREPROCESSING_VERSION,
        "framework_versions": framework_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {"saved_model": "saved_model", "keras": "model.keras", "onnx": "model.onnx", "report": "report"},
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return out_dir
