"""Teach: name a new thing, draw a few examples, and the model guesses it from then on."""

from __future__ import annotations

import streamlit as st

import api_client
import ui
from api_client import ApiError

MIN_EXAMPLES, MAX_EXAMPLES = 3, 50
THUMBNAIL = 64  # px, each example drawn so far

state = st.session_state
state.setdefault("teach_examples", [])  # strokes of the examples drawn so far
state.setdefault("teach_done", None)  # name of the category just taught
state.setdefault("my_categories", {})  # name -> delete token: categories taught in this browser session


# The category routes are this page's alone, so their calls live here (through the one API client).
def list_categories() -> list[dict]:
    return api_client._call("GET", "/categories")["items"]


def create_category(name: str, drawings: list) -> dict:
    return api_client._call("POST", "/categories", json={"name": name, "drawings": drawings})


def delete_category(name: str, token: str) -> None:
    api_client._request("DELETE", f"/categories/{name}", headers={"X-Delete-Token": token})


def add_example() -> None:
    drawing = state.get("teach_drawing")
    if drawing and drawing["strokes"] and len(state.teach_examples) < MAX_EXAMPLES:
        state.teach_examples.append(drawing["strokes"])
    ui.clear_drawing("teach_drawing")


def start_over() -> None:
    state.teach_examples = []
    ui.clear_drawing("teach_drawing")


st.title("Teach")
st.caption(
    f"Teach the model something new: give it a name, draw {MIN_EXAMPLES} or more examples, "
    "then draw it again and watch it guessed."
)

teach, test = st.columns(2, gap="large")
with teach:
    st.subheader("1. Name it and draw examples")
    name = st.text_input(
        "Name",
        key="teach_name",
        max_chars=40,
        placeholder="e.g. my dog Rex",
        help="Letters, digits, spaces and _ - . ' (the API's rule); not a name the model already knows.",
    )
    drawing = ui.drawing_canvas("teach_drawing")
    n = len(state.teach_examples)
    add, again = st.columns(2)
    add.button(
        "Add this example",
        key="teach_add",
        on_click=add_example,
        disabled=drawing is None or not drawing["strokes"] or n >= MAX_EXAMPLES,
        icon=":material/add:",
    )
    again.button("Start over", key="teach_reset", on_click=start_over, disabled=n == 0, icon=":material/replay:")
    st.write(f"Examples: **{n}** (at least {MIN_EXAMPLES})")
    if state.teach_examples:  # what the model will learn from, so a stray one shows before teaching
        st.image([ui.picture(strokes, None, THUMBNAIL) for strokes in state.teach_examples])
    if st.button(
        "Teach it",
        key="teach_submit",
        type="primary",
        disabled=n < MIN_EXAMPLES or not name.strip(),
        icon=":material/school:",
    ):
        try:
            created = create_category(name, state.teach_examples)
        except ApiError as exc:
            ui.show_api_error(exc, "teach_submit", what="this category")
        else:
            state.teach_examples = []
            state.teach_done = created["name"]
            state.my_categories[created["name"]] = created["delete_token"]
            st.rerun()
    if state.teach_done:
        st.success(f"Learned “{ui.text(state.teach_done)}”. Draw it on the right.", icon=":material/check:")

with test:
    st.subheader("2. Draw it again")
    attempt = ui.drawing_canvas("teach_try")
    st.button("Clear", key="teach_try_clear", on_click=ui.clear_drawing, args=("teach_try",), icon=":material/delete:")
    if attempt is not None and attempt["strokes"]:
        try:
            # The API's default knows every category, taught ones included.
            answer = api_client.predict(attempt["strokes"])
        except ApiError as exc:
            ui.show_api_error(exc, "teach_predict")
        else:
            st.markdown(f"**I think it is: {ui.guess_name(answer['predictions'][0])}**")
            ui.guesses_chart(answer["predictions"])

st.divider()
st.subheader("Taught categories")
try:
    taught_list = list_categories()
except ApiError as exc:
    ui.show_api_error(exc, "teach_list")
    st.stop()
if not taught_list:
    st.info("None yet.")
for item in taught_list:
    label, examples, remove = st.columns([4, 2, 2])
    label.markdown(ui.text(item["name"]))
    examples.write(f"{item['examples']} examples")
    token = state.my_categories.get(item["name"])
    if token is None:
        remove.caption("taught by someone else")  # only its teacher holds the delete token
    elif remove.button("Delete", key=f"teach_delete_{item['name']}", icon=":material/delete:"):
        try:
            delete_category(item["name"], token)
        except ApiError as exc:
            ui.show_api_error(exc, "teach_delete")
        else:
            state.my_categories.pop(item["name"], None)
            if state.teach_done == item["name"]:  # what was just learned, and its guess, are gone
                state.teach_done = None
                ui.clear_drawing("teach_try")
            st.rerun()
