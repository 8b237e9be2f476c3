"""Calling an exported network: onnxruntime on ``model.onnx``, or the SavedModel's ``serve`` signature.

Never ``model.predict`` per call: both runners here cost well under a millisecond per small batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

# A network's outputs by name: one (``output_0``) for a plain classifier; a CNN with an embedding
# gives ``probabilities`` and ``embedding`` (``models.card.EmbeddingSpec``).
Runner = Callable[[np.ndarray], dict[str, np.ndarray]]
RUNTIMES = ("onnx", "tensorflow")
PROBABILITIES = "probabilities"


def probabilities_output(names: list[str]) -> str:
    """The output that holds class probabilities: the one named so, or the only one."""
    if PROBABILITIES in names:
        return PROBABILITIES
    if len(names) == 1:
        return names[0]
    raise ValueError(f"outputs {names}: none is named {PROBABILITIES!r}")


def onnx_runner(path: Path, expected_input_rank: int, num_classes: int) -> Runner:
    """An onnxruntime session on ``path``, checked to take the card's input and give its classes."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # One thread per call: requests are tiny, and several workers share the cores.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    outputs = {o.name: o for o in session.get_outputs()}
    out = outputs[probabilities_output(list(outputs))]
    if len(inp.shape) != expected_input_rank:
        raise ValueError(f"{path.name} takes a rank-{len(inp.shape)} input, the card says rank {expected_input_rank}")
    if out.shape[-1] not in (num_classes, None) and not isinstance(out.shape[-1], str):
        raise ValueError(f"{path.name} gives {out.shape[-1]} outputs, the card lists {num_classes} classes")
    name, names = inp.name, list(outputs)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {name: x}), strict=True))

    return run


def tensorflow_runner(path: Path) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep a reference: serve() needs its variables alive

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        out = loaded.serve(x)
        if isinstance(out, dict):
            return {k: v.numpy() for k, v in out.items()}
        return {"output_0": out.numpy()}

    return run


def onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
