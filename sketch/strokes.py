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
# Work bounds. The official drawings here (44,291) resample to at most 35,929 points and need at
# most 31 RDP rounds; past these bounds (only a pathological drawing, e.g. 20,000 points zigzagging
# across the box), the resample spacing grows and RDP stops splitting, so such a drawing is still
# answered, with a coarser simplification, at a bounded cost instead of minutes of CPU.
MAX_RESAMPLED_POINTS = 40_000
MAX_RDP_ROUNDS = 40


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
        except OverflowError:  # an integer literal past float64's range
            raise ValueError(f"stroke {i}: a coordinate is too large (beyond ±1.8e308)") from None
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


def _scaled(strokes: Strokes) -> np.ndarray:
    """All points top-left aligned with the longer side spanning 0-255, for any finite coordinates.

    Extents past float64's range (e.g. -1e308 to 1e308) are measured at half scale, and extents so
    small that ``255 / extent`` overflows (subnormals) are divided through: both give the drawing
    that the arithmetic without limits would, instead of infinities and NaNs.
    """
    points = np.concatenate(strokes)
    lo = points.min(axis=0)
    with np.errstate(over="ignore"):  # an infinite extent is handled just below
        extent = float((points.max(axis=0) - lo).max())
    if extent == 0.0:
        return points - lo  # a single dot has no extent and stays at 0
    if not np.isfinite(extent):  # the range overflows: halving is exact at this magnitude
        points, lo = points * 0.5, lo * 0.5
        extent = float((points.max(axis=0) - lo).max())
    scale = SIMPLIFIED_SIDE / extent
    if np.isfinite(scale):
        return (points - lo) * scale
    return (points - lo) / extent * SIMPLIFIED_SIDE


def _resample_all(points: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every stroke resampled at 1 unit along its length, keeping both ends, all strokes at once.

    Bit for bit what ``np.interp`` gives stroke by stroke at ``np.arange(0, length, 1)`` plus the
    length itself (the published recipe): the same formula per query, with each query's knot found
    by integer counting instead of a search per stroke (``dist <= q`` for an integer ``q`` exactly
    when ``ceil(dist) <= q``). Returns the points and the number of points of each stroke.
    """
    n = len(points)
    ends = np.cumsum(counts)
    starts = ends - counts
    last = ends - 1
    seg = np.hypot(*np.diff(points, axis=0).T)
    # Distance along each stroke, summed stroke by stroke so that it rounds exactly as it always did.
    dist = np.zeros(n)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if b - a > 1:
            np.cumsum(seg[a : b - 1], out=dist[a + 1 : b])
    length = dist[last]
    # Queries 0, 1, ..., ceil(length) - 1 and the length itself; at least both ends of a stroke of two
    # points or more (a stroke no longer than one unit keeps just its ends), a lone point stays.
    n_at = np.where(counts < 2, 1, np.maximum(np.ceil(length).astype(np.int64) + 1, 2))
    at_end = np.cumsum(n_at)
    at_start = at_end - n_at
    at = (np.arange(at_end[-1]) - np.repeat(at_start, n_at)).astype(np.float64)
    at[at_end - 1] = length
    # The knot of query i is the last point with key <= i: keys (at_start + ceil(dist)) are sorted.
    key = np.repeat(at_start, counts) + np.ceil(dist).astype(np.int64)
    j = np.cumsum(np.bincount(key, minlength=len(at))) - 1
    nxt = np.minimum(j + 1, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):  # undefined only where replaced just below
        slope = (points[nxt] - points[j]) / (dist[nxt] - dist[j])[:, None]
        out = slope * (at - dist[j])[:, None] + points[j]
    # np.interp returns the last point itself at a stroke's end (where the slope above is undefined).
    at_last = j == np.repeat(last, n_at)
    out[at_last] = points[j[at_last]]
    return out, n_at


def _rdp_keep(points: np.ndarray, counts: np.ndarray, epsilon: float, max_rounds: int = MAX_RDP_ROUNDS) -> np.ndarray:
    """Ramer-Douglas-Peucker over every stroke at once: the mask of points kept.

    RDP's result does not depend on the order in which spans are split, so all spans of one depth,
    in every stroke, are split together: one round of array operations per depth instead of a Python
    step per span. Distances use the textbook formula (perpendicular distance to the span's line, or
    to its start when both ends coincide), and each span splits at its first farthest point, as
    ``np.argmax`` would pick. After ``max_rounds`` depths, spans still unfinished keep only their ends.
    """
    x, y = np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])
    keep = np.zeros(len(points), dtype=bool)
    e = np.cumsum(counts) - 1
    s = e - counts + 1
    keep[s] = True
    keep[e] = True
    for _ in range(max_rounds):
        wide = e - s >= 2  # spans with a point between their ends
        s, e = s[wide], e[wide]
        if not len(s):
            return keep
        inner = e - s - 1
        first = np.cumsum(inner) - inner
        span = np.repeat(np.arange(len(s)), inner)
        idx = np.arange(len(span)) + np.repeat(s + 1 - first, inner)
        ax, ay = x[s], y[s]
        abx, aby = x[e] - ax, y[e] - ay
        norm = np.hypot(abx, aby)
        flat = norm == 0.0
        px, py = x[idx] - ax[span], y[idx] - ay[span]
        d = np.abs(abx[span] * py - aby[span] * px) / np.where(flat, 1.0, norm)[span]
        if flat.any():
            on = flat[span]
            d[on] = np.hypot(px[on], py[on])
        far = np.maximum.reduceat(d, first)
        split = far > epsilon
        hits = np.flatnonzero((d == far[span]) & split[span])
        if len(hits):
            hits = hits[np.concatenate([[True], span[hits[1:]] != span[hits[:-1]]])]
        mid, which = idx[hits], span[hits]
        keep[mid] = True
        s, e = np.concatenate([s[which], mid]), np.concatenate([mid, e[which]])
    return keep


def _split(points: np.ndarray, counts: np.ndarray) -> Strokes:
    ends = np.cumsum(counts).tolist()
    return [points[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def resample(points: np.ndarray, spacing: float = RESAMPLE_SPACING) -> np.ndarray:
    """Points every ``spacing`` units along the polyline, keeping both ends."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        return points
    out, _ = _resample_all(points / spacing, np.array([len(points)]))
    return out * spacing


def rdp(points: np.ndarray, epsilon: float = RDP_EPSILON) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one polyline."""
    if len(points) < 3:
        return points
    return points[_rdp_keep(points, np.array([len(points)]), epsilon)]


def rdp_strokes(strokes: Strokes, epsilon: float = RDP_EPSILON) -> Strokes:
    """``rdp`` on every stroke of a drawing, in one pass."""
    counts = np.array([len(s) for s in strokes])
    points = np.concatenate(strokes)
    keep = _rdp_keep(points, counts, epsilon)
    return _split(points[keep], np.add.reduceat(keep, np.cumsum(counts) - counts))


def _spacing(points: np.ndarray, counts: np.ndarray) -> float:
    """1 unit, or wider when the pen path is so long that 1-unit steps would pass MAX_RESAMPLED_POINTS."""
    steps = np.hypot(*np.diff(points, axis=0).T)
    steps[np.cumsum(counts)[:-1] - 1] = 0.0  # the jump between two strokes is not drawn
    length = float(steps.sum()) + len(counts)
    return max(RESAMPLE_SPACING, length / MAX_RESAMPLED_POINTS)


def normalize(strokes: Strokes) -> Strokes:
    """Dataset-style simplified strokes: top-left aligned, longer side 0-255, 1 px resample, RDP 2.0.

    Coordinates are rounded to integers as in the published files (returned as float arrays).
    Any finite input gives a drawing; ``EmptyDrawingError`` when there is no point.
    """
    strokes = [s for s in strokes if len(s)]
    if not strokes:
        raise EmptyDrawingError("empty drawing: no points")
    counts = np.array([len(s) for s in strokes])
    scaled = _scaled(strokes)
    spacing = _spacing(scaled, counts)
    if spacing == RESAMPLE_SPACING:
        dense, dense_counts = _resample_all(scaled, counts)  # RESAMPLE_SPACING is 1 unit
    else:
        dense, dense_counts = _resample_all(scaled / spacing, counts)
        dense *= spacing
    keep = _rdp_keep(dense, dense_counts, RDP_EPSILON)
    kept = np.add.reduceat(keep, np.cumsum(dense_counts) - dense_counts)
    return _split(np.clip(np.round(dense[keep]), 0, SIMPLIFIED_SIDE), kept)


def to_dataset_format(strokes: Strokes) -> list[list[list[int]]]:
    """Strokes back to the dataset's JSON form ``[[[x...], [y...]], ...]`` with integer coordinates."""
    return [[s[:, 0].round().astype(int).tolist(), s[:, 1].round().astype(int).tolist()] for s in strokes]
