"""Small PNG pictures of stored drawings for the gallery, drawn from their simplified strokes.

The geometry is the dataset's (``sketch.raster``: centred on the extent in the 256 box, line
diameter 16 and padding 16 in 256-space), so a thumbnail shows what the CNN saw, dark ink on white.
PIL draws the lines (cost grows with the points, not points x pixels), at 4x then downsampled
for antialiasing.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from sketch.raster import LINE_DIAMETER, ORIGINAL_SIDE, PADDING

MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 28, 256, 112
_SUPERSAMPLE = 4
_BOX = ORIGINAL_SIDE + 2 * PADDING + LINE_DIAMETER
_MARGIN = PADDING + LINE_DIAMETER / 2


def render_png(simplified: list[list[list[int]]], size: int = DEFAULT_SIZE) -> bytes:
    """``simplified``: ``[[[x...], [y...]], ...]`` in 0-255 (as stored). Returns PNG bytes, size x size."""
    side = size * _SUPERSAMPLE
    scale = side / _BOX
    width = max(1, round(LINE_DIAMETER * scale))
    xs = [x for s in simplified for x in s[0]]
    ys = [y for s in simplified for y in s[1]]
    # Centre on the extent as Google did: offset = (256 - max) / 2, plus half the padding.
    dx = (ORIGINAL_SIDE - max(xs, default=0)) / 2 + _MARGIN
    dy = (ORIGINAL_SIDE - max(ys, default=0)) / 2 + _MARGIN
    image = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(image)
    r = width / 2
    for stroke in simplified:
        points = [((x + dx) * scale, (y + dy) * scale) for x, y in zip(stroke[0], stroke[1], strict=False)]
        if len(points) > 1:
            draw.line(points, fill=0, width=width, joint="curve")
        for x, y in (points[0], points[-1]) if points else ():  # round caps (and a lone dot)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    out = io.BytesIO()
    image.resize((size, size), Image.Resampling.BOX).save(out, format="PNG", optimize=False)
    return out.getvalue()
