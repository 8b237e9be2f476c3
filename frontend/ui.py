"""Pieces every page uses: the sketchpad's drawing kept in the session, the guesses chart, API messages."""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw

from api_client import ApiError, ApiRejected
from sketchpad import sketchpad

CANVAS_SIZE = 360
# Thick enough for the drawing's picture (Probabilities page) to look like the dataset's strokes at 28x28.
STROKE_WIDTH = 10
MARKDOWN = set("\\`*_{}[]()<>#+-.!|~:$&")
# Streamlit turns bare addresses ("http://…", "www.…", "a@b.c") into links after markdown escapes
# are read; an invisible word joiner after these characters keeps them from forming one.
LINK_BREAKS = set(":.@")
WORD_JOINER = "\u2060"
DECIDING = (214, 40, 40)  # a picture's highlighted stroke (the one that decided a guess); the others in ink


def drawing_canvas(
    name: str, disabled: bool = False, on_drawing: Callable[[dict], None] | None = None, **game
) -> dict | None:
    """A sketchpad whose drawing is kept in ``st.session_state[name]``.

    The drawing is ``{"strokes", "canvas", "image", "answer"}`` (strokes in canvas pixels, the PNG
    as base64, the API's explained answer when the pad asked for one), or ``None`` while the pad is
    empty. It outlives the pad: coming back from another page mounts a new pad that starts from it.
    ``on_drawing`` gets each drawing the pad sends, kept, before the page runs again. ``game``
    (prompt, prompt_text, threshold, speak, explain) goes to the pad.
    """
    state = st.session_state
    state.setdefault(f"{name}_generation", 0)
    kept = state.get(name)

    def keep(sent: dict) -> None:
        # A new pad has sent nothing yet: it shows the kept drawing, which stays the drawing.
        if sent.get("strokes"):
            state[name] = {
                "strokes": sent["strokes"],
                "canvas": {"width": CANVAS_SIZE, "height": CANVAS_SIZE},
                "image": sent.get("image"),
                "answer": sent.get("answer"),  # the explained answer the pad asked for (Draw page), if any
            }
            if on_drawing is not None:
                on_drawing(state[name])

    sketchpad(
        f"{name}_pad_{state[f'{name}_generation']}",
        size=CANVAS_SIZE,
        line_width=STROKE_WIDTH,
        strokes=kept["strokes"] if kept else None,
        disabled=disabled,
        on_drawing=keep,
        **game,
    )
    return state.get(name)


def clear_drawing(name: str) -> None:
    """Button callback: forget the drawing and mount a fresh, empty canvas."""
    st.session_state[f"{name}_generation"] = st.session_state.get(f"{name}_generation", 0) + 1
    st.session_state[name] = None


def text(value: str) -> str:
    """``value`` shown as itself in Streamlit's markdown (labels come from players): every markdown
    character escaped and every address broken, so nothing in it becomes a link, an image or emphasis."""
    escaped = (f"\\{c}" if c in MARKDOWN else c for c in value)
    return "".join(f"{c}{WORD_JOINER}" if c[-1] in LINK_BREAKS else c for c in escaped)


def describe(predictions: list[dict]) -> str:
    return ", ".join(f"{p['label']} {p['probability']:.0%}" for p in predictions)


def guess_name(prediction: dict) -> str:
    """A guess's label as text, marked when a player taught it."""
    return text(prediction["label"]) + (" (taught)" if prediction.get("kind") == "taught" else "")


def guesses_chart(predictions: list[dict], bar_height: int = 28) -> None:
    """Horizontal bars, best guess on top, each labelled with its percentage."""
    data = pd.DataFrame(predictions)
    bars = (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X(
                "probability:Q",
                scale=alt.Scale(domain=[0, 1.15]),
                axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1], title=None),
            ),
            y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160, labelOverlap=False)),
            tooltip=[alt.Tooltip("label:N"), alt.Tooltip("probability:Q", format=".2%")],
        )
    )
    labels = bars.mark_text(align="left", dx=4).encode(text=alt.Text("probability:Q", format=".1%"))
    # Height is for the whole chart, axis included: one bar_height per class plus the axis.
    chart = (bars + labels).properties(height=bar_height * len(data) + 40)
    # The alt text carries the guesses for screen readers (and for the browser test).
    st.altair_chart(chart, width="stretch", alt=f"Guesses: {describe(predictions)}")


def picture(strokes: list, highlight: int | None, side: int) -> Image.Image:
    """The drawing fitted into a square, the ``highlight`` stroke in red and drawn last (on top)."""
    xs = [x for stroke in strokes for x in stroke[0]]
    ys = [y for stroke in strokes for y in stroke[1]]
    extent = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
    margin = side * 0.08
    scale = (side - 2 * margin) / extent

    def points(stroke: list) -> list[tuple[float, float]]:
        return [
            (margin + (x - min(xs)) * scale, margin + (y - min(ys)) * scale) for x, y in zip(*stroke[:2], strict=True)
        ]

    image = Image.new("RGB", (side, side), "white")
    pen = ImageDraw.Draw(image)
    order = [i for i in range(len(strokes)) if i != highlight] + ([highlight] if highlight is not None else [])
    for i in order:
        colour, line = (DECIDING, 5) if i == highlight else ((0, 0, 0), 3)
        path = points(strokes[i])
        if len(path) == 1:
            path = path * 2  # a dot
        pen.line(path, fill=colour, width=line, joint="curve")
    return image


def bitmap_image(bitmap: list[list[int]], scale: int = 6) -> np.ndarray:
    """The 28x28 the model saw, enlarged by whole pixels so it stays sharp."""
    arr = np.asarray(bitmap, dtype=np.uint8)
    return np.kron(arr, np.ones((scale, scale), dtype=np.uint8))


def show_api_error(exc: ApiError, key: str, what: str = "this drawing") -> None:
    """An API failure as a message; a refusal is about what was sent, anything else about the API."""
    if isinstance(exc, ApiRejected):
        # Its message may quote what a player wrote (a taught name): shown as text, never as markup.
        st.warning(f"The API refused {what}: {text(str(exc))}", icon=":material/edit_off:")
        return
    message = str(exc).rstrip()
    if not message.endswith((".", "!", "?")):
        message += "."
    st.error(f"{text(message)} The page will work again as soon as the API is back.", icon=":material/cloud_off:")
    st.button("Try again", key=f"{key}_retry", icon=":material/refresh:")


def remember_submission(saved: dict) -> None:
    """Keep a stored submission's delete token: this browser session may delete its own drawings."""
    if saved.get("delete_token"):
        st.session_state.setdefault("my_submissions", {})[saved["id"]] = saved["delete_token"]
