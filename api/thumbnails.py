"""Small PNG pictures of stored drawings for the gallery, drawn from their simplified strokes.

The geometry is the dataset's (``sketch.raster``: centred on the extent in the 256 box, line
diameter 16 and padding 16 in 256-space), so a thumbnail shows what the CNN saw, dark ink on white.
PIL draws the lines, supersampled for antialiasing. Its cost is the ink it fills (stroke length x
line width, plus a round join per point), so the canvas is chosen to keep that under a budget: an
ordinary drawing gets full supersampling, a pathological one (thousands of page-wide zigzags) is
drawn smaller and scaled up, blurred but cheap.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from sketch.raster import LINE_DIAMETER, ORIGINAL_SIDE, PADDING

MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 28, 256, 112
_BOX = ORIGINAL_SIDE + 2 * PADDING + LINE_DIAMETER
_MARGIN = PADDING + LINE_DIAMETER / 2
_MAX_CANVAS = 512
# Pixels of ink PIL may fill for one thumbnail (a few tens of milliseconds).
INK_BUDGET = 500_000


def canvas_side(strokes: list[np.ndarray], size: int) -> int:
    """The side to draw at: supersampled up to 512 px, less when the ink would exceed the budget."""
    length = sum(float(np.hypot(*np.diff(s, axis=0).T).sum()) for s in strokes)
    n_points = sum(len(s) for s in strokes)
    # Ink at scale k (canvas px per 256-space unit): (length * 16 + points * 16^2) * k^2.
    ink_per_scale2 = length * LINE_DIAMETER + n_points * LINE_DIAMETER**2
    affordable = int(math.sqrt(INK_BUDGET / ink_per_scale2) * _BOX) if ink_per_scale2 else _MAX_CANVAS
    return max(MIN_SIZE, min(size * max(1, _MAX_CANVAS // size), affordable))


def render_png(simplified: list[list[list[int]]], size: int = DEFAULT_SIZE) -> bytes:
    """``simplified``: ``[[[x...], [y...]], ...]`` in 0-255 (as stored). Returns PNG bytes, size x size."""
    strokes = [np.asarray(s, dtype=float).T for s in simplified if len(s[0])]
    side = canvas_side(strokes, size)
    scale = side / _BOX
    width = max(1, round(LINE_DIAMETER * scale))
    # Centre on the extent as Google did: offset = (256 - max) / 2, plus the margin.
    top_left = (ORIGINAL_SIDE - np.concatenate(strokes).max(axis=0)) / 2 + _MARGIN if strokes else 0
    image = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(image)
    r = width / 2
    for stroke in strokes:
        points = [(float(x), float(y)) for x, y in (stroke + top_left) * scale]
        if len(points) > 1:
            # Round joins only where they show (they cost a pie slice per point).
            draw.line(points, fill=0, width=width, joint="curve" if width > 2 else None)
        for x, y in (points[0], points[-1]):  # round caps (and a lone dot)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    if side != size:
        image = image.resize((size, size), Image.Resampling.BOX if side > size else Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
