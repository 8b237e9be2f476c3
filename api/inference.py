"""From a request body to the top-k guesses: validation, shared preprocessing, batched inference.

``/predict`` and ``/predict/batch`` both go through ``prepare`` (one item, CPU work, clear errors)
and ``predict`` (many prepared items, one model call per model). The models themselves, and how
the ensemble combines them, live in ``models/``.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, replace

import numpy as np

from api.metrics import record_inference
from api.schemas import MAX_POINTS, PredictRequest
from api.settings import DEFAULT_MODELS, Settings
from models.answer import Answer
from models.explain import Explanation, explain_bitmap, leave_one_out, pairs_to_try, with_pairs
from models.inputs import Inputs, bitmap_of, sequence_of
from models.kinds import BITMAP, KINDS, SEQUENCE
from models.loading import LoadedModels, Model
from sketch.drawing import Drawing
from sketch.image import image_bytes_to_bitmap
from sketch.sequence import MAX_LEN
from sketch.strokes import EmptyDrawingError, normalize, parse_strokes


class InputError(ValueError):
    """A request the service understood but cannot use (answered 422 with this message)."""


class UnavailableError(RuntimeError):
    """The model asked for cannot answer right now (answered 503 with this message)."""


def decode_bitmap(values: list) -> np.ndarray:
    """28x28 nested or 784 flat list -> float32 (28, 28) in 0-255."""
    try:
        # float64 first: ink is any value above 0 (as the schema says), even one float32 rounds to 0.
        arr = np.asarray(values, dtype=np.float64)
    except ValueError:
        raise InputError("bitmap must be 28 rows of 28 numbers, or 784 numbers") from None
    if arr.shape not in ((28, 28), (784,)):
        raise InputError(f"bitmap must be 28x28 or a flat list of 784 values, got shape {list(arr.shape)}")
    arr = arr.reshape(28, 28)
    lowest, highest = arr.min(), arr.max()
    if lowest < 0 or highest > 255:
        raise InputError("bitmap values must be in 0-255 (ints) or 0-1 (floats)")
    if highest == 0:  # every value is at least 0
        raise EmptyDrawingError("empty drawing: the bitmap has no ink")
    if highest <= 1.0:
        arr = arr * 255.0  # floats 0-1
    return arr.astype(np.float32)


def decode_image_field(text: str, settings: Settings) -> np.ndarray:
    if text.startswith("data:"):
        head, comma, text = text.partition(",")
        if not comma:
            raise InputError(f"image data URL has no ',' after {head[:40]!r}: data:image/png;base64,<base64>")
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
    model: Model
    bitmap: np.ndarray | None  # float32 (28, 28), 0-255: what a bitmap reader sees
    sequence: np.ndarray | None  # float32 (n, 3) (dx, dy, end_of_stroke): what a sequence reader sees
    preprocess_ms: float
    # To explain strokes: the drawing as parsed (what an explanation leaves strokes out of), and normalised.
    drawing: Drawing | None = None
    normalized: Drawing | None = None


def choose_model(req: PredictRequest, loaded: LoadedModels) -> Model:
    """The model the request names, or the default for what it sends; 503 when it is not loaded."""
    if req.model is None:
        for name in DEFAULT_MODELS[req.input_kind]:
            if name in loaded.by_name:
                return loaded.by_name[name]
        wanted = DEFAULT_MODELS[req.input_kind][-1]
    else:
        wanted = req.model
        if wanted in loaded.by_name:
            return loaded.by_name[wanted]
    reason = loaded.errors.get(wanted) or loaded.errors.get("store") or f"no {wanted} model in the store"
    raise UnavailableError(f"model '{wanted}' is not available: {reason}")


def prepare(req: PredictRequest, settings: Settings, loaded: LoadedModels) -> Prepared:
    """Validate one request, choose its model and compute what that model reads.
    Raises InputError/EmptyDrawingError, or UnavailableError."""
    t0 = time.perf_counter()
    model = choose_model(req, loaded)
    if SEQUENCE in KINDS[model.name].reads and req.strokes is None:
        raise InputError(f"model '{model.name}' reads pen strokes: send 'strokes', not '{req.input_kind}'")
    uses = model.uses

    bitmap = normalized = drawing = None
    if req.strokes is not None:
        try:
            drawing = parse_strokes(req.strokes, max_points=MAX_POINTS)
        except EmptyDrawingError:
            raise
        except ValueError as exc:
            raise InputError(str(exc)) from None
        # Normalised once: a bitmap and a sequence both start from it.
        normalized = normalize(drawing)
    # An explanation makes what the model reads of the drawing alongside its variants.
    explained = req.explain and drawing is not None
    if (BITMAP in uses and not explained) or req.return_bitmap:
        if req.bitmap is not None:
            bitmap = decode_bitmap(req.bitmap)
        elif req.image is not None:
            bitmap = decode_image_field(req.image, settings)
        else:
            bitmap = bitmap_of(normalized)
    sequence = sequence_of(normalized, model.max_len) if SEQUENCE in uses and not explained else None
    elapsed = (time.perf_counter() - t0) * 1000
    if not explained:
        return Prepared(req, model, bitmap, sequence, elapsed)
    return Prepared(req, model, bitmap, sequence, elapsed, drawing, normalized)


def _top_k(answer: Answer, row: np.ndarray, k: int) -> list[dict]:
    classes, origins = answer.classes, answer.origins
    k = min(k, len(classes))
    idx = np.argpartition(-row, k - 1)[:k]
    idx = idx[np.argsort(-row[idx])]
    return [{"label": classes[i], "probability": round(float(row[i]), 6), "kind": origins[i]} for i in idx]


def _inputs(items: list[Prepared]) -> Inputs:
    uses = items[0].model.uses
    return Inputs(
        bitmaps=np.stack([p.bitmap for p in items]) if BITMAP in uses else None,
        sequences=[p.sequence for p in items] if SEQUENCE in uses else None,
    )


def predict(items: list[Prepared], record: bool = True) -> list[dict]:
    """One model call per model for all the items, answers in the items' order (counted in the
    metrics unless ``record`` is false: the warm-up is no client's prediction).

    Each answer is a ``PredictResponse`` as a plain dict, ready for ``pydantic_core.to_json``:
    built from values made right here, validating them into models would cost more than the rest
    of the answer (the routes declare ``PredictResponse``, and the contract test holds the answers
    to it)."""
    results: list[dict | None] = [None] * len(items)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(items):
        groups.setdefault(id(p.model), []).append(i)
    for idx in groups.values():
        group = [items[i] for i in idx]
        if group[0].request.explain:  # /predict only: a group of one
            results[idx[0]] = explained(explain_rest(explain_start(group[0])), record)
            continue
        model = group[0].model
        t0 = time.perf_counter()
        answer = model.predict(_inputs(group))
        if record:
            record_inference(model.name, len(group))
        inference_ms = (time.perf_counter() - t0) * 1000 / len(group)
        for i, p, row in zip(idx, group, answer.probabilities, strict=True):
            results[i] = _result(p, answer, row, inference_ms)
    return results


def _result(p: Prepared, answer: Answer, row: np.ndarray, inference_ms: float) -> dict:
    result = {
        "predictions": _top_k(answer, row, p.request.top_k),
        "model": {"name": p.model.name, "version": p.model.version},
        "timings_ms": {"preprocess": round(p.preprocess_ms, 3), "inference": round(inference_ms, 3)},
    }
    if p.request.return_bitmap:
        result["bitmap"] = p.bitmap.round().astype(int).tolist()
    return result


@dataclass(frozen=True)
class Explaining:
    """One prepared item's answer and the explanation of its top guess, as far as it has gone."""

    prepared: Prepared
    answer: Answer
    found: Explanation
    inference_ms: float
    done: bool  # False: pairs of strokes are left to try (``explain_rest``)


def explain_start(p: Prepared) -> Explaining:
    """The answer and as much of its explanation as one batched model call gives (``models.explain``):
    leave-one-out over the strokes, or the occlusion map of a bitmap."""
    t0 = time.perf_counter()
    if p.drawing is None:
        answer, found = explain_bitmap(p.model.predict, p.bitmap)
        return Explaining(p, answer, found, (time.perf_counter() - t0) * 1000, True)
    reads, max_len = p.model.uses, p.model.max_len or MAX_LEN
    answer, found = leave_one_out(p.model.predict, p.drawing, p.normalized, reads, max_len)
    done = not pairs_to_try(p.drawing, found)
    return Explaining(p, answer, found, (time.perf_counter() - t0) * 1000, done)


def explain_rest(e: Explaining) -> Explaining:
    """The explanation finished: the pairs of strokes tried when no single stroke changed the guess."""
    if e.done:
        return e
    p, t0 = e.prepared, time.perf_counter()
    reads, max_len = p.model.uses, p.model.max_len or MAX_LEN
    found = with_pairs(p.model.predict, p.drawing, p.normalized, e.found, reads, max_len)
    return replace(e, found=found, inference_ms=e.inference_ms + (time.perf_counter() - t0) * 1000, done=True)


def explained(e: Explaining, record: bool = True) -> dict:
    """A finished explanation as the ``PredictResponse`` dict ``predict`` gives."""
    p = e.prepared
    if record:
        record_inference(p.model.name, 1)
    result = _result(p, e.answer, e.answer.probabilities[0], e.inference_ms)
    result["explanation"] = _explanation_dict(p, e.found)
    return result


def _explanation_dict(p: Prepared, found: Explanation) -> dict:
    """An ``Explanation`` (api.schemas) as a plain dict like the rest of the answer."""
    out: dict = {"label": found.label, "probability": round(found.probability, 6)}
    if p.drawing is not None:
        # Strokes without a point were dropped when parsing: indices name the request's strokes.
        unit, index = "strokes", [i for i, stroke in enumerate(p.request.strokes) if stroke[0]]
        out["strokes_total"] = len(p.request.strokes)
    else:
        unit, index = "patches", list(range(found.total))
    out[unit] = [{"index": index[x.index], "drop": x.drop, "label_without": x.label_without} for x in found.parts]
    out["counterfactual"] = found.counterfactual and {
        "remove": [index[i] for i in found.counterfactual[0]],
        "label": found.counterfactual[1],
    }
    return out
