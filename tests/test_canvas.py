"""Canvas JSON (streamlit-drawable-canvas 0.13, Fabric.js) -> dataset strokes."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
canvas = importlib.import_module("canvas")

# Two strokes as the canvas sent them from Chromium (mouse at (50,50) (60,55) (80,70) (150,150), then
# (200,300) (300,200)); the other Fabric properties are left out.
DRAWN = {
    "version": "7.4.0",
    "background": "#FFFFFF",
    "objects": [
        {
            "type": "Path",
            "originX": "center",
            "originY": "center",
            "left": 100,
            "top": 100,
            "width": 100.02,
            "height": 100.02,
            "strokeWidth": 10,
            "scaleX": 1,
            "scaleY": 1,
            "angle": 0,
            "path": [
                ["M", 49.99, 49.99],
                ["Q", 50, 50, 55, 52.5],
                ["Q", 60, 55, 70, 62.5],
                ["Q", 80, 70, 115, 110],
                ["L", 150.01, 150.01],
            ],
        },
        {
            "type": "Path",
            "originX": "center",
            "originY": "center",
            "left": 250,
            "top": 250,
            "width": 100.02,
            "height": 100,
            "strokeWidth": 10,
            "scaleX": 1,
            "scaleY": 1,
            "angle": 0,
            "path": [["M", 199.99, 300], ["Q", 200, 300, 250, 250], ["L", 300.01, 200]],
        },
    ],
}


def test_points_in_drawing_order_in_canvas_pixels():
    strokes = canvas.objects_to_strokes(DRAWN)
    assert strokes == [
        [[50.0, 50.0, 55.0, 60.0, 70.0, 80.0, 115.0, 150.0], [50.0, 50.0, 52.5, 55.0, 62.5, 70.0, 110.0, 150.0]],
        [[200.0, 200.0, 250.0, 300.0], [300.0, 300.0, 250.0, 200.0]],
    ]


def test_every_mouse_sample_is_kept():
    xs, ys = canvas.objects_to_strokes(DRAWN)[0]
    for sample in [(50, 50), (60, 55), (80, 70), (150, 150)]:
        assert sample in zip(xs, ys, strict=True)


def test_a_moved_stroke_follows_its_object():
    # The same stroke after the edit toggle dragged it by (+60, +100): Fabric changes left/top only.
    moved = {"objects": [{**DRAWN["objects"][0], "left": 160, "top": 200}]}
    xs, ys = canvas.objects_to_strokes(moved)[0]
    original_xs, original_ys = canvas.objects_to_strokes(DRAWN)[0]
    assert xs == [x + 60 for x in original_xs]
    assert ys == [y + 100 for y in original_ys]


def test_a_scaled_stroke_and_left_top_origin():
    obj = {**DRAWN["objects"][1], "scaleX": 2, "scaleY": 2}  # scaled about its centre (250, 250)
    xs, ys = canvas.objects_to_strokes({"objects": [obj]})[0]
    assert (xs[0], ys[0]) == pytest.approx((150, 350), abs=0.1)
    assert (xs[-1], ys[-1]) == pytest.approx((350, 150), abs=0.1)
    # The unscaled box described from its top-left corner (Fabric's default origin): box = size + stroke width.
    corner = {**DRAWN["objects"][1], "originX": "left", "originY": "top", "left": 250 - 110.02 / 2, "top": 195}
    (cx, cy), (ox, oy) = canvas.objects_to_strokes({"objects": [corner]})[0], canvas.objects_to_strokes(DRAWN)[1]
    assert cx == pytest.approx(ox, abs=0.1) and cy == pytest.approx(oy, abs=0.1)


def test_a_rotated_stroke():
    obj = {**DRAWN["objects"][1], "angle": 90}  # about the centre (250, 250): (200, 300) -> (200, 200)
    xs, ys = canvas.objects_to_strokes({"objects": [obj]})[0]
    assert (xs[0], ys[0]) == pytest.approx((200, 200), abs=0.1)
    assert (xs[-1], ys[-1]) == pytest.approx((300, 300), abs=0.1)


@pytest.mark.parametrize(
    "json_data",
    [
        None,
        {},
        {"objects": []},
        {"objects": [{"type": "Path", "path": []}]},
        {"objects": [{"type": "rect", "left": 1, "top": 1, "width": 5, "height": 5}]},
    ],
)
def test_nothing_drawn_gives_no_strokes(json_data):
    assert canvas.objects_to_strokes(json_data) == []


def test_path_without_placement_is_taken_as_is():
    assert canvas.objects_to_strokes({"objects": [{"type": "path", "path": [["M", 1, 2], ["L", 3, 4]]}]}) == [
        [[1.0, 3.0], [2.0, 4.0]]
    ]


def test_box_center_uses_the_curve_not_its_control_points():
    # The control point (100, 0) pulls the curve only half-way up: its top is at y = 50.
    cx, cy = canvas.path_box_center([["M", 0, 100], ["Q", 100, 0, 200, 100]])
    assert (cx, cy) == pytest.approx((100, 75))


def test_strokes_are_accepted_by_the_shared_parser():
    from sketch.strokes import parse_strokes

    parsed = parse_strokes(canvas.objects_to_strokes(DRAWN))
    assert [len(s) for s in parsed] == [8, 4]
