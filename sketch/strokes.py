"""Stroke validation and normalisation, as Google made the *simplified* Quick, Draw! set.

A drawing arrives as a list of strokes; a stroke is ``[[x...], [y...]]`` (raw data adds
``[t...]``) in any coordinate space. ``parse_strokes`` checks it and makes it a ``Drawing``;
``normalize`` reproduces the dataset's simplification:
align to the top-left, scale uniformly so the longer side spans 0-255, resample at
1 px and simplify with Ramer-Douglas-Peucker (epsilon 2.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sketch.drawing import Drawing, kept_strokes
from sketch.simplify import RDP_EPSILON, RESAMPLE_SPACING, rdp_keep, resample_all, resample_rdp

SIMPLIFIED_SIDE = 255.0
# Work bounds. The official drawings here (44,291) resample to at most 35,929 points and need at
# most 31 RDP rounds (sketch.simplify.MAX_RDP_ROUNDS is 40); past these bounds (only a pathological
# drawing, e.g. 20,000 points zigzagging across the box), the resample spacing grows and RDP stops
# splitting, so such a drawing is still answered, with a coarser simplification, at a bounded cost
# instead of minutes of CPU.
MAX_RESAMPLED_POINTS = 40_000


class EmptyDrawingError(ValueError):
    """The drawing has no points: there is nothing to recognise."""


def parse_strokes(drawing: Sequence, max_strokes: int | None = None, max_points: int | None = None) -> Drawing:
    """Turn dataset-form strokes into a ``Drawing``, checking every rule (strokes without a point are left out).

    Raises ``ValueError`` naming the stroke at fault; ``EmptyDrawingError`` when no point is left.
    """
    if not isinstance(drawing, (list, tuple)):
        raise ValueError("strokes must be a list of strokes [[x...], [y...]]")
    if max_strokes is not None and len(drawing) > max_strokes:
        raise ValueError(f"too many strokes: {len(drawing)} > {max_strokes}")
    strokes: list[np.ndarray] = []
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
    return Drawing.from_strokes(strokes)


def _scaled(points: np.ndarray) -> np.ndarray:
    """All points top-left aligned with the longer side spanning 0-255, for any finite coordinates.

    Extents past float64's range (e.g. -1e308 to 1e308) are measured at half scale, and extents so
    small that ``255 / extent`` overflows (subnormals) are divided through: both give the drawing
    that the arithmetic without limits would, instead of infinities and NaNs.
    """
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


def _path(points: np.ndarray, counts: np.ndarray) -> float:
    """The length of the pen's path along the strokes (not the jumps between them)."""
    steps = np.hypot(*np.diff(points, axis=0).T)
    steps[np.cumsum(counts)[:-1] - 1] = 0.0  # the jump between two strokes is not drawn
    return float(steps.sum())


def pen_path(drawing: Drawing) -> float:
    """The pen path of a drawing scaled as ``normalize`` scales it (longer side 0-255): what
    normalising resamples and rendering strokes, so what both cost."""
    return _path(_scaled(drawing.points), drawing.counts) if len(drawing.points) else 0.0


def _spacing(points: np.ndarray, counts: np.ndarray) -> float:
    """1 unit, or wider when the pen path is so long that 1-unit steps would pass MAX_RESAMPLED_POINTS."""
    return max(RESAMPLE_SPACING, (_path(points, counts) + len(counts)) / MAX_RESAMPLED_POINTS)


def normalize(drawing: Drawing) -> Drawing:
    """Dataset-style simplified strokes: top-left aligned, longer side 0-255, 1 px resample, RDP 2.0.

    Coordinates are rounded to integers as in the published files (held as floats).
    Any finite input gives a drawing; ``EmptyDrawingError`` when there is no point.
    """
    if not len(drawing.points):
        raise EmptyDrawingError("empty drawing: no points")
    scaled = _scaled(drawing.points)
    spacing = _spacing(scaled, drawing.counts)
    kept, kept_counts = resample_rdp(
        scaled / spacing if spacing != RESAMPLE_SPACING else scaled, drawing.counts, spacing
    )
    return Drawing(np.clip(np.round(kept), 0, SIMPLIFIED_SIDE), kept_counts)


@dataclass(frozen=True)
class Without:
    """A drawing normalised without each of some removals, each variant made when asked for: those
    that are the whole drawing's normalised strokes less the removed ones cost an index (a bitmap
    reader gets theirs composited from ``whole``: ``sketch.raster.composited_without``); the others
    are normalised again."""

    drawing: Drawing  # as parsed
    removals: Sequence[Sequence[int]]
    whole: Drawing  # the whole drawing, normalised
    keeps: np.ndarray  # bool (removals, strokes): which strokes each removal keeps
    from_whole: list[bool]  # per removal: ``whole`` less the removed strokes

    @property
    def left(self) -> list[bool]:
        """Per removal: whether a stroke is left."""
        return self.keeps.any(axis=1).tolist()

    def variant(self, row: int) -> Drawing | None:
        """The drawing normalised without removal ``row``; None where no stroke is left."""
        keep = self.keeps[row]
        if self.from_whole[row]:
            return Drawing(self.whole.points[np.repeat(keep, self.whole.counts)], self.whole.counts[keep])
        return normalize(self.drawing.without(self.removals[row])) if keep.any() else None

    @property
    def variants(self) -> list[Drawing | None]:
        return [self.variant(row) for row in range(len(self.keeps))]


def normalize_without(drawing: Drawing, removals: Sequence[Sequence[int]], whole: Drawing | None = None) -> Without:
    """``normalize(drawing.without(r))`` for each removal ``r``, to the last bit (``whole``: the
    drawing normalised, when it already is).

    Resampling and simplifying work stroke by stroke, so a stroke's normalised form depends on the
    rest of the drawing only through the scaling. Leaving strokes out that hold neither the
    top-left corner nor the longer side's extent changes no scaling: the rest keep the form they
    have in the whole drawing, and only the removals that move the frame are normalised afresh.
    """
    whole = normalize(drawing) if whole is None else whole
    starts = drawing.starts
    lows, highs = np.minimum.reduceat(drawing.points, starts), np.maximum.reduceat(drawing.points, starts)
    lo = lows.min(axis=0)
    extent = float((highs.max(axis=0) - lo).max())
    # Past these, _scaled and _spacing take their other branches: no shared work then.
    shared = 0.0 < extent < np.inf and _spacing(_scaled(drawing.points), drawing.counts) == RESAMPLE_SPACING
    keeps = kept_strokes(len(drawing), removals)
    # The frame of each variant, all at once: its strokes' lowest corner and longest side.
    kept = keeps[:, :, None]
    corner = np.where(kept, lows[None], np.inf).min(axis=1)
    side = (np.where(kept, highs[None], -np.inf).max(axis=1) - lo).max(axis=1)
    same = keeps.any(axis=1) & shared & (corner == lo).all(axis=1) & (side == extent)
    return Without(drawing, removals, whole, keeps, same.tolist())


def resample(points: np.ndarray, spacing: float = RESAMPLE_SPACING) -> np.ndarray:
    """Points every ``spacing`` units along the polyline, keeping both ends."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        return points
    out, _ = resample_all(points / spacing, np.array([len(points)]))
    return out * spacing


def rdp(points: np.ndarray, epsilon: float = RDP_EPSILON) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one polyline."""
    if len(points) < 3:
        return points
    return points[rdp_keep(points, np.array([len(points)]), epsilon)]


def rdp_strokes(drawing: Drawing, epsilon: float = RDP_EPSILON) -> Drawing:
    """``rdp`` on every stroke of a drawing, in one pass."""
    keep = rdp_keep(drawing.points, drawing.counts, epsilon)
    return Drawing(drawing.points[keep], np.add.reduceat(keep, drawing.starts))


def to_dataset_format(drawing: Drawing) -> list[list[list[int]]]:
    """A drawing back in the dataset's JSON form ``[[[x...], [y...]], ...]`` with integer coordinates."""
    xy = drawing.points.round().astype(int)
    return [[s[:, 0].tolist(), s[:, 1].tolist()] for s in drawing.split(xy)]


def from_dataset_format(simplified: Sequence) -> Drawing:
    """A drawing stored in the dataset's JSON form (trusted: written by ``to_dataset_format`` or Google)."""
    return Drawing.from_strokes(np.asarray(stroke[:2], dtype=np.float64).T for stroke in simplified)
