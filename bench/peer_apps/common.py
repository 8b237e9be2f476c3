"""What every peer app shares: where the model is, its class names, and the top-5 answer.

The peer apps run in their own virtualenvs (BentoML, Ray) without the project's packages, so this
module needs only numpy and the standard library. The answer has Deep Draw's shape
(``{"predictions": [{"label", "probability"}]}``) so the bench checks every server the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MODEL_DIR = Path(os.environ["PEER_MODEL_DIR"])
_CARD = json.loads((MODEL_DIR / "card.json").read_text())
CLASSES: list[str] = _CARD["classes"]
# The classifier's graph, as a user serving it would export it: the probabilities-only copy when the
# CNN also carries an embedding (Deep Draw runs that copy for /predict too).
ONNX_FILE = MODEL_DIR / (_CARD["files"].get("onnx_probabilities") or _CARD["files"]["onnx"])


def probabilities_output(session) -> str:
    """The graph's class-probabilities output: named so when there are several, else the only one."""
    names = [o.name for o in session.get_outputs()]
    return "probabilities" if "probabilities" in names else names[0]


def as_batch(bitmap: list[list[int]]) -> np.ndarray:
    """A 28x28 bitmap (0-255, as numpy_bitmap) as the model's float32 batch of one."""
    return np.asarray(bitmap, dtype=np.float32).reshape(1, 28, 28, 1)


def top5(probabilities: np.ndarray) -> dict:
    order = np.argsort(probabilities)[::-1][:5]
    return {"predictions": [{"label": CLASSES[i], "probability": float(probabilities[i])} for i in order]}
