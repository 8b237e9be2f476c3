"""Render strokes to a 28x28 bitmap exactly as Google rendered the ``numpy_bitmap`` set.

Google's renderer (cairo, published in the quickdraw-dataset issues) draws the simplified
strokes in a 256 box centred on the drawing's extent, with a line diameter of 16 and a padding
of 16 (both in 256-space), round caps and joins, antialiased, white on black, then keeps one
channel as uint8. Here each pixel's ink comes from its centre's distance ``d`` to the stroke (a
union of capsules = round caps and joins): coverage = clip(radius + 0.5 - d, 0, 1), which is the
exact area for a straight edge and within a grey level or two of cairo elsewhere. Strokes are
composited one over the other like cairo's successive ``stroke()`` calls.
"""

from __future__ import annotations

import numpy as np

from sketch.strokes import Strokes, normalize

SIDE = 28
ORIGINAL_SIDE = 256.0
LINE_DIAMETER = 16.0
PADDING = 16.0
_TOTAL_PADDING = 2 * PADDING + LINE_DIAMETER


def _pixel_centres(side: int) -> np.ndarray:
    c = np.arange(side) + 0.5
    xx, yy = np.meshgrid(c, c)
    return np.column_stack([xx.ravel(), yy.ravel()])


_CENTRES = _pixel_centres(SIDE)


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance from each point (n, 2) to the nearest segment of a polyline (m, 2); a lone point is a dot."""
    a = line[:-1] if len(line) > 1 else line
    ab = (line[1:] if len(line) > 1 else line) - a
    len2 = (ab**2).sum(axis=1)
    ap = points[:, None, :] - a[None, :, :]
    # Position of the closest point along each segment, clamped to its ends (0 for a zero-length one).
    t = ((ap * ab).sum(axis=2) / np.where(len2 > 0, len2, 1.0)).clip(0.0, 1.0)
    return np.sqrt(((ap - t[..., None] * ab) ** 2).sum(axis=2).min(axis=1))


def render_simplified(strokes: Strokes, side: int = SIDE) -> np.ndarray:
    """Rasterise strokes already in the simplified 0-255 space; uint8 (side, side), ink 255."""
    scale = side / (ORIGINAL_SIDE + _TOTAL_PADDING)
    radius = LINE_DIAMETER / 2 * scale
    centres = _CENTRES if side == SIDE else _pixel_centres(side)
    # Centre on the extent as Google did: offset = (256 - max) / 2 (the simplified minimum is 0).
    bbox_max = np.concatenate(strokes).max(axis=0)
    offset = (ORIGINAL_SIDE - bbox_max) / 2 + _TOTAL_PADDING / 2
    blank = np.ones(side * side)
    for s in strokes:
        coverage = (radius + 0.5 - _distance_to_polyline(centres, (s + offset) * scale)).clip(0.0, 1.0)
        blank *= 1.0 - coverage  # cairo OVER: each stroke covers what is left
    return np.round((1.0 - blank) * 255).astype(np.uint8).reshape(side, side)


def strokes_to_bitmap(strokes: Strokes) -> np.ndarray:
    """Any-space strokes -> the 28x28 uint8 bitmap the dataset would hold for them."""
    return render_simplified(normalize(strokes))
