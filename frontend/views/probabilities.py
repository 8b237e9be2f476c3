"""Probabilities: every class's probability for the current drawing, and what the model saw."""

from __future__ import annotations

import base64
import re

import streamlit as st

import api_client
import ui
from api_client import ApiError, ApiRejected

TITLES = {"cnn": "CNN (bitmap)", "rnn": "RNN (strokes)", "ensemble": "Ensemble"}


def distribution(drawing: dict, model: str, n_classes: int, return_bitmap: bool) -> dict:
    """All the classes, sorted; if the API caps ``top_k`` below the class count, as many as it allows."""
    strokes = drawing["strokes"]
    image = None if strokes else drawing["image"]
    try:
        return api_client.predict(strokes, image, model, n_classes, return_bitmap)
    except ApiRejected as exc:
        cap = re.search(r"top_k must be between 1 and (\d+)", str(exc))
        if not cap:
            raise
        return api_client.predict(strokes, image, model, int(cap.group(1)), return_bitmap)


def metrics_line(meta: dict | None) -> None:
    metrics = (meta or {}).get("metrics") or {}
    cols = st.columns(3)
    for col, (key, title) in zip(cols, (("top1", "Top-1"), ("top5", "Top-5"), ("macro_f1", "Macro F1")), strict=True):
        value = metrics.get(key)
        col.metric(f"{title} (test)", "n/a" if value is None else f"{value:.1%}")


st.title("Probabilities")
drawing = st.session_state.get("drawing")
if not drawing:
    st.info("Nothing drawn yet: draw something first, then come back here.", icon=":material/draw:")
    st.page_link("views/draw.py", label="Go to Draw", icon=":material/brush:")
    st.stop()

try:
    info = api_client.models()
except ApiError as exc:
    ui.show_api_error(exc, "probabilities_models")
    st.stop()

# The RNN and the ensemble read strokes: without strokes (an image fallback) only the CNN can answer.
available = [n for n in TITLES if n in info["available"] and (n == "cnn" or drawing["strokes"])]
cnn_meta = info["models"].get("cnn") or {}
answers: dict[str, dict] = {}
for name in available:
    meta = info["models"].get(name) or cnn_meta  # the ensemble answers with the CNN's classes
    try:
        answers[name] = distribution(drawing, name, len(meta.get("classes") or []) or 5, name == "cnn")
    except ApiError as exc:
        ui.show_api_error(exc, f"probabilities_{name}")
        st.stop()

drawn, seen, about = st.columns([1, 1, 3], gap="medium")
if drawing["image"]:
    drawn.image(base64.b64decode(drawing["image"]), caption="Your drawing", width=168)
bitmap = answers.get("cnn", {}).get("bitmap")
if bitmap:
    seen.image(ui.bitmap_image(bitmap), caption="The 28x28 the CNN saw", width=168)
with about:
    for name in available:
        meta = info["models"].get(name)
        version = answers[name]["model"]["version"]
        st.subheader(TITLES[name])
        st.caption(f"`{name}` version `{version}`" + (f", served with {meta['runtime']}" if meta else ""))
        if meta:
            metrics_line(meta)

st.divider()
columns = st.columns(len(available), gap="medium")
for col, name in zip(columns, available, strict=True):
    with col:
        predictions = answers[name]["predictions"]
        st.markdown(f"**{TITLES[name]}**: {ui.describe(predictions[:3])}")
        ui.guesses_chart(predictions, bar_height=18)
        n_classes = len((info["models"].get(name) or cnn_meta).get("classes") or [])
        if len(predictions) < n_classes:
            st.caption(f"The {len(predictions)} most likely of {n_classes} classes (the API's top_k limit).")
