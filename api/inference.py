"""From a request body to the top-k guesses: validation, shared preprocessing, batched inference.

``/predict`` and ``/predict/batch`` both go through ``prepare`` (one item, CPU work, clear errors)
and ``predict`` (many prepared items, one model call per model).
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

import numpy as np

from api.registry import Registry
from api.schemas import ModelRef, Prediction, PredictRequest, PredictResponse
from api.settings import Settings
from sketch.image import image_bytes_to_bitmap
from sketch.raster import render_simplified
from sketch.sequence import normalized_to_sequence, pad_batch
from sketch.strokes import EmptyDrawingError, normalize, parse_strokes


class InputError(ValueError):
    """A request the service understood but cannot use (answered 422 with this message)."""


class UnavailableError(RuntimeError):
    """No model can answer right now (answered 503 with this message)."""


def decode_bitmap(values: list) -> np.ndarray:
    """28x28 nested or 784 flat list -> float32 (28, 28) in 0-255."""
    try:
        arr = np.asarray(values, dtype=np.float32)
    except ValueError:
        raise InputError("bitmap must be 28 rows of 28 numbers, or 784 numbers") from None
    if arr.shape not in ((28, 28), (784,)):
        raise InputError(f"bitmap must be 28x28 or a flat list of 784 values, got shape {list(arr.shape)}")
    arr = arr.reshape(28, 28)
    if arr.min() < 0 or arr.max() > 255:
        raise InputError("bitmap values must be in 0-255 (ints) or 0-1 (floats)")
    if arr.max() <= 1.0:
        arr = arr * 255.0  # floats 0-1
    if not arr.any():
        raise EmptyDrawingError("empty drawing: the bitmap has no ink")
    return arr


def decode_image_field(text: str, settings: Settings) -> np.ndarray:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("image is not valid base64") from None
    if not raw:
        raise InputError("image is empty")
    try:
        return image_bytes_to_bitmap(raw, settings.max_image_pixels).astype(np.float32)
    except EmptyDrawingError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None


@dataclass
class Prepared:
    request: PredictRequest
    bitmap: np.ndarray | None  # float32 (28, 28), 0-255: what the CNN sees
    sequence: np.ndarray | None  # float32 (n, 3) (dx, dy, end_of_stroke): what the RNN sees
    preprocess_ms: float


def model_names(registry: Registry) -> list[str]:
    names = list(registry.models)
    if "cnn" in names and "rnn" in names:
        names.append("ensemble")
    return names


def needs_bitmap(model: str) -> bool:
    return model in ("cnn", "ensemble")


def needs_strokes(model: str) -> bool:
    return model in ("rnn", "ensemble")


def prepare(req: PredictRequest, settings: Settings, registry: Registry) -> Prepared:
    """Validate one request and compute what its model needs. Raises InputError/EmptyDrawingError."""
    t0 = time.perf_counter()
    available = model_names(registry)
    if req.model not in available:
        if not registry.models:
            raise UnavailableError("no model is loaded: " + "; ".join(registry.errors.values()))
        raise InputError(f"unknown model '{req.model}'; available: {', '.join(available)}")
    if req.top_k > settings.max_top_k:
        raise InputError(f"top_k must be between 1 and {settings.max_top_k}")
    if needs_strokes(req.model) and req.strokes is None:
        raise InputError(f"model '{req.model}' reads pen strokes: send 'strokes', not '{req.input_kind}'")

    bitmap = normalized = None
    if req.strokes is not None:
        try:
            strokes = parse_strokes(req.strokes, settings.max_strokes, settings.max_points)
        except EmptyDrawingError:
            raise
        except ValueError as exc:
            raise InputError(str(exc)) from None
        # Normalised once: the ensemble's bitmap and sequence both start from it.
        normalized = normalize(strokes)
    if needs_bitmap(req.model) or req.return_bitmap:
        if req.bitmap is not None:
            bitmap = decode_bitmap(req.bitmap)
        elif req.image is not None:
            bitmap = decode_image_field(req.image, settings)
        else:
            bitmap = render_simplified(normalized).astype(np.float32)
    sequence = normalized_to_sequence(normalized) if needs_strokes(req.model) else None
    return Prepared(req, bitmap, sequence, (time.perf_counter() - t0) * 1000)


def _top_k(probs: np.ndarray, classes: list[str], k: int) -> list[Prediction]:
    k = min(k, len(classes))
    idx = np.argpartition(-probs, k - 1)[:k]
    idx = idx[np.argsort(-probs[idx])]
    return [Prediction(label=classes[i], probability=round(float(probs[i]), 6)) for i in idx]


def _cnn_probabilities(items: list[Prepared], registry: Registry) -> tuple[np.ndarray, list[str], ModelRef]:
    cnn = registry.models["cnn"]
    batch = np.stack([p.bitmap for p in items])[..., None]
    return cnn.predict(batch), cnn.classes, ModelRef(name=cnn.name, version=cnn.version)


def _rnn_probabilities(items: list[Prepared], registry: Registry) -> tuple[np.ndarray, list[str], ModelRef]:
    rnn = registry.models["rnn"]
    # Zero padding is exact for this model (see training/rnn.py): mixed lengths share one call.
    batch = pad_batch([p.sequence for p in items])
    return rnn.predict(batch), rnn.classes, ModelRef(name=rnn.name, version=rnn.version)


# Weight of the RNN in the ensemble when its metadata has none chosen on validation data.
DEFAULT_RNN_WEIGHT = 0.5


def ensemble_classes(registry: Registry) -> list[str]:
    """The classes both the CNN and the RNN know, in the CNN's order: the ensemble's answers."""
    rnn_classes = set(registry.models["rnn"].classes)
    return [c for c in registry.models["cnn"].classes if c in rnn_classes]


def combine_probabilities(
    cnn_probs: np.ndarray,
    cnn_classes: list[str],
    rnn_probs: np.ndarray,
    rnn_classes: list[str],
    rnn_weight: float,
) -> tuple[np.ndarray, list[str]]:
    """Weighted geometric mean of the two models' probabilities over the classes they share.

    ``p(c) ~ p_cnn(c) ** (1 - w) * p_rnn(c) ** w`` for the shared classes ``c``, renormalised to sum
    to 1 (a product of experts: a class wins when both models find it plausible, and one model's
    confident "no" counts). ``w`` is chosen on the validation split by ``training.compare`` (the
    lowest log-loss on a 0.05 grid) and stored in the RNN's ``metadata.json`` as
    ``ensemble.rnn_weight``; it also calibrates, since a power of a softmax is a temperature.
    """
    rnn_index = {c: i for i, c in enumerate(rnn_classes)}
    shared = [c for c in cnn_classes if c in rnn_index]
    if not shared:
        raise ValueError("the CNN and the RNN share no class")
    cnn_cols = [i for i, c in enumerate(cnn_classes) if c in rnn_index]
    rnn_cols = [rnn_index[c] for c in shared]
    eps = 1e-7  # a probability of exactly 0 would veto a class for good
    log_p = (1.0 - rnn_weight) * np.log(np.maximum(cnn_probs[:, cnn_cols], eps)) + rnn_weight * np.log(
        np.maximum(rnn_probs[:, rnn_cols], eps)
    )
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32), shared


def _ensemble_probabilities(items: list[Prepared], registry: Registry) -> tuple[np.ndarray, list[str], ModelRef]:
    """CNN (on the dataset-exact rasterisation of the strokes) and RNN, combined by ``combine_probabilities``."""
    cnn_probs, cnn_classes, cnn_ref = _cnn_probabilities(items, registry)
    rnn_probs, rnn_classes, rnn_ref = _rnn_probabilities(items, registry)
    weight = registry.models["rnn"].metadata.get("ensemble", {}).get("rnn_weight", DEFAULT_RNN_WEIGHT)
    probs, classes = combine_probabilities(cnn_probs, cnn_classes, rnn_probs, rnn_classes, float(weight))
    return probs, classes, ModelRef(name="ensemble", version=f"cnn-{cnn_ref.version}+rnn-{rnn_ref.version}")


# How each model name turns prepared items into probabilities over its classes.
PROBABILITIES = {"cnn": _cnn_probabilities, "rnn": _rnn_probabilities, "ensemble": _ensemble_probabilities}


def predict(items: list[Prepared], registry: Registry) -> list[PredictResponse]:
    """One model call per model for all the items, answers in the items' order."""
    results: list[PredictResponse | None] = [None] * len(items)
    for name in dict.fromkeys(p.request.model for p in items):
        idx = [i for i, p in enumerate(items) if p.request.model == name]
        group = [items[i] for i in idx]
        t0 = time.perf_counter()
        probs, classes, ref = PROBABILITIES[name](group, registry)
        inference_ms = (time.perf_counter() - t0) * 1000 / len(group)
        for i, p, row in zip(idx, group, probs, strict=True):
            results[i] = PredictResponse(
                predictions=_top_k(row, classes, p.request.top_k),
                model=ref,
                timings_ms={"preprocess": round(p.preprocess_ms, 3), "inference": round(inference_ms, 3)},
                bitmap=p.bitmap.round().astype(int).tolist() if p.request.return_bitmap else None,
            )
    return results
