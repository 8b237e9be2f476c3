"""Acceptance: strokes render exactly like Google's numpy_bitmap (pairs of the same drawings)."""

import numpy as np
import pytest

from sketch import raster
from sketch.drawing import Drawing
from sketch.raster import composited_without, render_simplified, strokes_to_bitmap
from sketch.strokes import EmptyDrawingError, normalize, parse_strokes
from tests.utils.fixtures import FIXTURES, PAIR_CATEGORIES, official_drawings, pearson, read_ndjson


def _scores(bitmaps, lines, render):
    """Mean absolute error (grey levels) and the share of bit-identical bitmaps (row i = line i)."""
    maes, same = [], []
    for row, line in zip(bitmaps, lines, strict=False):  # the airplane raw file holds 23 of the 25
        diff = np.abs(render(parse_strokes(line["drawing"])).astype(float) - row.reshape(28, 28))
        maes.append(diff.mean())
        same.append(not diff.any())
    return float(np.mean(maes)), float(np.mean(same))


@pytest.fixture(scope="module")
def matched():
    """72 more official pairs: Kaggle simplified lines and the numpy_bitmap row of the same drawing."""
    return np.load(FIXTURES / "pairs_matched.npy"), read_ndjson(FIXTURES / "pairs_matched.ndjson.gz")


@pytest.mark.parametrize("category", PAIR_CATEGORIES)
def test_simplified_strokes_reproduce_official_bitmaps(pairs, category):
    bitmaps, simplified, _ = pairs[category]
    mae, identical = _scores(bitmaps, simplified, render_simplified)
    assert mae <= 0.5, mae
    assert identical >= 0.9, identical


def test_matched_official_pairs_are_reproduced(matched):
    bitmaps, lines = matched
    assert len(lines) == len(bitmaps) == 72
    mae, identical = _scores(bitmaps, lines, render_simplified)
    assert mae <= 0.5, mae
    assert identical >= 0.9, identical


@pytest.mark.parametrize("category", PAIR_CATEGORIES)
def test_raw_strokes_reproduce_official_bitmaps(pairs, category):
    # Raw device-pixel strokes go through the full simplification first, then the same renderer.
    bitmaps, _, raw = pairs[category]
    mae, identical = _scores(bitmaps, raw, strokes_to_bitmap)
    assert mae <= 0.5, mae
    assert identical >= 0.8, identical


def test_bitmap_format():
    img = strokes_to_bitmap(parse_strokes([[[0, 100], [0, 100]]]))
    assert img.shape == (28, 28) and img.dtype == np.uint8
    assert img.max() == 255 and img[0, 0] == 0  # white ink on black, padded border


def test_a_lone_point_is_a_dot_and_strokes_composite_separately():
    dot = render_simplified(Drawing.from_strokes([[[128.0, 128.0]]]))
    assert dot.max() > 0 and np.count_nonzero(dot) <= 9  # a round cap of diameter 16 in 256-space
    # Two strokes over the same segment: the second paints over the first's antialiased edge.
    once = render_simplified(Drawing.from_strokes([[[0.0, 0.0], [255.0, 0.0]]]))
    twice = render_simplified(Drawing.from_strokes([[[0.0, 0.0], [255.0, 0.0]]] * 2))
    assert (twice >= once).all() and (twice > once).any()


def test_other_sizes_for_thumbnails(pairs):
    _, simplified, _ = pairs["cat"]
    strokes = parse_strokes(simplified[0]["drawing"])
    big = render_simplified(strokes, side=112)
    assert big.shape == (112, 112) and big.dtype == np.uint8
    # Averaging 4x4 blocks gives back the 28x28 picture, up to antialiasing.
    assert pearson(big.reshape(28, 4, 28, 4).mean(axis=(1, 3)), render_simplified(strokes)) >= 0.97
    # Each size has its own canvas: rendering other sizes in between changes nothing.
    first = render_simplified(strokes)
    for side in range(100, 110):
        assert render_simplified(strokes, side=side).shape == (side, side)
    assert (render_simplified(strokes) == first).all()
    with pytest.raises(ValueError, match="side must be"):
        render_simplified(strokes, side=0)


@pytest.mark.parametrize(
    ("strokes", "error", "message"),
    [
        ([], EmptyDrawingError, "empty drawing"),
        ([np.zeros((0, 2))], EmptyDrawingError, "empty drawing"),
        ([np.array([[0.0, 0.0], [np.nan, 1.0]])], ValueError, "finite"),
        ([np.array([[0.0, 0.0], [1e308, 1.0]])], ValueError, "simplified 0-255 space"),
    ],
)
def test_render_refuses_what_it_cannot_draw(strokes, error, message):
    with pytest.raises(error, match=message):
        render_simplified(Drawing.from_strokes(strokes))


def test_canvas_coordinates_give_the_dataset_bitmap(pairs):
    # The same drawing at canvas scale (x3, shifted) renders like the official bitmap.
    bitmaps, simplified, _ = pairs["dog"]
    parsed = parse_strokes(simplified[3]["drawing"])
    strokes = Drawing(parsed.points * 3 + 17, parsed.counts)
    assert pearson(strokes_to_bitmap(strokes), bitmaps[3]) >= 0.98


def test_compositing_is_rendering_the_drawing_without_those_strokes():
    """Composited from each stroke alone: exactly the bitmap of the drawing without those strokes, on
    every official drawing here; every removal is composited but those that move the centring (they
    held the right or bottom edge) and those that leave nothing."""
    variants = 0
    for strokes in official_drawings():
        drawing = normalize(parse_strokes(strokes))
        n = len(drawing)
        removals = [(i,) for i in range(n)] + [(0, n - 1)] * (n > 1) + [tuple(range(n))]
        got = composited_without(drawing, removals)
        edge = drawing.points.max(axis=0)
        for k, removal in enumerate(removals):
            rest = drawing.without(removal)
            keeps_centring = len(rest.points) and (rest.points.max(axis=0) == edge).all()
            assert (k in got) == bool(keeps_centring)
            if k in got:
                np.testing.assert_array_equal(got[k], render_simplified(rest))
                variants += 1
    assert variants > 1000


def test_nothing_is_composited_where_cairo_composites_otherwise(monkeypatch):
    drawing = normalize(parse_strokes(official_drawings()[0]))
    assert composited_without(drawing, [(i,) for i in range(len(drawing))])
    monkeypatch.setattr(raster, "_compositing_is_cairos", lambda: False)
    assert composited_without(drawing, [(i,) for i in range(len(drawing))]) == {}
