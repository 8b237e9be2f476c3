"""Probabilities: every model's answer for the current drawing, and what the CNN saw.

Each model shows its most likely classes as a chart and every class in a table beneath (a chart of
all 345 rows per model made the page seconds slow and screens long).
"""

from __future__ import annotations

import base64

import pandas as pd
import streamlit as st

import api_client
import ui
from api_client import ApiError

# Friendlier names for the kinds we know; any other model the API lists is shown by its own name.
TITLES = {"cnn": "CNN (bitmap)", "rnn": "RNN (strokes)", "ensemble": "Ensemble", "prototypes": "Player's model"}
CHARTED = 10  # classes per model in the chart; the table has them all


def title(name: str) -> str:
    return TITLES.get(name, name)


def model_rows(info: dict, answers: dict[str, dict]) -> pd.DataFrame:
    """One row per model: its version, runtime and test metrics from its card."""
    rows = []
    for name, answer in answers.items():
        meta = info["models"][name]
        metrics = meta.get("metrics") or {}
        row = {"model": title(name), "version": answer["model"]["version"], "runtime": meta["runtime"]}
        for key, heading in (("top1", "top-1 (test)"), ("top5", "top-5 (test)"), ("macro_f1", "macro F1")):
            row[heading] = "n/a" if metrics.get(key) is None else f"{metrics[key]:.1%}"
        rows.append(row)
    return pd.DataFrame(rows)


def every_class(predictions: list[dict]) -> None:
    table = pd.DataFrame(
        {"class": [p["label"] for p in predictions], "probability": [p["probability"] for p in predictions]}
    )
    config = {"probability": st.column_config.ProgressColumn("probability", format="percent", min_value=0, max_value=1)}
    st.dataframe(table, hide_index=True, column_config=config, width="stretch", height=280)


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

drawn, seen = st.columns(2, gap="medium")
if drawing["image"]:
    drawn.image(base64.b64decode(drawing["image"]), caption="Your drawing", width=168)
bitmap = answers.get("cnn", {}).get("bitmap")
if bitmap:
    seen.image(ui.bitmap_image(bitmap), caption="The 28x28 the CNN saw", width=168)
st.dataframe(model_rows(info, answers), hide_index=True, width="stretch")

st.divider()
columns = st.columns(len(available), gap="medium")
for col, name in zip(columns, available, strict=True):
    with col:
        predictions = answers[name]["predictions"]
        st.subheader(title(name))
        st.caption(ui.text(ui.describe(predictions[:3])))
        ui.guesses_chart(predictions[:CHARTED], bar_height=22)
        n_classes = len(info["models"][name]["classes"])
        with st.expander("Every class"):
            every_class(predictions)
        if len(predictions) < n_classes:
            st.caption(f"The {len(predictions)} most likely of {n_classes} classes (the API's top_k limit).")
