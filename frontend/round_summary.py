"""The Challenge's end screen: each round's drawing with the stroke that decided the guess, how long
the model took, the runner-up guesses, and how other players drew the same prompt."""

from __future__ import annotations

import streamlit as st

import api_client
import explanations
import ui
from api_client import ApiError

PICTURE = 200  # side in pixels of a round's drawing on the end screen
OTHERS_SHOWN = 3  # kept drawings of the prompt shown as "how others drew it"
# Streamlit's bundled icon font: unlike emoji, it shows on every device.
WON, LOST = ":green[:material/check_circle:]", ":red[:material/cancel:]"


def show_round(number: int, prompt: str, won: bool, seconds: float, strokes: list | None) -> None:
    with st.container(border=True):
        left, right = st.columns([1, 2], gap="medium")
        verdict = f"I knew it was {ui.text(prompt)} in {seconds:.1f} s" if won else f"Not recognised: {ui.text(prompt)}"
        right.markdown(f"**Round {number}** · {WON if won else LOST} {verdict}")
        if not strokes:
            right.caption("Nothing was drawn.")
            return
        try:
            answer = api_client.predict(strokes, top_k=3, explain=True)
        except ApiError as exc:
            left.image(ui.picture(strokes, None, PICTURE), width=PICTURE)
            right.caption(f"No explanation: {ui.text(str(exc))}")
            return
        first, *runners_up = answer["predictions"]
        deciding = explanations.most_needed(answer["explanation"])
        left.image(ui.picture(strokes, deciding, PICTURE), width=PICTURE)
        right.markdown(f"My guess: **{ui.text(first['label'])}** ({first['probability']:.0%})")
        if deciding is not None and len(strokes) > 1:
            right.markdown(f"The stroke that decided it (red): {explanations.name_strokes(strokes, [deciding])}.")
        right.markdown(explanations.sentence(strokes, answer["explanation"], quote=ui.text))
        if runners_up:
            right.caption(
                "Runners-up: " + ", ".join(f"{ui.text(p['label'])} {p['probability']:.0%}" for p in runners_up)
            )
        others(prompt, right)


def others(prompt: str, where) -> None:
    """A few drawings players kept of ``prompt`` (GET /submissions?label=), when there are any."""
    try:
        kept = api_client.submissions(label=prompt, limit=OTHERS_SHOWN)["items"]
    except ApiError:
        return
    if not kept:
        return
    where.caption("How others drew it:")
    columns = where.columns(OTHERS_SHOWN)
    for column, item in zip(columns, kept, strict=False):
        try:
            column.image(api_client.thumbnail(item["id"]), width=90)
        except ApiError:
            continue


def show(game: dict) -> None:
    for i, (prompt, won, seconds) in enumerate(zip(game["prompts"], game["results"], game["seconds"], strict=False)):
        drawings = game.get("drawings", [])
        show_round(i + 1, prompt, won, seconds, drawings[i] if i < len(drawings) else None)
