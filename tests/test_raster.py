"""Acceptance: strokes render exactly like Google's numpy_bitmap (pairs of the same drawings)."""

import numpy as np
import pytest
from conftest import PAIR_CATEGORIES, pearson

from sketch.raster import render_simplified, strokes_to_bitmap
from sketch.strokes import parse_strokes


def _scores(bitmaps, lines, render):
    rs, maes = [], []
    for row, line in zip(bitmaps, lines, strict=False):
        img = render(parse_strokes(line["drawing"]))
        rs.append(pearson(img, row))
        maes.append(np.abs(img.astype(float) - row.reshape(28, 28)).mean())
    return float(np.mean(rs)), float(np.mean(maes))


@pytest.mark.parametrize("category", PAIR_CATEGORIES)
def test_simplified_strokes_reproduce_official_bitmaps(pairs, category):
    bitmaps, simplified, _ = pairs[category]
    r, mae = _scores(bitmaps, simplified, render_simplified)
    assert r >= 0.995, r
    assert mae <= 6.0, mae


@pytest.mark.parametrize("category", PAIR_CATEGORIES)
def test_raw_strokes_reproduce_official_bitmaps(pairs, category):
    # Raw device-pixel strokes go through the full simplification first.
    bitmaps, _, raw = pairs[category]
    r, mae = _scores(bitmaps, raw, strokes_to_bitmap)
    assert r >= 0.99, r
    assert mae <= 8.0, mae


def test_bitmap_format():
    img = strokes_to_bitmap(parse_strokes([[[0, 100], [0, 100]]]))
    assert img.shape == (28, 28) and img.dtype == np.uint8
    assert img.max() == 255 and img[0, 0] == 0  # white ink on black, padded border


def test_canvas_coordinates_give_the_dataset_bitmap(pairs):
    # The same drawing at canvas scale (x3, shifted) renders like the official bitmap.
    bitmaps, simplified, _ = pairs["dog"]
    strokes = [s * 3 + 17 for s in parse_strokes(simplified[3]["drawing"])]
    assert pearson(strokes_to_bitmap(strokes), bitmaps[3]) >= 0.98
