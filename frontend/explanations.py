"""An explanation (the API's ``"explain": true``) in words a player reads: which stroke, and what then."""

from __future__ import annotations

from collections.abc import Callable

# Part of the drawing a stroke sits in, by where its middle falls in the drawing's box (thirds).
_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "centre", "right")


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def place(strokes: list, index: int) -> str:
    """Where stroke ``index`` is in the drawing: 'top left', 'middle', 'bottom centre'..."""
    xs = [x for stroke in strokes for x in stroke[0]]
    ys = [y for stroke in strokes for y in stroke[1]]
    sx, sy = strokes[index][0], strokes[index][1]
    cx, cy = (min(sx) + max(sx)) / 2, (min(sy) + max(sy)) / 2

    def third(value: float, lo: float, hi: float) -> int:
        return min(int(3 * (value - lo) / (hi - lo)), 2) if hi > lo else 1

    row, column = _ROWS[third(cy, min(ys), max(ys))], _COLUMNS[third(cx, min(xs), max(xs))]
    if row == "middle":
        return "middle" if column == "centre" else column
    return row if column == "centre" else f"{row} {column}"


def name_strokes(strokes: list, indices: list[int]) -> str:
    """'your 3rd stroke (top left)', 'your 2nd and 5th strokes'."""
    if len(indices) == 1:
        (i,) = indices
        return f"your {ordinal(i + 1)} stroke ({place(strokes, i)})"
    return "your " + " and ".join(ordinal(i + 1) for i in indices) + " strokes"


def most_needed(explanation: dict) -> int | None:
    """The stroke whose removal lowers the top guess most, when removing it lowers it at all."""
    parts = [p for p in explanation.get("strokes") or [] if p["drop"] > 0]
    return max(parts, key=lambda p: p["drop"])["index"] if parts else None


def sentence(strokes: list, explanation: dict, quote: Callable[[str], str] = str) -> str:
    """The counterfactual in words ("Without your 3rd stroke (top left) I'd say: frog."), or why there
    is none. Each label goes through ``quote`` (a page escapes what players named)."""
    counterfactual = explanation.get("counterfactual")
    if counterfactual:
        without = name_strokes(strokes, counterfactual["remove"])
        return f"Without {without} I'd say: {quote(counterfactual['label'])}."
    label = quote(explanation["label"])
    if len(strokes) == 1:
        return f"Your one stroke is all I need to say {label}."
    return f"No stroke or two alone decides it: without any of them I'd still say {label}."
