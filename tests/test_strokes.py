import numpy as np
import pytest

from sketch.strokes import EmptyDrawingError, normalize, parse_strokes, rdp, resample, to_dataset_format


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
    moved = [s * 3.7 + np.array([250.0, -40.0]) for s in strokes]
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
