"""Pieces every page uses: the drawing canvas kept in the session, the guesses chart, API messages."""

from __future__ import annotations

import base64

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from api_client import ApiError, ApiRejected
from canvas import objects_to_strokes

CANVAS_SIZE = 360
# Thick enough for the image fallback to look like the dataset's strokes once shrunk to 28x28.
STROKE_WIDTH = 10


def drawing_canvas(name: str, disabled: bool = False) -> dict | None:
    """A freedraw canvas whose drawing is kept in ``st.session_state[name]``.

    The drawing is ``{"strokes", "canvas", "image", "json"}`` (strokes in canvas pixels, the PNG
    as base64), or ``None`` while the canvas is empty. It outlives the canvas: coming back from
    another page mounts a new canvas that starts from it.
    """
    state = st.session_state
    state.setdefault(f"{name}_generation", 0)
    key = f"{name}_canvas_{state[f'{name}_generation']}"
    if key not in state:
        # A new canvas (first visit, back from another page, or cleared): start from the kept drawing.
        # The initial drawing then stays the same object, so the canvas is not reloaded while drawing.
        kept = state.get(name)
        state[f"{name}_initial"] = kept["json"] if kept else None
    st.space(40)  # room for the canvas' own toolbar, which sits just above it
    result = st_canvas(
        stroke_width=STROKE_WIDTH,
        stroke_color="#000000",
        background_color="#FFFFFF",
        width=CANVAS_SIZE,
        height=CANVAS_SIZE,
        drawing_mode="freedraw",
        initial_drawing=state[f"{name}_initial"],
        return_image_data=True,
        disabled=disabled,
        key=key,
    )
    strokes = objects_to_strokes(result.json_data)
    image = result.image_bytes
    drawing = None
    if strokes or (result.json_data is None and image):
        drawing = {
            "strokes": strokes or None,
            "canvas": {"width": CANVAS_SIZE, "height": CANVAS_SIZE},
            "image": base64.b64encode(image).decode("ascii") if image else None,
            "json": result.json_data,
        }
    state[name] = drawing
    return drawing


def clear_drawing(name: str) -> None:
    """Button callback: forget the drawing and mount a fresh, empty canvas."""
    st.session_state[f"{name}_generation"] = st.session_state.get(f"{name}_generation", 0) + 1
    st.session_state[name] = None


def describe(predictions: list[dict]) -> str:
    return ", ".join(f"{p['label']} {p['probability']:.0%}" for p in predictions)


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


def bitmap_image(bitmap: list[list[int]], scale: int = 6) -> np.ndarray:
    """The 28x28 the model saw, enlarged by whole pixels so it stays sharp."""
    arr = np.asarray(bitmap, dtype=np.uint8)
    return np.kron(arr, np.ones((scale, scale), dtype=np.uint8))


def show_api_error(exc: ApiError, key: str) -> None:
    """An API failure as a message; a refusal is about the drawing, anything else about the API."""
    if isinstance(exc, ApiRejected):
        st.warning(f"The API refused this drawing: {exc}", icon=":material/edit_off:")
        return
    message = str(exc).rstrip()
    if not message.endswith((".", "!", "?")):
        message += "."
    st.error(f"{message} The page will work again as soon as the API is back.", icon=":material/cloud_off:")
    st.button("Try again", key=f"{key}_retry", icon=":material/refresh:")
