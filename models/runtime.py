"""Calling an exported network: onnxruntime on ``model.onnx``, or the SavedModel's ``serve`` signature.

Never ``model.predict`` per call: both runners here cost well under a millisecond per small batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]
RUNTIMES = ("onnx", "tensorflow")


def onnx_runner(path: Path, expected_input_rank: int, num_classes: int) -> Runner:
    """An onnxruntime session on ``path``, checked to take the card's input and give its classes."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # One thread per call: requests are tiny, and several workers share the cores.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    out = session.get_outputs()[0]
    if len(inp.shape) != expected_input_rank:
        raise ValueError(f"{path.name} takes a rank-{len(inp.shape)} input, the card says rank {expected_input_rank}")
    if out.shape[-1] not in (num_classes, None) and not isinstance(out.shape[-1], str):
        raise ValueError(f"{path.name} gives {out.shape[-1]} outputs, the card lists {num_classes} classes")
    name = inp.name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run


def tensorflow_runner(path: Path) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep a reference: serve() needs its variables alive

    def run(x: np.ndarray) -> np.ndarray:
        return loaded.serve(x).numpy()

    return run


def onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
