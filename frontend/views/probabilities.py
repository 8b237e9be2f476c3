"""Probabilities: every class's probability for the current drawing, and what the model saw."""

from __future__ import annotations

import base64

import streamlit as st

import api_client
import ui
from api_client import ApiError

# Friendlier names for the kinds we know; any other model the API lists is shown by its own name.
TITLES = {"cnn": "CNN (bitmap)", "rnn": "RNN (strokes)", "ensemble": "Ensemble"}


def title(name: str) -> str:
    return TITLES.get(name, name)


def metrics_line(meta: dict | None) -> None:
    metrics = (meta or {}).get("metrics") or {}
    cols = st.columns(3)
    for col, (key, heading) in zip(cols, (("top1", "Top-1"), ("top5", "Top-5"), ("macro_f1", "Macro F1")), strict=True):
        value = metrics.get(key)
        col.metric(f"{heading} (test)", "n/a" if value is None else f"{value:.1%}")


st.title("Probabilities")
drawing = st.session_state.get("drawing")
if not drawing:
    st.info("Nothing drawn yet: draw something first, then come back here.", icon=":material/draw:")
    st.page_link("views/draw.py", label="Go to Draw", icon=":material/brush:")
    st.stop()

try:
    info = api_client.models()
    max_top_k = api_client.limits()["max_top_k"]
except ApiError as exc:
    ui.show_api_error(exc, "probabilities_models")
    st.stop()

available = info["available"]
answers: dict[str, dict] = {}
for name in available:
    n_classes = len(info["models"][name]["classes"])
    try:
        answers[name] = api_client.predict(drawing["strokes"], name, min(n_classes, max_top_k), name == "cnn")
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
        meta = info["models"][name]
        st.subheader(title(name))
        st.caption(f"`{name}` version `{answers[name]['model']['version']}`, served with {meta['runtime']}")
        metrics_line(meta)

st.divider()
columns = st.columns(len(available), gap="medium")
for col, name in zip(columns, available, strict=True):
    with col:
        predictions = answers[name]["predictions"]
        st.markdown(f"**{title(name)}**: {ui.describe(predictions[:3])}")
        ui.guesses_chart(predictions, bar_height=18)
        n_classes = len(info["models"][name]["classes"])
        if len(predictions) < n_classes:
            st.caption(f"The {len(predictions)} most likely of {n_classes} classes (the API's top_k limit).")
