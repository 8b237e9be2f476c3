"""Stroke validation and normalisation, as Google made the *simplified* Quick, Draw! set.

A drawing is a list of strokes; a stroke is ``[[x...], [y...]]`` (raw data adds ``[t...]``)
in any coordinate space. ``normalize`` reproduces the dataset's simplification:
align to the top-left, scale uniformly so the longer side spans 0-255, resample at
1 px and simplify with Ramer-Douglas-Peucker (epsilon 2.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A drawing as plain arrays: one float array of shape (n_points, 2) per stroke.
Strokes = list[np.ndarray]

SIMPLIFIED_SIDE = 255.0
RDP_EPSILON = 2.0
RESAMPLE_SPACING = 1.0


class EmptyDrawingError(ValueError):
    """The drawing has no points: there is nothing to recognise."""


def parse_strokes(drawing: Sequence, max_strokes: int | None = None, max_points: int | None = None) -> Strokes:
    """Turn dataset-form strokes into ``(n, 2)`` float arrays, checking every rule.

    Raises ``ValueError`` naming the stroke at fault; ``EmptyDrawingError`` when no point is left.
    """
    if not isinstance(drawing, (list, tuple)):
        raise ValueError("strokes must be a list of strokes [[x...], [y...]]")
    if max_strokes is not None and len(drawing) > max_strokes:
        raise ValueError(f"too many strokes: {len(drawing)} > {max_strokes}")
    strokes: Strokes = []
    total = 0
    for i, stroke in enumerate(drawing):
        if not isinstance(stroke, (list, tuple)) or len(stroke) not in (2, 3):
            raise ValueError(f"stroke {i} must be [[x...], [y...]] or [[x...], [y...], [t...]]")
        lengths = {len(axis) if isinstance(axis, (list, tuple)) else -1 for axis in stroke}
        if -1 in lengths:
            raise ValueError(f"stroke {i}: each of x, y (and t) must be a list of numbers")
        if len(lengths) != 1:
            raise ValueError(f"stroke {i}: x, y (and t) have different lengths {[len(a) for a in stroke]}")
        try:
            xy = np.asarray(stroke[:2], dtype=np.float64).T
        except (TypeError, ValueError):
            raise ValueError(f"stroke {i}: coordinates must be numbers") from None
        if not np.isfinite(xy).all():
            raise ValueError(f"stroke {i}: coordinates must be finite (no NaN or infinity)")
        total += len(xy)
        if max_points is not None and total > max_points:
            raise ValueError(f"too many points: more than {max_points}")
        if len(xy):
            strokes.append(xy.reshape(-1, 2))
    if not strokes:
        raise EmptyDrawingError("empty drawing: no points")
    return strokes


def resample(points: np.ndarray, spacing: float = RESAMPLE_SPACING) -> np.ndarray:
    """Points every ``spacing`` units along the polyline, keeping both ends."""
    if len(points) < 2:
        return points
    seg = np.hypot(*np.diff(points, axis=0).T)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    if dist[-1] <= spacing:
        return points[[0, -1]]
    at = np.append(np.arange(0.0, dist[-1], spacing), dist[-1])
    return np.column_stack([np.interp(at, dist, points[:, 0]), np.interp(at, dist, points[:, 1])])


def rdp(points: np.ndarray, epsilon: float = RDP_EPSILON) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification (iterative, so long strokes cannot overflow the stack)."""
    n = len(points)
    if n < 3:
        return points
    keep = np.zeros(n, dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, n - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        a, b = points[start], points[end]
        inner = points[start + 1 : end]
        ab = b - a
        norm = np.hypot(*ab)
        if norm == 0.0:
            dists = np.hypot(*(inner - a).T)
        else:
            dists = np.abs(ab[0] * (inner[:, 1] - a[1]) - ab[1] * (inner[:, 0] - a[0])) / norm
        i = int(np.argmax(dists))
        if dists[i] > epsilon:
            mid = start + 1 + i
            keep[mid] = True
            stack += [(start, mid), (mid, end)]
    return points[keep]


def normalize(strokes: Strokes) -> Strokes:
    """Dataset-style simplified strokes: top-left aligned, longer side 0-255, 1 px resample, RDP 2.0.

    Coordinates are rounded to integers as in the published files (returned as float arrays).
    """
    allpts = np.concatenate(strokes)
    lo = allpts.min(axis=0)
    extent = float((allpts.max(axis=0) - lo).max())
    # Uniform scale: a tall drawing stays tall. A single dot has no extent and stays at 0.
    scale = SIMPLIFIED_SIDE / extent if extent > 0 else 1.0
    out: Strokes = []
    for s in strokes:
        s = (s - lo) * scale
        s = rdp(resample(s))
        out.append(np.clip(np.round(s), 0, SIMPLIFIED_SIDE))
    return out


def to_dataset_format(strokes: Strokes) -> list[list[list[int]]]:
    """Strokes back to the dataset's JSON form ``[[[x...], [y...]], ...]`` with integer coordinates."""
    return [[s[:, 0].round().astype(int).tolist(), s[:, 1].round().astype(int).tolist()] for s in strokes]
