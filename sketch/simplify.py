"""Resampling at 1 unit and Ramer-Douglas-Peucker, compiled with numba.

Both are loops over points that numpy can only express as rounds of whole-array operations (one
round per RDP depth, each costing its fixed overhead), which made them the stroke path's slowest
stage. Compiled, they run the textbook recipe point by point with the very same floating-point
operations, so the output is bit-identical to the numpy version they replaced (checked on every
official raw drawing here) at a fraction of the cost.

The first call compiles them (a second or two); ``cache=True`` keeps the machine code beside this
file (or in ``NUMBA_CACHE_DIR``) for the next process. The API compiles them at start-up.
"""

from __future__ import annotations

import math

import numpy as np

from sketch.compiled import compiled

RDP_EPSILON = 2.0
RESAMPLE_SPACING = 1.0
MAX_RDP_ROUNDS = 40  # see sketch.strokes: the work bound on a pathological drawing


@compiled
def _resample_stroke(
    points: np.ndarray, dist: np.ndarray, a: int, b: int, out: np.ndarray, o: int, scale: float
) -> int:
    """Points ``a:b`` resampled as ``np.interp`` at ``0, 1, ..., ceil(length) - 1`` and the length
    itself (the published recipe; at least both ends, a lone point stays), times ``scale``, written
    from ``out[o]``: returns how many. ``dist``: each point's distance along its stroke."""
    if b - a < 2:
        out[o, 0] = points[a, 0] * scale
        out[o, 1] = points[a, 1] * scale
        return 1
    last = b - 1
    length = dist[last]
    n = _resampled_count(b - a, length)
    j = a  # the knot: the last point at a distance <= q (for an integer q: ceil(dist) <= q)
    for q in range(n):
        while j < last and math.ceil(dist[j + 1]) <= q:
            j += 1
        if j == last:  # np.interp gives the last point itself at the end
            x, y = points[j, 0], points[j, 1]
        else:
            at = length if q == n - 1 else float(q)
            step = dist[j + 1] - dist[j]
            sx = (points[j + 1, 0] - points[j, 0]) / step
            sy = (points[j + 1, 1] - points[j, 1]) / step
            x = sx * (at - dist[j]) + points[j, 0]
            y = sy * (at - dist[j]) + points[j, 1]
        out[o + q, 0] = x * scale if scale != 1.0 else x
        out[o + q, 1] = y * scale if scale != 1.0 else y
    return n


@compiled
def _resampled_count(points_in_stroke: int, length: float) -> int:
    return 1 if points_in_stroke < 2 else max(math.ceil(length) + 1, 2)


@compiled
def _rdp_span(points: np.ndarray, s: int, e: int, keep: np.ndarray, epsilon: float, max_rounds: int) -> None:
    """RDP on ``points[s:e + 1]``: marks the points kept (both ends included). A span splits at its
    first farthest point, as ``np.argmax`` picks; spans deeper than ``max_rounds`` keep their ends."""
    keep[s] = keep[e] = True
    stack = np.empty((max_rounds + 2, 3), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2] = s, e, 0
    top = 1
    while top:
        top -= 1
        lo, hi, depth = stack[top, 0], stack[top, 1], stack[top, 2]
        if hi - lo < 2 or depth >= max_rounds:
            continue
        ax, ay = points[lo, 0], points[lo, 1]
        abx, aby = points[hi, 0] - ax, points[hi, 1] - ay
        norm = math.hypot(abx, aby)
        far, mid = -1.0, lo
        for i in range(lo + 1, hi):
            px, py = points[i, 0] - ax, points[i, 1] - ay
            # Perpendicular distance to the line, or to the start when both ends coincide.
            d = math.hypot(px, py) if norm == 0.0 else abs(abx * py - aby * px) / norm
            if d > far:
                far, mid = d, i
        if far > epsilon:
            keep[mid] = True
            stack[top, 0], stack[top, 1], stack[top, 2] = mid, hi, depth + 1
            stack[top + 1, 0], stack[top + 1, 1], stack[top + 1, 2] = lo, mid, depth + 1
            top += 2


@compiled
def _rdp_keep(points: np.ndarray, counts: np.ndarray, epsilon: float, max_rounds: int) -> np.ndarray:
    keep = np.zeros(len(points), dtype=np.bool_)
    a = 0
    for c in counts:
        if c:
            _rdp_span(points, a, a + c - 1, keep, epsilon, max_rounds)
        a += c
    return keep


@compiled
def _resample(points, counts, scale):
    """Every stroke through ``_resample_stroke``: the points and their number per stroke."""
    dist = np.zeros(len(points))  # along each stroke, summed point by point as np.cumsum does
    n_at = np.zeros(len(counts), dtype=np.int64)
    a = 0
    for i in range(len(counts)):
        for k in range(a + 1, a + counts[i]):
            dist[k] = dist[k - 1] + math.hypot(points[k, 0] - points[k - 1, 0], points[k, 1] - points[k - 1, 1])
        n_at[i] = _resampled_count(counts[i], dist[a + counts[i] - 1])
        a += counts[i]
    dense = np.empty((n_at.sum(), 2))
    a = o = 0
    for i in range(len(counts)):
        _resample_stroke(points, dist, a, a + counts[i], dense, o, scale)
        a += counts[i]
        o += n_at[i]
    return dense, n_at


@compiled
def _resample_rdp(points, counts, scale, epsilon, max_rounds):
    dense, n_at = _resample(points, counts, scale)
    keep = _rdp_keep(dense, n_at, epsilon, max_rounds)
    kept_counts = np.zeros(len(counts), dtype=np.int64)
    o = 0
    for i in range(len(counts)):
        kept_counts[i] = keep[o : o + n_at[i]].sum()
        o += n_at[i]
    return dense[keep], kept_counts


def _arrays(points: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One dtype and layout for every caller, so each function compiles once."""
    return np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2), np.asarray(counts, dtype=np.int64)


def resample_all(points: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every stroke resampled at 1 unit along its length, keeping both ends: the points and their
    number per stroke."""
    return _resample(*_arrays(points, counts), 1.0)


def rdp_keep(points: np.ndarray, counts: np.ndarray, epsilon: float, max_rounds: int = MAX_RDP_ROUNDS) -> np.ndarray:
    """Ramer-Douglas-Peucker on every stroke: the mask of points kept."""
    return _rdp_keep(*_arrays(points, counts), float(epsilon), int(max_rounds))


def resample_rdp(
    points: np.ndarray,
    counts: np.ndarray,
    scale: float = 1.0,
    epsilon: float = RDP_EPSILON,
    max_rounds: int = MAX_RDP_ROUNDS,
) -> tuple[np.ndarray, np.ndarray]:
    """``rdp_keep`` on ``resample_all``'s points, without building both: the points kept and their
    number per stroke. ``scale`` multiplies the resampled points before RDP measures them
    (resampling at ``scale`` units: ``points`` divided by it)."""
    return _resample_rdp(*_arrays(points, counts), float(scale), float(epsilon), int(max_rounds))


def warm_up() -> None:
    """Compile every function now (or load it from the cache) rather than in the first request."""
    square = np.array([[0.0, 0.0], [0.0, 9.0], [9.0, 9.0], [9.0, 0.0]])
    resample_rdp(square, np.array([4]))
    rdp_keep(*resample_all(square, np.array([4])), RDP_EPSILON)
