"""Render strokes to a 28x28 bitmap exactly as Google rendered the ``numpy_bitmap`` set: with cairo.

Google's script (``vector_to_raster``, published in the quickdraw-dataset issues) draws the
simplified strokes with cairo on an ARGB32 surface: best antialiasing, round caps and joins, a
line diameter of 16 and a padding of 16 (both in 256-space), the drawing centred on its extent,
white on black, one ``stroke()`` per stroke, then keeps one channel as uint8. Doing the same here
reproduces the official bitmaps byte for byte on almost every drawing (figures in docs/preprocessing.md and
``bench/preprocess.py``); the CNN was trained on those bitmaps, so the API must feed it the same.

The path is handed to cairo in one ``cairo_append_path`` call per stroke, built with numpy in
cairo's documented ``cairo_path_data_t`` layout, instead of a Python call per point.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Collection, Sequence

import numpy as np

from sketch.compiled import compiled
from sketch.drawing import Drawing, kept_strokes
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
    _check(drawing)
    return _render(drawing.points + _centring(drawing.points), drawing.counts, side)


def _check(drawing: Drawing) -> None:
    if not len(drawing.points):
        raise EmptyDrawingError("empty drawing: no points")
    points = drawing.points
    if not np.isfinite(points).all() or np.abs(points).max() > _MAX_COORDINATE:
        raise ValueError("strokes must be finite and in the simplified 0-255 space: normalise them first")


def _centring(points: np.ndarray) -> np.ndarray:
    """Google's offset, centring the drawing on its extent: (256 - max) / 2 (the simplified minimum is 0)."""
    return (ORIGINAL_SIDE - points.max(axis=0)) / 2


def _render(points: np.ndarray, counts: np.ndarray, side: int, each: bool = False) -> np.ndarray:
    """The strokes, already placed, drawn white on black as Google's script draws them: uint8
    (side, side), or with ``each`` every stroke alone on black, (strokes, side, side)."""
    data = _path_data(points, counts)
    canvas = _canvas(side)
    cr, path = canvas.cr, canvas.path
    base = _ffi.cast("cairo_path_data_t *", _ffi.from_buffer(data))
    out = np.empty((len(counts) if each else 1, side, side), dtype=np.uint8)
    row = 0
    for i, count in enumerate(counts.tolist()):
        if each or not i:
            _lib.cairo_set_source_rgb(cr, 0.0, 0.0, 0.0)
            _lib.cairo_paint(cr)
            _lib.cairo_set_source_rgb(cr, 1.0, 1.0, 1.0)
        path.status, path.data, path.num_data = 0, base + row, 2 * (count + 1)
        _lib.cairo_append_path(cr, path)
        _lib.cairo_stroke(cr)  # one stroke() per stroke: overlapping strokes composite like Google's
        row += 2 * (count + 1)
        if each or i == len(counts) - 1:
            _lib.cairo_surface_flush(canvas.surface._pointer)
            # Google kept the blue channel (byte 0 of a native-endian ARGB32 pixel); white ink makes R = G = B.
            out[i if each else 0] = canvas.pixels[:, _BLUE : 4 * side : 4]
    status = _lib.cairo_status(cr)
    if status:
        raise RuntimeError(f"cairo failed to render: {_ffi.string(_lib.cairo_status_to_string(status)).decode()}")
    return out if each else out[0]


def _over_table() -> np.ndarray:
    """uint8 [ink so far, a stroke's coverage] -> ink after that stroke: white drawn over the pixel with
    the arithmetic of cairo's span compositor (``lerp8x4``: each product divided by 255, rounded its way)."""

    def times(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        t = x * y + 0x7F
        return (t + (t >> 8)) >> 8

    below, coverage = np.arange(256)[:, None], np.arange(256)[None, :]
    return (times(255, coverage) + times(below, 255 - coverage)).astype(np.uint8)


_OVER = _over_table()


def composited_without(drawing: Drawing, removals: Sequence[Collection[int]]) -> dict[int, np.ndarray]:
    """``render_simplified(drawing.without(removals[k]))``, to the last bit, by ``k``, for the removals
    of a drawing in the simplified space that compositing renders: those that leave a stroke and keep
    the centring (a removal that held the right or bottom edge moves it). None at all if this cairo
    composites otherwise than reproduced here (checked once per process).

    Each stroke is drawn once alone (its coverage), and each variant is composited from those in
    drawing order, as cairo composites one ``stroke()`` after another: a drawing of n strokes costs n
    one-stroke renders instead of a render of the rest per variant.
    """
    _check(drawing)
    if not _compositing_is_cairos():
        return {}
    keeps = kept_strokes(len(drawing), removals)
    highs = np.maximum.reduceat(drawing.points, drawing.starts)
    edges = np.where(keeps[:, :, None], highs[None], -np.inf).max(axis=1)
    shared = np.flatnonzero(keeps.any(axis=1) & (edges == highs.max(axis=0)).all(axis=1)).tolist()
    if not shared:
        return {}
    return dict(zip(shared, _composited(drawing, keeps[shared]), strict=True))


def _composited(drawing: Drawing, keeps: np.ndarray) -> np.ndarray:
    """uint8 (len(keeps), 28, 28): for each row of ``keeps``, its strokes drawn in order over black."""
    coverages = _render(drawing.points + _centring(drawing.points), drawing.counts, SIDE, each=True)
    return _composite(coverages.reshape(len(coverages), -1), keeps, _OVER).reshape(-1, SIDE, SIDE)


@compiled
def _composite(coverages: np.ndarray, keeps: np.ndarray, over: np.ndarray) -> np.ndarray:
    """uint8 (rows, pixels): each row's kept strokes' coverages, in order, through ``over``."""
    rows, strokes = keeps.shape
    ink = np.zeros((rows, coverages.shape[1]), dtype=np.uint8)
    for s in range(strokes):
        touched = np.nonzero(coverages[s])[0]  # coverage 0 leaves a pixel as it is
        for r in range(rows):
            if keeps[r, s]:
                for p in touched:
                    ink[r, p] = over[ink[r, p], coverages[s, p]]
    return ink


@functools.cache
def _compositing_is_cairos() -> bool:
    """Whether ``_composited`` gives this cairo's bitmaps, on crossing and overlapping strokes."""
    angles = np.linspace(0, np.pi, 7, endpoint=False)
    spokes = [
        np.array([[128 - 120 * np.cos(a), 128 - 120 * np.sin(a)], [128 + 120 * np.cos(a), 128 + 120 * np.sin(a)]])
        for a in angles
    ]
    turns = np.linspace(0, 2 * np.pi, 40)
    ring = np.stack([128 + 60 * np.cos(turns), 128 + 60 * np.sin(turns)], axis=1)
    probe = Drawing.from_strokes([*spokes, ring, [[128.0, 128.0]], [[3.0, 250.0], [9.0, 251.0]]])
    placed = Drawing(probe.points + _centring(probe.points), probe.counts)
    keeps = ~np.eye(len(probe), dtype=bool)
    for i, got in enumerate(_composited(probe, keeps)):
        rest = placed.without([i])
        if not np.array_equal(got, _render(rest.points, rest.counts, SIDE)):
            return False
    return True


def strokes_to_bitmap(drawing: Drawing) -> np.ndarray:
    """An any-space drawing -> the 28x28 uint8 bitmap the dataset would hold for it."""
    return render_simplified(normalize(drawing))


def warm_up() -> None:
    """Compile the compositing loop now (or load it from the cache) and check it against this cairo,
    rather than in the first explanation."""
    _compositing_is_cairos()
