"""Load the models of the store once, and call them without per-request overhead.

Each kind (``cnn``, ``rnn``) lives in ``<store>/<kind>/<version>/`` as written by
``training.export``. The SavedModel is the artifact of record; the ONNX copy next to it is what
is served when onnxruntime is installed (about twice as fast per call here), otherwise the
SavedModel's ``serve`` function. Never ``model.predict`` per request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

KINDS = ("cnn", "rnn")


@dataclass
class ServedModel:
    name: str
    version: str
    classes: list[str]
    metadata: dict
    runtime: str
    run: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (batch, len(classes))."""
        return self.run(x)


class ModelStoreError(RuntimeError):
    """The store or a model in it cannot be served; the message says why."""


def latest_version(kind_dir: Path, pinned: str | None = None) -> Path:
    if pinned:
        path = kind_dir / pinned
        if not (path / "metadata.json").is_file():
            raise ModelStoreError(f"pinned version {pinned} not found in {kind_dir}")
        return path
    versions = sorted(p for p in kind_dir.iterdir() if (p / "metadata.json").is_file())
    if not versions:
        raise ModelStoreError(f"no model version in {kind_dir}")
    return versions[-1]


def _onnx_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # One thread per call: requests are tiny, and several workers share the cores.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]

    def run(x: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
        args = x if isinstance(x, tuple) else (x,)
        return session.run(None, dict(zip(inputs, args, strict=True)))[0]

    return run


def _tensorflow_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep a reference: serve() needs its variables alive

    def run(x: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
        args = x if isinstance(x, tuple) else (x,)
        return loaded.serve(*args).numpy()

    return run


def load_model(version_dir: Path, runtime: str = "auto") -> ServedModel:
    try:
        meta = json.loads((version_dir / "metadata.json").read_text())
        classes = list(meta["classes"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelStoreError(f"{version_dir}/metadata.json is unreadable: {exc}") from None
    onnx_path = version_dir / meta.get("files", {}).get("onnx", "model.onnx")
    if runtime == "auto":
        try:
            import onnxruntime  # noqa: F401

            runtime = "onnx" if onnx_path.is_file() else "tensorflow"
        except ImportError:
            runtime = "tensorflow"
    try:
        if runtime == "onnx":
            run = _onnx_runner(onnx_path)
        else:
            run = _tensorflow_runner(version_dir / meta.get("files", {}).get("saved_model", "saved_model"))
    except ImportError as exc:
        raise ModelStoreError(f"runtime {runtime} is not installed: {exc}") from None
    except Exception as exc:  # a corrupt model file: report it, keep the service up
        raise ModelStoreError(f"cannot load {version_dir} with {runtime}: {exc}") from None
    name = meta.get("name", meta.get("kind", version_dir.parent.name))
    return ServedModel(name, str(meta.get("version", version_dir.name)), classes, meta, runtime, run)


@dataclass
class Registry:
    """The loaded models by name, and why the others could not be loaded."""

    models: dict[str, ServedModel] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    warmed_up: bool = False

    @property
    def ready(self) -> bool:
        return self.warmed_up and "cnn" in self.models


def load_registry(store: Path, runtime: str = "auto", pinned: dict[str, str | None] | None = None) -> Registry:
    """Load every kind present in the store; a missing or broken one is recorded, never raised."""
    registry = Registry()
    pinned = pinned or {}
    if not store.is_dir():
        registry.errors["store"] = f"model store {store} does not exist"
        return registry
    for kind in KINDS:
        kind_dir = store / kind
        if not kind_dir.is_dir():
            if kind == "cnn":
                registry.errors[kind] = f"no {kind}/ folder in model store {store}"
            continue
        try:
            registry.models[kind] = load_model(latest_version(kind_dir, pinned.get(kind)), runtime)
        except ModelStoreError as exc:
            log.error("%s", exc)
            registry.errors[kind] = str(exc)
    return registry
