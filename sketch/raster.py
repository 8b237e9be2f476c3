"""Render strokes to a 28x28 bitmap exactly as Google rendered the ``numpy_bitmap`` set: with cairo.

Google's script (``vector_to_raster``, published in the quickdraw-dataset issues) draws the
simplified strokes with cairo on an ARGB32 surface: best antialiasing, round caps and joins, a
line diameter of 16 and a padding of 16 (both in 256-space), the drawing centred on its extent,
white on black, one ``stroke()`` per stroke, then keeps one channel as uint8. Doing the same here
reproduces the official bitmaps byte for byte on almost every drawing (figures in the README and
``bench/preprocess.py``); the CNN was trained on those bitmaps, so the API must feed it the same.

The path is handed to cairo in one ``cairo_append_path`` call per stroke, built with numpy in
cairo's documented ``cairo_path_data_t`` layout, instead of a Python call per point.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from sketch.drawing import Drawing
from sketch.strokes import EmptyDrawingError, normalize

try:
    import cairocffi as cairo
except OSError as exc:  # cairocffi is installed but the system library is not
    raise ImportError(f"sketch needs the system cairo library (Debian: apt-get install libcairo2): {exc}") from exc

SIDE = 28
ORIGINAL_SIDE = 256.0
LINE_DIAMETER = 16.0
PADDING = 16.0
_TOTAL_PADDING = 2 * PADDING + LINE_DIAMETER
# Beyond this cairo's 24.8 fixed-point device coordinates wrap around; simplified strokes are 0-255.
_MAX_COORDINATE = 1e5

_lib, _ffi = cairo.cairo, cairo.ffi
_MOVE_TO, _LINE_TO = _lib.CAIRO_PATH_MOVE_TO, _lib.CAIRO_PATH_LINE_TO
_BLUE = 0 if sys.byteorder == "little" else 3


class _Canvas:
    """One cairo surface and context per thread and size, set up once (cairo objects are not thread-safe)."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, side, side)
        ctx = cairo.Context(self.surface)
        ctx.set_antialias(cairo.ANTIALIAS_BEST)
        ctx.set_line_cap(cairo.LINE_CAP_ROUND)
        ctx.set_line_join(cairo.LINE_JOIN_ROUND)
        ctx.set_line_width(LINE_DIAMETER)
        scale = side / (ORIGINAL_SIDE + _TOTAL_PADDING)
        ctx.scale(scale, scale)
        ctx.translate(_TOTAL_PADDING / 2, _TOTAL_PADDING / 2)
        self.ctx = ctx
        self.cr = ctx._pointer
        self.path = _ffi.new("cairo_path_t *")
        self.stride = self.surface.get_stride()
        data = _lib.cairo_image_surface_get_data(self.surface._pointer)
        self.pixels = np.frombuffer(_ffi.buffer(data, self.stride * side), np.uint8).reshape(side, self.stride)


_local = threading.local()
_KEPT_SIZES = 4
MAX_SIDE = 1024


def _canvas(side: int) -> _Canvas:
    canvases = _local.__dict__.setdefault("canvases", {})
    if side not in canvases:
        if len(canvases) >= _KEPT_SIZES:  # thumbnails come in many sizes: keep a few, and always 28
            del canvases[next(k for k in canvases if k != SIDE)]
        canvases[side] = _Canvas(side)
    return canvases[side]


def _path_data(points: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """All strokes as ``cairo_path_data_t`` rows (16 bytes each): per stroke a move to its first point,
    then a line to every point including the first, as Google's script does (a lone point is a dot)."""
    n, strokes = len(points), len(counts)
    starts = np.cumsum(counts) - counts
    data = np.zeros((2 * (n + strokes), 2), dtype=np.float64)
    headers = data.view(np.int32).reshape(-1, 4)
    # Row of each point's LINE_TO header: two rows per earlier point, plus two for each stroke's MOVE_TO so far.
    line_rows = 2 * (np.arange(n) + np.repeat(np.arange(1, strokes + 1), counts))
    move_rows = 2 * (starts + np.arange(strokes))
    headers[line_rows, 0], headers[line_rows, 1] = _LINE_TO, 2
    headers[move_rows, 0], headers[move_rows, 1] = _MOVE_TO, 2
    data[line_rows + 1] = points
    data[move_rows + 1] = points[starts]
    return data


def render_simplified(drawing: Drawing, side: int = SIDE) -> np.ndarray:
    """Rasterise a drawing already in the simplified 0-255 space; uint8 (side, side), ink 255.

    Raises ``EmptyDrawingError`` for a drawing without points and ``ValueError`` for coordinates that
    are not finite or far outside the simplified space (normalise such strokes first).
    """
    if not 1 <= side <= MAX_SIDE:
        raise ValueError(f"side must be 1..{MAX_SIDE} pixels, got {side}")
    if not len(drawing.points):
        raise EmptyDrawingError("empty drawing: no points")
    points = drawing.points
    if not np.isfinite(points).all() or np.abs(points).max() > _MAX_COORDINATE:
        raise ValueError("strokes must be finite and in the simplified 0-255 space: normalise them first")
    # Centre on the extent as Google did: offset = (256 - max) / 2 (the simplified minimum is 0).
    points = points + (ORIGINAL_SIDE - points.max(axis=0)) / 2
    counts = drawing.counts
    data = _path_data(points, counts)
    canvas = _canvas(side)
    cr, path = canvas.cr, canvas.path
    _lib.cairo_set_source_rgb(cr, 0.0, 0.0, 0.0)
    _lib.cairo_paint(cr)
    _lib.cairo_set_source_rgb(cr, 1.0, 1.0, 1.0)
    base = _ffi.cast("cairo_path_data_t *", _ffi.from_buffer(data))
    row = 0
    for count in counts.tolist():
        path.status, path.data, path.num_data = 0, base + row, 2 * (count + 1)
        _lib.cairo_append_path(cr, path)
        _lib.cairo_stroke(cr)  # one stroke() per stroke: overlapping strokes composite like Google's
        row += 2 * (count + 1)
    status = _lib.cairo_status(cr)
    if status:
        raise RuntimeError(f"cairo failed to render: {_ffi.string(_lib.cairo_status_to_string(status)).decode()}")
    _lib.cairo_surface_flush(canvas.surface._pointer)
    # Google kept the blue channel (byte 0 of a native-endian ARGB32 pixel here); white ink makes R = G = B.
    return canvas.pixels[:, _BLUE : 4 * side : 4].copy()


def strokes_to_bitmap(drawing: Drawing) -> np.ndarray:
    """An any-space drawing -> the 28x28 uint8 bitmap the dataset would hold for it."""
    return render_simplified(normalize(drawing))
