"""Draw: sketch on the pad; the guesses change while you draw, and at every pen lift the top-5 chart
and why: the strokes coloured by how much the guess needs them, and what it would be without them."""

from __future__ import annotations

import json

import streamlit as st

import api_client
import explanations
import ui
from api_client import ApiError

state = st.session_state
state.setdefault("drawing", None)
state.setdefault("draw_saved", {})  # strokes (as JSON) -> id of the stored submission


def clear() -> None:
    ui.clear_drawing("drawing")
    state.pop("draw_label", None)  # a new drawing starts from its own top guess


def explained(drawing: dict) -> dict:
    """The answer with its explanation: the one the pad asked the API for at the pen lift (to colour
    the strokes) when it has it, so each pen lift is explained once, else the API's own."""
    answer = drawing.get("answer")
    if isinstance(answer, dict) and answer.get("predictions") and isinstance(answer.get("explanation"), dict):
        return answer
    return api_client.predict(drawing["strokes"], explain=True)


st.title("Draw")
st.caption("Sketch one thing with the mouse or a finger; the model guesses while you draw.")

left, right = st.columns([5, 4], gap="large")
with left:
    drawing = ui.drawing_canvas("drawing", explain=True)
    st.button("Clear", key="draw_clear", on_click=clear, icon=":material/delete:")

with right:
    if drawing is None:
        # Asked before anything is drawn, so a player learns at once that the API is down.
        try:
            api_client.models()
        except ApiError as exc:
            ui.show_api_error(exc, "draw_status")
            st.stop()
        st.info("Draw something: a cat, an airplane, a house...", icon=":material/draw:")
        st.stop()
    try:
        answer = explained(drawing)
    except ApiError as exc:
        ui.show_api_error(exc, "draw_predict")
        st.stop()

    predictions = answer["predictions"]
    top = predictions[0]
    st.subheader(f"I think it is: {ui.guess_name(top)}")
    st.markdown(explanations.sentence(drawing["strokes"], answer["explanation"], quote=ui.text))
    if answer is drawing.get("answer"):  # the pad coloured the strokes by this answer
        st.caption(
            "On the pad, red strokes are the ones the guess needs most; grey ones hardly matter; "
            "blue ones make me doubt it."
        )
    ui.guesses_chart(predictions)
    st.caption(f"Model {answer['model']['name']} {answer['model']['version']}")

    st.divider()
    st.markdown("**Keep this drawing** to help train the next model.")
    fingerprint = json.dumps(drawing["strokes"])
    try:
        labels = api_client.classes()
    except ApiError:
        labels = [p["label"] for p in predictions]
    with st.form("draw_submit_form", border=False):
        label = st.selectbox(
            "What is it?",
            labels,
            index=None,
            placeholder=f"{top['label']} (the top guess)",
            key="draw_label",
        )
        submitted = st.form_submit_button(
            "Submit",
            key="draw_submit",
            icon=":material/save:",
            type="primary",
            disabled=fingerprint in state.draw_saved,
        )
    if submitted:
        # A label picked from the list is the player's; submitting the shown top guess confirms it.
        source = "player" if label else "confirmed"
        label = label or top["label"]
        try:
            saved = api_client.submit(label, source, drawing["strokes"], drawing["canvas"], predictions)
        except ApiError as exc:
            ui.show_api_error(exc, "draw_submit")
        else:
            state.draw_saved[fingerprint] = saved["id"]
            ui.remember_submission(saved)
            st.rerun()  # so the button shows as done
    if fingerprint in state.draw_saved:
        st.success(f"Saved as submission #{state.draw_saved[fingerprint]}. Thank you!", icon=":material/check:")
