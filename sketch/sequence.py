"""Strokes -> the stroke RNN's input: a variable-length sequence of ``(dx, dy, end_of_stroke)`` rows.

As in TensorFlow's Quick, Draw! RNN tutorial, but built on the same normalisation as the CNN's
path (``sketch.strokes.normalize``: top-left aligned, longer side 0-255, 1 px resample, RDP 2.0):

- coordinates are divided by 255, so a drawing spans at most 0-1 and every delta is in [-1, 1];
- row ``i`` is the move from the previous point to point ``i`` (the first move starts at the
  origin, so the first row is where the drawing starts in its box), and its third value is 1 when
  point ``i`` ends a stroke: the move after a 1 is a pen-up jump;
- rows ``(0, 0, 0)`` (a point on top of the previous one that ends nothing) carry no information and
  are dropped, so an all-zero row means "padding" and nothing else: a model can find each
  sequence's length in a zero-padded batch, and padding can never change a prediction;
- a drawing with more than ``max_len`` points is simplified again (RDP with a growing epsilon)
  until it fits, never cut off: the end of a drawing matters as much as its start. Every stroke
  keeps its two ends, so a drawing of more than ``max_len / 2`` strokes stays longer than
  ``max_len`` (at most two rows per stroke; the API caps the number of strokes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sketch.drawing import Drawing
from sketch.strokes import SIMPLIFIED_SIDE, normalize, rdp_strokes

FEATURES = 3  # dx, dy, end_of_stroke
MAX_LEN = 200  # rows; most dataset drawings have fewer (median about 50)

_MAX_EPSILON = SIMPLIFIED_SIDE  # beyond this RDP keeps only the ends of every stroke


def fit_length(drawing: Drawing, max_len: int = MAX_LEN) -> Drawing:
    """Simplify a normalised drawing (RDP, doubling epsilon from 2) until it has <= ``max_len`` points."""
    epsilon = 2.0
    while len(drawing.points) > max_len and epsilon <= _MAX_EPSILON:
        epsilon *= 2
        drawing = rdp_strokes(drawing, epsilon)
    return drawing


def strokes_to_deltas(drawing: Drawing) -> np.ndarray:
    """A normalised (0-255) drawing -> float32 (n, 3) rows ``(dx, dy, end_of_stroke)``, zero rows dropped."""
    points = drawing.points / SIMPLIFIED_SIDE
    ends = np.zeros(len(points), dtype=np.float64)
    ends[np.cumsum(drawing.counts) - 1] = 1.0
    deltas = np.diff(points, axis=0, prepend=np.zeros((1, 2)))
    rows = np.column_stack([deltas, ends]).astype(np.float32)
    return rows[rows.any(axis=1)]


def to_sequence(drawing: Drawing, max_len: int = MAX_LEN) -> np.ndarray:
    """An any-space parsed drawing (as from ``parse_strokes``) -> the RNN's float32 (n, 3) input, n >= 1."""
    return normalized_to_sequence(normalize(drawing), max_len)


def normalized_to_sequence(drawing: Drawing, max_len: int = MAX_LEN) -> np.ndarray:
    """``to_sequence`` for a drawing already normalised by ``sketch.strokes.normalize``."""
    return strokes_to_deltas(fit_length(drawing, max_len))


def pad_batch(sequences: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    """Zero-pad sequences at the end into one float32 (batch, time, 3) array."""
    longest = max((len(s) for s in sequences), default=0)
    length = max(longest, 1) if length is None else length
    if length < longest:
        raise ValueError(f"pad length {length} is shorter than the longest sequence ({longest})")
    out = np.zeros((len(sequences), length, FEATURES), dtype=np.float32)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


def stroke3_to_drawing(stroke3: np.ndarray) -> Drawing:
    """sketch-rnn stroke-3 ``[dx, dy, pen_lifted]`` rows -> a drawing in absolute coordinates (the file's own scale).

    The first row's offset is the first point; a stroke ends after every row whose pen is lifted.
    """
    arr = np.asarray(stroke3, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or not len(arr):
        raise ValueError(f"stroke-3 must be a non-empty (n, 3) array, got shape {list(arr.shape)}")
    points = np.cumsum(arr[:, :2], axis=0)
    cuts = np.flatnonzero(arr[:, 2] > 0) + 1
    return Drawing.from_strokes(np.split(points, cuts))
