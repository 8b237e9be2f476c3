"""From what streamlit-drawable-canvas (0.13, Fabric.js 6) sends back to Quick, Draw! strokes.

A freedraw stroke is a ``path`` object whose commands are ``["M", x, y]``, then
``["Q", cx, cy, x, y]`` per segment (the control point is a raw mouse sample, the end point
the middle of two samples) and a closing ``["L", x, y]``. Every one of those points lies on the
polyline of the samples, so taking them in order gives the stroke the player drew.

Coordinates stay in canvas pixels: the API normalises strokes exactly like the dataset, and the
same conversion happens for every page.
"""

from __future__ import annotations

import math

# Where an object's ``left``/``top`` sit on its box, for each Fabric origin.
_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


def path_points(path: list) -> list[tuple[float, float]]:
    """The points of one Fabric path, in drawing order (curves as their control and end points)."""
    points = []
    for command in path:
        if not command or not isinstance(command[0], str):
            continue
        numbers = [float(v) for v in command[1:]]
        points += list(zip(numbers[0::2], numbers[1::2], strict=False))
    return points


def path_box_center(path: list) -> tuple[float, float]:
    """Centre of the path's bounding box as Fabric computes it: the curves' extent, not their control points."""
    xs, ys = [], []
    here = (0.0, 0.0)
    for command in path:
        if not command or not isinstance(command[0], str):
            continue
        op, numbers = command[0], [float(v) for v in command[1:]]
        if op == "Q" and len(numbers) == 4:
            (cx, cy), end = numbers[:2], (numbers[2], numbers[3])
            for axis, (a, b, c) in enumerate(((here[0], cx, end[0]), (here[1], cy, end[1]))):
                # A quadratic Bezier's extremum along one axis, where its derivative is zero.
                denominator = a - 2 * b + c
                t = (a - b) / denominator if denominator else -1.0
                if 0.0 < t < 1.0:
                    value = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c
                    (xs if axis == 0 else ys).append(value)
            here = end
        elif len(numbers) >= 2:
            here = (numbers[-2], numbers[-1])
        else:
            continue
        xs.append(here[0])
        ys.append(here[1])
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def _transform(obj: dict, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Apply the move/scale/rotation the edit toggle may have given the object since it was drawn.

    Fabric keeps the path in the coordinates it was drawn in and places the object by its box:
    ``left``/``top`` at the origin, size ``(width + strokeWidth) * scale``. A stroke that was
    never edited comes back unchanged.
    """
    if "left" not in obj or "width" not in obj:
        return points
    cx0, cy0 = path_box_center(obj["path"])
    sx, sy = float(obj.get("scaleX", 1) or 1), float(obj.get("scaleY", 1) or 1)
    stroke = float(obj.get("strokeWidth", 0) or 0)
    box_w = (float(obj["width"]) + stroke) * sx
    box_h = (float(obj.get("height", 0)) + stroke) * sy
    angle = math.radians(float(obj.get("angle", 0) or 0))
    cos, sin = math.cos(angle), math.sin(angle)
    # The box's centre: from the origin corner, half the box along the rotated axes.
    ox = 0.5 - _ORIGIN.get(obj.get("originX", "left"), 0.0)
    oy = 0.5 - _ORIGIN.get(obj.get("originY", "top"), 0.0)
    cx = float(obj["left"]) + ox * box_w * cos - oy * box_h * sin
    cy = float(obj.get("top", 0)) + ox * box_w * sin + oy * box_h * cos
    if obj.get("flipX"):
        sx = -sx
    if obj.get("flipY"):
        sy = -sy
    out = []
    for x, y in points:
        dx, dy = (x - cx0) * sx, (y - cy0) * sy
        out.append((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos))
    return out


def objects_to_strokes(json_data: dict | None, decimals: int = 1) -> list[list[list[float]]]:
    """Fabric canvas JSON -> ``[[[x...], [y...]], ...]``, one stroke per freedraw path, in drawing order.

    Objects that are not paths (none in freedraw mode) and paths without points are skipped.
    """
    strokes = []
    for obj in (json_data or {}).get("objects") or []:
        if str(obj.get("type", "")).lower() != "path" or not obj.get("path"):
            continue
        points = path_points(obj["path"])
        if not points:
            continue
        points = _transform(obj, points)
        strokes.append([[round(x, decimals) for x, _ in points], [round(y, decimals) for _, y in points]])
    return strokes
