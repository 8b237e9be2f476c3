import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sketch.drawing import Drawing
from sketch.strokes import (
    EmptyDrawingError,
    normalize,
    normalize_without,
    parse_strokes,
    rdp,
    resample,
    to_dataset_format,
)
from tests.utils.fixtures import official_drawings


def test_parse_accepts_dataset_and_raw_forms():
    strokes = parse_strokes([[[0, 1, 2], [0, 1, 2]], [[5, 6], [5, 6], [0, 10]]])
    assert [s.shape for s in strokes] == [(3, 2), (2, 2)]


@pytest.mark.parametrize(
    ("drawing", "message"),
    [
        ("nope", "must be a list"),
        ([[[0, 1], [0]]], "different lengths"),
        ([[[0, 1]]], "stroke 0 must be"),
        ([[[0, "a"], [0, 1]]], "numbers"),
        ([[[0, float("nan")], [0, 1]]], "finite"),
        ([[[0, float("inf")], [0, 1]]], "finite"),
        ([[[0, 10**400], [0, 1]]], "too large"),  # an integer JSON literal past float64's range
        ([[[0], [0]]] * 5, "too many strokes"),
        ([[list(range(50)), list(range(50))]], "too many points"),
    ],
)
def test_parse_rejects_bad_strokes_naming_the_problem(drawing, message):
    with pytest.raises(ValueError, match=message):
        parse_strokes(drawing, max_strokes=4, max_points=40)


def test_parse_empty_drawing():
    with pytest.raises(EmptyDrawingError, match="empty drawing"):
        parse_strokes([])
    with pytest.raises(EmptyDrawingError):
        parse_strokes([[[], []]])


def test_normalize_is_uniform_and_top_left_aligned():
    # A tall rectangle in canvas pixels keeps its 1:2 aspect ratio.
    tall = parse_strokes([[[100, 150, 150, 100, 100], [300, 300, 400, 400, 300]]])
    (s,) = normalize(tall)
    assert s.min(axis=0).tolist() == [0, 0]
    assert s[:, 1].max() == 255
    assert s[:, 0].max() == pytest.approx(127.5, abs=1)


def test_normalize_is_invariant_to_translation_and_scale(pairs):
    _, simplified, _ = pairs["cat"]
    strokes = parse_strokes(simplified[0]["drawing"])
    moved = Drawing(strokes.points * 3.7 + np.array([250.0, -40.0]), strokes.counts)
    for a, b in zip(normalize(strokes), normalize(moved), strict=True):
        assert np.abs(a - b).max() <= 1


def test_normalize_a_single_dot():
    (s,) = normalize(parse_strokes([[[42], [42]]]))
    assert s.tolist() == [[0, 0]]


def test_resample_spacing_and_rdp_keeps_corners():
    line = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    dense = resample(line)
    assert np.allclose(np.hypot(*np.diff(dense, axis=0).T)[:-1], 1.0)
    assert rdp(dense).tolist() == line.tolist()


def test_simplified_strokes_are_a_fixed_point(pairs):
    # Official simplified drawings are already normalised: doing it again changes almost nothing.
    _, simplified, _ = pairs["airplane"]
    for line in simplified[:10]:
        strokes = parse_strokes(line["drawing"])
        again = to_dataset_format(normalize(strokes))
        assert sum(len(s[0]) for s in again) == pytest.approx(sum(len(s[0]) for s in line["drawing"]), rel=0.25)


# The simplified recipe written the textbook way, stroke by stroke (how sketch/strokes.py did it before
# it worked on whole drawings at once): the vectorised code must give the very same floats.
def _reference_resample(points):
    if len(points) < 2:
        return points
    dist = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    if dist[-1] <= 1.0:
        return points[[0, -1]]
    at = np.append(np.arange(0.0, dist[-1], 1.0), dist[-1])
    return np.column_stack([np.interp(at, dist, points[:, 0]), np.interp(at, dist, points[:, 1])])


def _reference_rdp(points, epsilon=2.0):
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        a, ab, inner = points[start], points[end] - points[start], points[start + 1 : end]
        norm = np.hypot(*ab)
        if norm == 0.0:
            dists = np.hypot(*(inner - a).T)
        else:
            dists = np.abs(ab[0] * (inner[:, 1] - a[1]) - ab[1] * (inner[:, 0] - a[0])) / norm
        i = int(np.argmax(dists))
        if dists[i] > epsilon:
            keep[start + 1 + i] = True
            stack += [(start, start + 1 + i), (start + 1 + i, end)]
    return points[keep]


def _reference_normalize(strokes):
    points = np.concatenate(list(strokes))
    lo = points.min(axis=0)
    extent = float((points.max(axis=0) - lo).max())
    scale = 255.0 / extent if extent > 0 else 1.0
    return [np.clip(np.round(_reference_rdp(_reference_resample((s - lo) * scale))), 0, 255) for s in strokes]


def test_normalize_is_bit_identical_to_the_textbook_recipe():
    drawings = official_drawings()
    assert len(drawings) == 286
    for drawing in drawings:
        strokes = parse_strokes(drawing)
        got, want = normalize(strokes), _reference_normalize(strokes)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_normalize_without_is_normalize_of_the_drawing_without_those_strokes():
    """The shared-work path (strokes inside the frame keep their normalised form) and the fresh one
    (a removal that moves the corner or the extent) both give exactly what normalising again gives."""
    shared = fresh = 0
    for drawing in official_drawings():
        strokes = parse_strokes(drawing)
        removals = [(i,) for i in range(len(strokes))] + [(0, len(strokes) - 1)] * (len(strokes) > 1)
        whole = normalize(strokes)
        variants = normalize_without(strokes, removals)
        for removal, got, from_whole in zip(removals, variants.variants, variants.from_whole, strict=True):
            kept = [i for i in range(len(strokes)) if i not in removal]
            if not kept:
                assert got is None
                continue
            want = normalize(strokes.without(removal))
            np.testing.assert_array_equal(got.points, want.points)
            np.testing.assert_array_equal(got.counts, want.counts)
            same_form = all(np.array_equal(got[k], whole[i]) for k, i in enumerate(kept))
            assert same_form or not from_whole
            shared, fresh = shared + same_form, fresh + (not same_form)
    assert shared > 1000 and fresh > 100  # both paths were taken


def test_resample_and_rdp_match_the_textbook_on_awkward_polylines():
    rng = np.random.default_rng(7)
    lines = [
        np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [10.0, 4.0]]),  # repeated points
        np.array([[5.0, 5.0], [5.0, 5.0]]),  # no length
        np.array([[0.0, 0.0], [0.5, 0.5]]),  # shorter than the spacing
        np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 0.0]]),  # ends on its start: a zero-length chord
        np.array([[0.0, 0.0], [7.0, 0.0]]),  # integer length: the last query is the end itself
        rng.uniform(0, 255, (60, 2)),
        np.cumsum(rng.normal(0, 3, (400, 2)), axis=0),
    ]
    for line in lines:
        dense = resample(line)
        np.testing.assert_array_equal(dense, _reference_resample(line))
        np.testing.assert_array_equal(rdp(dense), _reference_rdp(dense))


@pytest.mark.parametrize(
    ("drawing", "expected"),
    [
        # The range overflows float64 (max - min is infinite): a horizontal line across the box.
        ([[[-1e308, 1e308], [0, 1]]], [[[0, 255], [0, 0]]]),
        ([[[-1.7e308, 1.7e308], [-1.7e308, 1.7e308]]], [[[0, 255], [0, 255]]]),
        # A subnormal extent: 255 / extent overflows, the drawing is still a line.
        ([[[0, 5e-324], [0, 0]]], [[[0, 255], [0, 0]]]),
        ([[[1.0, 1.0], [2e-320, 3e-320]]], [[[0, 0], [0, 255]]]),
        # Huge but finite coordinates far from the origin.
        ([[[1e300, 1e300 + 1e286], [7e299, 7e299]]], [[[0, 255], [0, 0]]]),
    ],
)
def test_extreme_coordinates_give_the_drawing(drawing, expected):
    assert to_dataset_format(normalize(parse_strokes(drawing))) == expected


finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=64)


@st.composite
def drawings(draw):
    n_strokes = draw(st.integers(1, 4))
    out = []
    for _ in range(n_strokes):
        n = draw(st.integers(1, 12))
        out.append([draw(st.lists(finite, min_size=n, max_size=n)), draw(st.lists(finite, min_size=n, max_size=n))])
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawings())
def test_any_finite_drawing_goes_through_the_whole_pipeline(drawing):
    from sketch.raster import render_simplified
    from sketch.sequence import normalized_to_sequence

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings either
        strokes = normalize(parse_strokes(drawing))
        points = strokes.points
        assert np.isfinite(points).all() and points.min() >= 0 and points.max() <= 255
        assert (points == np.round(points)).all()
        bitmap = render_simplified(strokes)
        assert bitmap.shape == (28, 28) and bitmap.max() > 0
        seq = normalized_to_sequence(strokes)
        assert np.isfinite(seq).all() and len(seq) >= 1


def test_a_pathological_drawing_is_answered_within_the_work_bounds():
    """20,000 points zigzagging across the box: far past every official drawing, still a drawing."""
    from sketch.strokes import MAX_RESAMPLED_POINTS, _spacing

    n = 20_000
    zigzag = parse_strokes([[[0 if i % 2 else 255 for i in range(n)], [i * 255 / n for i in range(n)]]])
    points = zigzag.points
    assert _spacing(points, np.array([n])) > 1  # the resample spacing grows past the bound
    out = normalize(zigzag)
    assert 2 <= sum(len(s) for s in out) <= MAX_RESAMPLED_POINTS
    assert all(((s >= 0) & (s <= 255)).all() for s in out)


TIE_SHAPES = [
    # The top side is parallel to the first chord, at the farthest distance: its points tie.
    [[0.0, 0.0], [0.0, 100.0], [200.0, 100.0], [200.0, 0.0]],
    [[10.0, 10.0], [40.0, 70.0], [160.0, 130.0], [190.0, 70.0]],  # the same, turned
    [[0.0, 0.0], [0.0, 50.0], [50.0, 50.0], [50.0, 0.0], [100.0, 0.0], [100.0, 50.0], [150.0, 50.0]],  # square wave
    [[5.0, 5.0], [5.0, 5.0], [80.0, 5.0], [80.0, 5.0], [5.0, 5.0]],  # repeated points, back to the start
]


def test_resample_rdp_in_one_pass_keeps_what_rdp_over_every_resampled_point_keeps():
    """normalize's fused pass against its two steps, on every fixture drawing and on ties."""
    from sketch import simplify

    drawings = [parse_strokes(d) for d in official_drawings()]
    drawings += [[np.array(shape)] for shape in TIE_SHAPES]
    drawings.append([np.array(TIE_SHAPES[0]), np.array([[30.0, 30.0]]), np.array(TIE_SHAPES[2]) * 0.5])
    for strokes in drawings:
        counts = np.array([len(s) for s in strokes])
        points = np.concatenate(strokes)
        dense, dense_counts = simplify.resample_all(points, counts)
        keep = simplify.rdp_keep(dense, dense_counts, simplify.RDP_EPSILON)
        kept, kept_counts = simplify.resample_rdp(points, counts)
        np.testing.assert_array_equal(kept, dense[keep])
        np.testing.assert_array_equal(kept_counts, np.add.reduceat(keep, np.cumsum(dense_counts) - dense_counts))


def test_the_compiled_path_runs_where_no_cache_folder_is_writable(tmp_path):
    """A read-only image (Kubernetes' read-only root file system): compiled at start, not cached."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    copy = tmp_path / "app"
    source = Path(__file__).parent.parent / "sketch"
    shutil.copytree(source, copy / "sketch", ignore=shutil.ignore_patterns("__pycache__"))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    (copy / "sketch" / "__pycache__").write_text("")  # numba's in-tree cache cannot be made
    env = {"PATH": "/usr/bin:/bin", "HOME": str(blocked / "home"), "XDG_CACHE_HOME": str(blocked / "cache")}
    env["NUMBA_CACHE_DIR"] = str(blocked / "numba")
    code = (
        "from sketch import simplify; from sketch.strokes import normalize, parse_strokes; simplify.warm_up(); "
        "print(type(simplify._resample_rdp._cache).__name__, "
        "normalize(parse_strokes([[[0, 9, 30], [0, 40, 0]]]))[0].tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" ", 1) == ["NullCache", "[[0.0, 0.0], [57.0, 255.0], [191.0, 0.0]]\n"]
