"""Render strokes to a 28x28 bitmap exactly as Google rendered the ``numpy_bitmap`` set.

Google's renderer (cairo, published in the quickdraw-dataset issues) draws the simplified
strokes in a 256 box centred on the drawing's extent, with a line diameter of 16 and a padding
of 16 (both in 256-space), round caps and joins, antialiased, white on black, then keeps one
channel as uint8. Here each pixel's ink is the exact fraction of its sub-samples that lie within
half a line width of a segment (a union of capsules = round caps and joins); strokes are
composited one over the other like cairo's successive ``stroke()`` calls.
"""

from __future__ import annotations

import numpy as np

from sketch.strokes import Strokes, normalize

SIDE = 28
ORIGINAL_SIDE = 256.0
LINE_DIAMETER = 16.0
PADDING = 16.0
SUPERSAMPLE = 4  # sub-samples per pixel side: 16 per pixel, within 1 grey level of finer grids on average

_TOTAL_PADDING = 2 * PADDING + LINE_DIAMETER
_SCALE = SIDE / (ORIGINAL_SIDE + _TOTAL_PADDING)
_RADIUS = LINE_DIAMETER / 2 * _SCALE  # in output pixels


def _subsample_grid(side: int, k: int) -> np.ndarray:
    """Centres of the k*k sub-samples of every pixel, shape (side*k, side*k, 2) as (x, y)."""
    c = (np.arange(side * k) + 0.5) / k
    xx, yy = np.meshgrid(c, c)
    return np.stack([xx, yy], axis=-1)


_GRID = _subsample_grid(SIDE, SUPERSAMPLE)


def _stroke_coverage(pts: np.ndarray, radius: float, grid: np.ndarray, k: int) -> np.ndarray:
    """Fraction of each pixel covered by the union of capsules along one polyline."""
    side = grid.shape[0] // k
    cover = np.zeros(grid.shape[:2], dtype=bool)
    # Only the sub-samples near the stroke can be inked: work in its bounding box.
    lo = np.floor((pts.min(axis=0) - radius) * k).astype(int).clip(0, side * k)
    hi = np.ceil((pts.max(axis=0) + radius) * k).astype(int).clip(0, side * k)
    if (hi <= lo).any():
        return np.zeros((side, side))
    window = grid[lo[1] : hi[1], lo[0] : hi[0]].reshape(-1, 2)
    a = pts[:-1] if len(pts) > 1 else pts
    b = pts[1:] if len(pts) > 1 else pts
    ab = b - a
    len2 = (ab**2).sum(axis=1)
    # Project every sub-sample on every segment, clamp to the segment, measure the distance.
    ap = window[:, None, :] - a[None, :, :]
    t = np.where(len2 > 0, (ap * ab).sum(axis=2) / np.where(len2 > 0, len2, 1.0), 0.0).clip(0.0, 1.0)
    d2 = ((ap - t[..., None] * ab) ** 2).sum(axis=2).min(axis=1)
    cover[lo[1] : hi[1], lo[0] : hi[0]] = (d2 <= radius * radius).reshape(hi[1] - lo[1], hi[0] - lo[0])
    return cover.reshape(side, k, side, k).mean(axis=(1, 3))


def render_simplified(strokes: Strokes, side: int = SIDE) -> np.ndarray:
    """Rasterise strokes already in the simplified 0-255 space; uint8 (side, side), ink 255."""
    scale = side / (ORIGINAL_SIDE + _TOTAL_PADDING)
    radius = LINE_DIAMETER / 2 * scale
    grid = _GRID if side == SIDE else _subsample_grid(side, SUPERSAMPLE)
    # Centre on the extent as Google did: offset = (256 - max) / 2 (the simplified minimum is 0).
    bbox_max = np.concatenate(strokes).max(axis=0)
    offset = (ORIGINAL_SIDE - bbox_max) / 2 + _TOTAL_PADDING / 2
    blank = np.ones((side, side))
    for s in strokes:
        cov = _stroke_coverage((s + offset) * scale, radius, grid, SUPERSAMPLE)
        blank *= 1.0 - cov  # cairo OVER: each stroke covers what is left
    return np.round((1.0 - blank) * 255).astype(np.uint8)


def strokes_to_bitmap(strokes: Strokes) -> np.ndarray:
    """Any-space strokes -> the 28x28 uint8 bitmap the dataset would hold for them."""
    return render_simplified(normalize(strokes))
