"""Resampling at 1 unit and Ramer-Douglas-Peucker, over every stroke of a drawing at once.

Both run as rounds of numpy array operations rather than a Python step per point or per span.
``normalize`` (``sketch.strokes``) uses ``resample_rdp``, which never builds most of the resampled
points: a long drawing resamples to ~30,000 points, nearly all of them inside straight runs that
RDP can never keep (see ``resample_rdp``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

# A drawing as plain arrays: one float array of shape (n_points, 2) per stroke.
Strokes = list[np.ndarray]

RDP_EPSILON = 2.0
RESAMPLE_SPACING = 1.0
MAX_RDP_ROUNDS = 40  # see sketch.strokes: the work bound on a pathological drawing
TIE = 1e-9  # distances this close are a tie that only rounding decides
RUNS_FROM = 4_000  # resampled points from which resample_rdp works on run ends (measured: ~1% of drawings)


def _layout(points: np.ndarray, counts: np.ndarray) -> SimpleNamespace:
    """Where each stroke's resampled points (queries) go, before any is computed.

    Stroke by stroke as ``np.interp`` at ``np.arange(0, length, 1)`` plus the length itself (the
    published recipe): queries 0, 1, ..., ceil(length) - 1 and the length; at least both ends of a
    stroke of two points or more, and a lone point stays. Query ``q`` (numbered across strokes)
    lies on the segment after the *knot* ``j``, the last point with ``key[j] <= q``: for an integer
    ``q``, ``dist <= q`` exactly when ``ceil(dist) <= q``.
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
    n_at = np.where(counts < 2, 1, np.maximum(np.ceil(length).astype(np.int64) + 1, 2))
    at_end = np.cumsum(n_at)
    at_start = at_end - n_at
    with np.errstate(invalid="ignore", divide="ignore"):  # undefined only where a knot's point is used as is
        slope = np.empty_like(points)
        slope[:-1] = np.diff(points, axis=0) / np.diff(dist)[:, None]
        slope[-1] = np.nan
    is_last = np.zeros(n, dtype=bool)
    is_last[last] = True
    return SimpleNamespace(
        points=points,
        dist=dist,
        slope=slope,
        n_at=n_at,
        at_start=at_start,
        at_end=at_end,
        key=np.repeat(at_start, counts) + np.ceil(dist).astype(np.int64),
        is_last=is_last,
        stroke=np.repeat(np.arange(len(counts)), counts),  # of each point
        length=length,
    )


def _coords(lay: SimpleNamespace, q: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Resampled points ``q`` (knots ``j``): the same arithmetic for any subset, so bit-identical."""
    s = lay.stroke[j]
    at = (q - lay.at_start[s]).astype(np.float64)
    final = q == lay.at_end[s] - 1
    at[final] = lay.length[s[final]]
    with np.errstate(invalid="ignore"):  # inf * 0 at a knot whose point is used as is, just below
        out = lay.slope[j] * (at - lay.dist[j])[:, None] + lay.points[j]
    # np.interp returns the last point itself at a stroke's end (where the slope is undefined).
    on_last = lay.is_last[j]
    out[on_last] = lay.points[j[on_last]]
    return out


def resample_all(points: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every stroke resampled at 1 unit along its length, keeping both ends: the points and their
    number per stroke."""
    lay = _layout(points, counts)
    return _every_query(lay), lay.n_at


def _every_query(lay: SimpleNamespace) -> np.ndarray:
    """All resampled points: each query's knot is the last point whose key is at most it."""
    q = np.arange(lay.at_end[-1])
    return _coords(lay, q, np.cumsum(np.bincount(lay.key, minlength=len(q))) - 1)


def _distances(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, span: np.ndarray) -> np.ndarray:
    """RDP's distance of each point (``x``, ``y``) to its span's chord ``a[span]``-``b[span]``: perpendicular
    to the line, or to ``a`` when both ends coincide (the textbook formula)."""
    ax, ay = a[:, 0], a[:, 1]
    abx, aby = b[:, 0] - ax, b[:, 1] - ay
    norm = np.hypot(abx, aby)
    flat = norm == 0.0
    px, py = x - ax[span], y - ay[span]
    d = np.abs(abx[span] * py - aby[span] * px) / np.where(flat, 1.0, norm)[span]
    if flat.any():
        on = flat[span]
        d[on] = np.hypot(px[on], py[on])
    return d


def _first_farthest(d: np.ndarray, first: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per span: the largest distance, and the position of its first occurrence."""
    far = np.maximum.reduceat(d, first)
    hits = np.flatnonzero(d == far[span])
    hits = hits[np.concatenate([[True], span[hits[1:]] != span[hits[:-1]]])]
    return far, hits


def _spans(s: np.ndarray, e: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, ...]:
    """The members of ``positions`` (sorted) strictly inside each span: which spans have some, their
    members' indices into ``positions``, the span of each, and each span's first member."""
    lo, hi = np.searchsorted(positions, s, "right"), np.searchsorted(positions, e, "left")
    some = hi > lo
    lo, inner = lo[some], (hi - lo)[some]
    first = np.cumsum(inner) - inner
    span = np.repeat(np.arange(len(lo)), inner)
    idx = np.arange(len(span)) + np.repeat(lo - first, inner)
    return some, idx, span, first


def rdp_keep(points: np.ndarray, counts: np.ndarray, epsilon: float, max_rounds: int = MAX_RDP_ROUNDS) -> np.ndarray:
    """Ramer-Douglas-Peucker over every stroke at once: the mask of points kept.

    RDP's result does not depend on the order in which spans are split, so all spans of one depth,
    in every stroke, are split together: one round of array operations per depth. Each span splits
    at its first farthest point, as ``np.argmax`` would pick. After ``max_rounds`` depths, spans
    still unfinished keep only their ends.
    """
    x, y = np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])
    keep = np.zeros(len(points), dtype=bool)
    e = np.cumsum(counts) - 1
    s = e - counts + 1
    keep[s] = keep[e] = True
    for _ in range(max_rounds):
        wide = e - s >= 2  # spans with a point between their ends
        s, e = s[wide], e[wide]
        if not len(s):
            break
        inner = e - s - 1
        first = np.cumsum(inner) - inner
        span = np.repeat(np.arange(len(s)), inner)
        idx = np.arange(len(span)) + np.repeat(s + 1 - first, inner)
        d = _distances(points[s], points[e], x[idx], y[idx], span)
        far, hits = _first_farthest(d, first, span)
        split = far[span[hits]] > epsilon
        mid, which = idx[hits[split]], span[hits[split]]
        keep[mid] = True
        s, e = np.concatenate([s[which], mid]), np.concatenate([mid, e[which]])
    return keep


def resample_rdp(
    points: np.ndarray,
    counts: np.ndarray,
    scale: float = 1.0,
    epsilon: float = RDP_EPSILON,
    max_rounds: int = MAX_RDP_ROUNDS,
) -> tuple[np.ndarray, np.ndarray]:
    """``rdp_keep`` on ``resample_all``'s points, bit for bit, computing few of them: the points kept
    and their number per stroke. ``scale`` multiplies the resampled points before RDP measures them
    (resampling at ``scale`` units: ``points`` divided by it).

    The resampled points after one knot lie on one straight segment (a *run*). A distance to a line,
    or to a point, is convex along a line, so the farthest point of a run from any chord is one of
    its two ends: RDP only needs the run ends, a tenth of the points of a long drawing. The one
    exception is a run parallel to a chord at the farthest distance: its points tie, and rounding
    picks among them; such a span (rare) is measured over all its points.
    """
    lay = _layout(points, counts)
    if lay.at_end[-1] < RUNS_FROM:
        # A typical drawing: fewer array operations to take every resampled point.
        dense = _every_query(lay)
        dense = dense * scale if scale != 1.0 else dense
        keep = rdp_keep(dense, lay.n_at, epsilon, max_rounds)
        return dense[keep], np.add.reduceat(keep, lay.at_start)
    # Runs: the queries of knot j are key[j] .. key[j + 1] - 1 (a stroke's last point: to its end).
    hi = np.where(lay.is_last, lay.at_end[lay.stroke] - 1, np.append(lay.key[1:], 0) - 1)
    real = lay.key <= hi
    run_lo, run_knot = lay.key[real], np.flatnonzero(real)
    ends = np.unique(np.concatenate([run_lo, hi[real]]))

    def at(q: np.ndarray) -> np.ndarray:
        out = _coords(lay, q, run_knot[np.searchsorted(run_lo, q, "right") - 1])
        return out * scale if scale != 1.0 else out

    end_run = np.searchsorted(run_lo, ends, "right") - 1
    end_xy = at(ends)
    end_x, end_y = np.ascontiguousarray(end_xy[:, 0]), np.ascontiguousarray(end_xy[:, 1])
    s, e = lay.at_start, lay.at_end - 1  # queries, and their points a, b
    a, b = at(s), at(e)
    kept = [s, e]
    for _ in range(max_rounds):
        wide = e - s >= 2
        s, e, a, b = s[wide], e[wide], a[wide], b[wide]
        # A span with no run end inside lies on one run: all its points are on the chord.
        some, idx, span, first = _spans(s, e, ends)
        s, e, a, b = s[some], e[some], a[some], b[some]
        if not len(s):
            break
        d = _distances(a, b, end_x[idx], end_y[idx], span)
        far, hits = _first_farthest(d, first, span)
        mid, mid_xy = ends[idx[hits]], end_xy[idx[hits]]
        # Two ends of one run, both at the farthest distance: measure the spans they are in in full.
        d0, d1 = d[:-1], d[1:]
        tie = (np.abs(d1 - d0) <= TIE) & (np.minimum(d0, d1) >= far[span[1:]] - TIE)
        tie &= (span[1:] == span[:-1]) & (end_run[idx[1:]] == end_run[idx[:-1]])
        tie &= ends[idx[1:]] - ends[idx[:-1]] >= 2
        for t in sorted(set(span[1:][tie].tolist())):
            every = np.arange(s[t] + 1, e[t])
            xy = at(every)
            full = _distances(a[t : t + 1], b[t : t + 1], xy[:, 0], xy[:, 1], np.zeros(len(every), dtype=np.int64))
            far[t], mid[t], mid_xy[t] = full.max(), every[np.argmax(full)], xy[np.argmax(full)]
        split = far > epsilon
        kept.append(mid[split])
        s, e = np.concatenate([s[split], mid[split]]), np.concatenate([mid[split], e[split]])
        a, b = np.concatenate([a[split], mid_xy[split]]), np.concatenate([mid_xy[split], b[split]])
    q = np.unique(np.concatenate(kept))
    return at(q), np.bincount(np.searchsorted(lay.at_start, q, "right") - 1, minlength=len(counts))
