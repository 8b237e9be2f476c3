"""Strokes -> RNN sequences: shape, flags, invariances, long drawings simplified (never cut off)."""

import numpy as np
import pytest

from sketch.drawing import Drawing
from sketch.sequence import (
    MAX_LEN,
    fit_length,
    pad_batch,
    stroke3_to_drawing,
    strokes_to_deltas,
    to_sequence,
)
from sketch.strokes import normalize, parse_strokes


def strokes(*polylines):
    return parse_strokes([[list(map(float, xs)), list(map(float, ys))] for xs, ys in polylines])


SQUARE = strokes(([0, 10, 10, 0, 0], [0, 0, 10, 10, 0]))
TWO = strokes(([100, 50, 0], [0, 80, 0]), ([20, 80], [40, 40]))


def zigzag(n: int) -> np.ndarray:
    """A scribble whose every corner survives the dataset's simplification."""
    i = np.arange(n, dtype=float)
    return np.column_stack([i, (i % 2) * 100.0])


def test_rows_are_deltas_with_end_of_stroke_flags():
    seq = to_sequence(TWO)
    assert seq.dtype == np.float32 and seq.ndim == 2 and seq.shape[1] == 3
    assert seq[:, 2].sum() == 2 and seq[-1, 2] == 1.0
    assert set(np.unique(seq[:, 2])) <= {0.0, 1.0}
    # Summing the deltas gives back the normalised points, scaled to 0-1.
    points = np.cumsum(seq[:, :2], axis=0)
    expected = normalize(TWO).points / 255.0
    np.testing.assert_allclose(points, expected, atol=1e-6)
    assert np.abs(seq[:, :2]).max() <= 1.0


def test_no_row_is_all_zero_so_zero_means_padding():
    # Repeated points and a stroke starting where the last ended would make (0, 0, 0) rows.
    drawing = strokes(([0, 0, 0, 100, 100], [0, 0, 0, 50, 50]), ([100, 100, 0], [50, 50, 0]))
    seq = to_sequence(drawing)
    assert seq.any(axis=1).all()
    assert seq[:, 2].sum() == 2


@pytest.mark.parametrize(
    "drawing, rows",
    [
        (strokes(([5], [7])), 1),  # one point: a dot at the origin of its box, flagged as a stroke end
        (strokes(([5, 5], [7, 7])), 1),
        (strokes(([3], [3]), ([3], [3])), 2),  # two dots on the same spot: two stroke ends
    ],
)
def test_tiny_drawings_give_at_least_one_row(drawing, rows):
    seq = to_sequence(drawing)
    assert len(seq) == rows
    assert (seq[:, 2] == 1).all()


def test_translation_and_scale_do_not_change_the_sequence():
    moved = Drawing(TWO.points * 2.0 + 300.0, TWO.counts)
    np.testing.assert_array_equal(to_sequence(moved), to_sequence(TWO))


def test_long_drawing_is_simplified_to_max_len_not_cut_off():
    long = Drawing.from_strokes([zigzag(1000)])
    assert len(normalize(long)[0]) > MAX_LEN  # the dataset simplification alone keeps too many points
    seq = to_sequence(long)
    assert 2 <= len(seq) <= MAX_LEN
    # The path still ends where the drawing ends.
    end = normalize(long)[0][-1] / 255.0
    np.testing.assert_allclose(np.cumsum(seq[:, :2], axis=0)[-1], end, atol=1e-6)
    assert seq[-1, 2] == 1.0


def test_many_strokes_keep_every_stroke():
    many = Drawing.from_strokes(np.array([[i * 3.0, 0.0], [i * 3.0, 50.0 + i]]) for i in range(150))
    seq = to_sequence(many, max_len=100)
    assert seq[:, 2].sum() == 150  # every stroke is still there (at most two rows each)
    assert len(seq) <= 300


def test_fit_length_leaves_short_drawings_alone():
    norm = normalize(TWO)
    assert all(np.array_equal(a, b) for a, b in zip(fit_length(norm), norm, strict=True))


def test_pad_batch():
    a, b = to_sequence(SQUARE), to_sequence(TWO)
    batch = pad_batch([a, b])
    assert batch.shape == (2, max(len(a), len(b)), 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, : len(a)], a)
    assert not batch[0, len(a) :].any()
    assert pad_batch([a], length=50).shape == (1, 50, 3)
    with pytest.raises(ValueError, match="shorter"):
        pad_batch([a, b], length=1)


def test_stroke3_to_drawing():
    stroke3 = np.array([[10, 20, 0], [5, 0, 1], [0, 10, 0], [-5, 0, 0], [0, -10, 1]])
    out = stroke3_to_drawing(stroke3)
    assert len(out) == 2
    np.testing.assert_array_equal(out[0], [[10, 20], [15, 20]])
    np.testing.assert_array_equal(out[1], [[15, 30], [10, 30], [10, 20]])
    with pytest.raises(ValueError):
        stroke3_to_drawing(np.zeros((0, 3)))


def test_deltas_of_normalised_strokes_match_to_sequence():
    np.testing.assert_array_equal(strokes_to_deltas(normalize(TWO)), to_sequence(TWO))
