"""Challenge: six 20-second rounds; a round ends on "I know, it's …!" the moment the model is sure."""

from __future__ import annotations

import contextlib
import json
import time

import streamlit as st

import api_client
import game_rules
import leaderboard
import round_summary
import ui
from api_client import ApiError

ROUNDS = 6
ROUND_SECONDS = 20

state = st.session_state
state.setdefault("challenge", {"phase": "idle"})
state.setdefault("challenge_saved", {})  # strokes (as JSON) -> id of the stored submission
game = state.challenge


def with_article(label: str) -> str:
    """'a cat', 'an owl', 'an hourglass', 'The Mona Lisa', 'scissors'."""
    plural = label.endswith("s") and not label.endswith(("ss", "us"))
    if label.lower().startswith("the ") or plural:
        return label
    vowel = label[0].lower() in "aeiou" or label.lower().startswith("hour")  # the h of "hour" is silent
    return f"{'an' if vowel else 'a'} {label}"


def start_round() -> None:
    ui.clear_drawing("challenge_drawing")
    game.update(phase="playing", started=time.time(), skipped=False)


def start_game(spec: dict) -> None:
    game.clear()
    game.update(
        prompts=game_rules.pick_prompts(spec, ROUNDS), round=0, score=0, results=[], seconds=[], drawings=[], spec=spec
    )
    start_round()


def end_round(won: bool) -> None:
    drawing = state.get("challenge_drawing")
    game["drawings"].append(drawing["strokes"] if drawing else None)  # for the end screen
    game["results"].append(won)
    game["seconds"].append(min(time.time() - game["started"], ROUND_SECONDS) if won else ROUND_SECONDS)
    game["score"] += int(won)
    game["phase"] = "done"


def skip_round() -> None:
    game["skipped"] = True
    end_round(False)


def next_round() -> None:
    if game["round"] + 1 >= ROUNDS:
        game["phase"] = "over"
    else:
        game["round"] += 1
        start_round()


def check_deadline() -> None:
    """Checked on every run and every drawing sent, not only by the clock: a stroke sent too late does not count."""
    if game["phase"] == "playing" and time.time() - game["started"] > ROUND_SECONDS:
        end_round(False)


def guesses(drawing: dict) -> list[dict]:
    """The model's guesses for a drawing, asked once per drawing (the pad's callback, then the page)."""
    fingerprint = json.dumps(drawing["strokes"])
    if game.get("judged", {}).get("strokes") != fingerprint:
        game["judged"] = {
            "strokes": fingerprint,
            "predictions": api_client.predict(drawing["strokes"], top_k=3)["predictions"],
        }
    return game["judged"]["predictions"]


def judge(predictions: list[dict]) -> None:
    """Ends a round being played when the prompt is recognised."""
    prompt = game["prompts"][game["round"]]
    if game["phase"] == "playing" and game_rules.is_win(prompt, predictions, game["spec"]["threshold"]):
        end_round(True)
        game["celebrate"] = True


def on_drawing(drawing: dict) -> None:
    """The pad sent a drawing: judged before the page runs, so that the pad it draws is already
    disabled when the prompt was recognised (an error is left for the page to show)."""
    check_deadline()
    with contextlib.suppress(ApiError):
        judge(guesses(drawing))


def i_see(predictions: list[dict]) -> str:
    """The game's running commentary: "I see cat, or dog, or house…"."""
    first, *rest = [p["label"] for p in predictions]
    return f"I see {first}" + "".join(f", or {label}" for label in rest) + "…"


def countdown() -> None:
    """The clock; it ends the round (with a full rerun) when the time is up."""
    if game.get("phase") != "playing":
        return
    left = ROUND_SECONDS - (time.time() - game["started"])
    if left <= 0:
        end_round(False)
        st.rerun()
    st.progress(left / ROUND_SECONDS, text=f"{left:.0f} s left")


def outcome() -> None:
    """How the round ended, and the way on."""
    prompt = game["prompts"][game["round"]]
    if game["results"][-1]:
        st.success(f"I know, it's {with_article(prompt)}!", icon=":material/celebration:")
    else:
        why = "Skipped" if game.get("skipped") else "Time is up"
        seen = f"the model did not see {with_article(prompt)}" if game["drawings"][-1] else "nothing was drawn"
        st.warning(f"{why}: {seen}.", icon=":material/timer_off:")
    last = game["round"] + 1 >= ROUNDS
    st.button(
        "See the score" if last else "Next round",
        key="challenge_next",
        on_click=next_round,
        type="primary",
        icon=":material/arrow_forward:",
    )


st.title("Challenge")

if game["phase"] in ("idle", "over"):
    if game["phase"] == "over":
        st.subheader(f"Game over: you scored {game['score']} out of {ROUNDS}")
        st.markdown(" ".join(round_summary.WON if won else round_summary.LOST for won in game["results"]))
        leaderboard.save_form(game)
        round_summary.show(game)
    else:
        st.markdown(
            f"{ROUNDS} rounds. Each round names something to draw; you have {ROUND_SECONDS} seconds "
            "to make the model recognise it."
        )
    try:
        spec = api_client.challenge()
    except ApiError as exc:
        ui.show_api_error(exc, "challenge_classes")
        st.stop()
    label = "Play again" if game["phase"] == "over" else "Start"
    st.button(label, key="challenge_start", on_click=start_game, args=(spec,), type="primary", icon=":material/timer:")
    leaderboard.table()
    st.stop()

prompt = game["prompts"][game["round"]]
check_deadline()

# Filled at the end of the run, once this run's drawing has been judged: the score is then up to date.
header = st.container()

left, right = st.columns([5, 4], gap="large")
with left:
    drawing = ui.drawing_canvas(
        "challenge_drawing",
        disabled=game["phase"] != "playing",
        prompt=prompt,
        prompt_text=with_article(prompt),
        threshold=game["spec"]["threshold"],
        speak=state.get("challenge_speak", False),
        on_drawing=on_drawing,
    )
    st.toggle("Speak the guesses", key="challenge_speak", help="Uses your browser's speech synthesis.")

with right:
    predictions = None
    if drawing is not None:
        try:
            predictions = guesses(drawing)
        except ApiError as exc:
            ui.show_api_error(exc, "challenge_predict")
    if predictions:
        judge(predictions)
        if game.pop("celebrate", False):
            st.balloons()
        if not (game["phase"] == "done" and game["results"][-1]):
            st.markdown(ui.text(i_see(predictions)))  # "I know" replaces it once the round is won
        ui.guesses_chart(predictions)
    elif game["phase"] == "playing" and drawing is None:
        st.info("Start drawing: the model guesses while you draw.", icon=":material/draw:")

    if drawing is not None:
        fingerprint = json.dumps(drawing["strokes"])
        saved = state.challenge_saved.get(fingerprint)
        if st.button(
            f"Submit as “{prompt}”", key="challenge_submit", disabled=saved is not None, icon=":material/save:"
        ):
            try:
                # The button names the prompt: clicking it confirms the label.
                stored = api_client.submit(prompt, "confirmed", drawing["strokes"], drawing["canvas"], predictions)
            except ApiError as exc:
                ui.show_api_error(exc, "challenge_submit")
            else:
                state.challenge_saved[fingerprint] = stored["id"]
                ui.remember_submission(stored)
                st.rerun()  # so the button shows as done
        if saved is not None:
            st.success(f"Saved as submission #{saved}.", icon=":material/check:")
    # Away from Skip, below the pad on a phone: one stray tap must not throw the game away.
    st.button("New game", key="challenge_restart", on_click=start_game, args=(game["spec"],), icon=":material/replay:")

with header:
    heading, skip = st.columns([4, 1], vertical_alignment="bottom")
    heading.subheader(f"Draw: {with_article(prompt)}")
    heading.caption(f"Round {game['round'] + 1} of {ROUNDS} · score {game['score']}")
    if game["phase"] == "playing":
        skip.button("Skip", key="challenge_skip", on_click=skip_round, icon=":material/skip_next:")
    else:
        outcome()  # above the pad, which fills a phone's screen
    # Ticks every second while a round runs, and redraws only itself.
    st.fragment(countdown, run_every=1 if game["phase"] == "playing" else None)()
