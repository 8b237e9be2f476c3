"""Submit: the drawings players kept so far, as a gallery; this browser session's own can be deleted."""

from __future__ import annotations

import math

import streamlit as st

import api_client
import ui
from api_client import ApiError

PAGE_SIZE = 12
COLUMNS = 4
ALL = "All labels"

state = st.session_state
state.setdefault("my_submissions", {})  # id -> delete token (ui.remember_submission)
state.setdefault("gallery_page", 0)


def first_page() -> None:
    state.gallery_page = 0


def delete(submission_id: int) -> None:
    try:
        api_client.delete_submission(submission_id, state.my_submissions[submission_id])
    except ApiError as exc:
        state.gallery_error = str(exc)
        return
    del state.my_submissions[submission_id]
    state.gallery_deleted = submission_id


def guess_then(item: dict) -> str:
    predictions = item.get("predictions") or []
    if not predictions:
        return "no guess recorded"
    best = predictions[0]
    return f"guessed {ui.text(best['label'])} ({best['probability']:.0%})"


st.title("Submit")
st.caption(
    "Drawings kept to train the next model. Keep yours with one click on the Draw or Challenge page; "
    "the ones you kept in this browser session can be deleted here. Only the strokes, the label (and "
    "who gave it), the model's guess and the date are stored."
)

if deleted := state.pop("gallery_deleted", None):
    st.success(f"Submission #{deleted} is deleted.", icon=":material/delete:")
if error := state.pop("gallery_error", None):
    st.error(f"Could not delete it: {ui.text(str(error))}", icon=":material/error:")

try:
    counts = api_client.submission_labels()
except ApiError as exc:
    ui.show_api_error(exc, "gallery_labels")
    st.stop()

options = [ALL, *sorted(counts)]
label = st.selectbox("Label", options, key="gallery_label", on_change=first_page)
try:
    page = api_client.submissions(None if label == ALL else label, PAGE_SIZE, state.gallery_page * PAGE_SIZE)
except ApiError as exc:
    ui.show_api_error(exc, "gallery_page")
    st.stop()

pages = max(1, math.ceil(page["total"] / PAGE_SIZE))
if not page["items"]:
    st.info(
        "No drawings kept yet." if label == ALL else f"No drawings of {ui.text(label)} yet.", icon=":material/draw:"
    )
for start in range(0, len(page["items"]), COLUMNS):
    for col, item in zip(st.columns(COLUMNS), page["items"][start : start + COLUMNS], strict=False):
        with col.container(border=True):
            try:
                st.image(api_client.thumbnail(item["id"]), width=112)
            except ApiError:
                st.caption("(no thumbnail)")
            st.markdown(f"**{ui.text(item['label'])}** · #{item['id']}")
            st.caption(f"{guess_then(item)} · {item['created_at'][:10]}")
            if item["id"] in state.my_submissions:
                st.button(
                    "Delete",
                    key=f"gallery_delete_{item['id']}",
                    on_click=delete,
                    args=(item["id"],),
                    icon=":material/delete:",
                )

previous, where, following = st.columns([1, 2, 1], vertical_alignment="center")
previous.button(
    "Previous",
    key="gallery_previous",
    disabled=state.gallery_page == 0,
    on_click=lambda: state.update(gallery_page=state.gallery_page - 1),
)
where.caption(f"Page {state.gallery_page + 1} of {pages} · {page['total']} drawings")
following.button(
    "Next",
    key="gallery_next",
    disabled=state.gallery_page + 1 >= pages,
    on_click=lambda: state.update(gallery_page=state.gallery_page + 1),
)
