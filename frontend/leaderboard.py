"""The Challenge page's leaderboard: a name entered at the end of a game, and the best scores so far.

Scores are self-reported by this app (the API checks names and bounds, not how a game was played).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import api_client
import ui
from api_client import ApiError


def save_form(game: dict) -> None:
    """Once per finished game: a name, and the score goes to ``POST /scores``."""
    if game.get("score_id") is not None:
        st.success(
            f"Your score is on the leaderboard as {ui.text(game['score_name'])}.", icon=":material/emoji_events:"
        )
        return
    with st.form("leaderboard_form", border=False):
        name = st.text_input(
            "Your name for the leaderboard",
            max_chars=24,
            key="leaderboard_name",
            help="1-24 letters, digits, spaces, _ - . or ' ; only this name is stored with the score.",
        )
        submitted = st.form_submit_button("Save my score", key="leaderboard_save", icon=":material/emoji_events:")
    if submitted:
        try:
            saved = api_client.post_score(
                name.strip(), game["score"], len(game["results"]), round(sum(game["seconds"]), 2)
            )
        except ApiError as exc:
            ui.show_api_error(exc, "leaderboard_save_error", what="this score")
        else:
            game.update(score_id=saved["id"], score_name=saved["name"])
            st.rerun()


def table(limit: int = 10) -> None:
    """``GET /scores``: the best games, most rounds won first, then the fastest."""
    st.subheader("Leaderboard")
    try:
        items = api_client.scores(limit)
    except ApiError as exc:
        ui.show_api_error(exc, "leaderboard_table", what="the leaderboard request")
        return
    if not items:
        st.caption("No scores yet: be the first.")
        return
    rows = pd.DataFrame(
        {
            "Name": [s["name"] for s in items],
            "Won": [f"{s['rounds_won']} / {s['rounds_played']}" for s in items],
            "Time (s)": [round(s["total_seconds"], 1) for s in items],
            "Date": [s["created_at"][:10] for s in items],
        }
    )
    rows.index = range(1, len(rows) + 1)
    st.dataframe(rows, key="leaderboard_rows", width="stretch")
    st.caption("Each score is a game's, saved by its player at the end.")
