"""The Challenge page and its leaderboard, with AppTest against a fake API, and once against the real app."""

from __future__ import annotations

import random
import time

import pytest
from streamlit.testing.v1 import AppTest

import api_client
import game_rules
import round_summary
from tests.utils.fake_api import (
    CAT_STROKES,
    CLASSES,
    CREATED,
    DRAWING,
    THRESHOLD,
    app,
    shifted,
    texts,
)


def start_challenge(fake) -> AppTest:
    at = app("challenge")
    assert not at.exception
    at.button(key="challenge_start").click().run()
    assert not at.exception
    return at


def draw_in_challenge(at: AppTest, drawing: dict = DRAWING) -> AppTest:
    # A new canvas generation mounts a canvas holding this drawing, as if the player had drawn it.
    at.session_state["challenge_drawing"] = drawing
    at.session_state["challenge_drawing_generation"] += 1
    return at.run()


def test_challenge_start_gives_a_prompt(fake):
    at = start_challenge(fake)
    game = at.session_state["challenge"]
    assert game["phase"] == "playing" and game["round"] == 0 and game["score"] == 0
    assert len(game["prompts"]) == 6 and set(game["prompts"]) <= set(CLASSES)
    prompt = game["prompts"][0]
    assert at.subheader[0].value in (f"Draw: a {prompt}", f"Draw: an {prompt}")
    assert "Round 1 of 6" in texts(at)


@pytest.mark.parametrize(
    ("prompt", "heading"),
    [
        ("cat", "Draw: a cat"),
        ("owl", "Draw: an owl"),
        ("scissors", "Draw: scissors"),
        ("octopus", "Draw: an octopus"),
        ("hourglass", "Draw: an hourglass"),
        ("house", "Draw: a house"),
    ],
)
def test_challenge_prompt_wording(fake, prompt, heading):
    at = start_challenge(fake)
    at.session_state["challenge"]["prompts"][0] = prompt
    at.run()
    assert at.subheader[0].value == heading


def test_challenge_new_game(fake):
    at = start_challenge(fake)
    at.session_state["challenge"]["started"] = time.time() - 21
    at.run()
    at.button(key="challenge_restart").click().run()
    game = at.session_state["challenge"]
    assert game["phase"] == "playing" and game["results"] == [] and game["score"] == 0


def test_challenge_ends_on_i_know_at_the_threshold(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top, fake.top_probability = prompt, THRESHOLD
    draw_in_challenge(at)
    assert not at.exception
    game = at.session_state["challenge"]
    assert game["phase"] == "done" and game["score"] == 1 and game["results"] == [True]
    assert 0 < game["seconds"][0] < 20
    assert at.success[0].value.startswith("I know, it's ") and prompt in at.success[0].value
    assert at.get("balloons")


def test_challenge_below_the_threshold_keeps_guessing(fake):
    # The prompt is the top guess but the model is not sure enough yet: "I see …", the round goes on.
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top, fake.top_probability = prompt, THRESHOLD - 0.01
    draw_in_challenge(at)
    assert at.session_state["challenge"]["phase"] == "playing"
    assert f"I see {prompt}, or " in texts(at)
    assert not at.get("balloons")


def test_a_taught_name_among_the_guesses_is_shown_as_text(fake):
    # Players name taught categories: "__boom__ www.evil.com" must not turn bold or into a link.
    at = start_challenge(fake)
    fake.top, fake.top_probability = "__boom__ www.evil.com", 0.3
    draw_in_challenge(at)
    assert not at.exception
    (line,) = [m.value for m in at.markdown if m.value.startswith("I see ")]
    assert line.startswith("I see \\_\\_boom\\_\\_ www\\.\u2060evil\\.\u2060com, or "), line


def test_prompts_come_from_every_category_the_easiest_first():
    spec = {"prompts": [f"c{i}" for i in range(345)], "recall": [1 - i / 345 for i in range(345)]}
    seen: set[str] = set()
    for seed in range(300):
        prompts = game_rules.pick_prompts(spec, 6, random.Random(seed))
        assert len(set(prompts)) == 6
        assert prompts == sorted(prompts, key=spec["prompts"].index)  # most recognisable first
        seen |= set(prompts)
    assert len(seen) > 250  # every part of the list comes up, not only the easy end


def test_challenge_round_not_won_by_another_class(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top = next(c for c in CLASSES if c != prompt)
    draw_in_challenge(at)
    assert at.session_state["challenge"]["phase"] == "playing"
    assert not at.get("balloons")


def test_challenge_round_lost_after_20_seconds(fake):
    at = start_challenge(fake)
    at.session_state["challenge"]["started"] = time.time() - 21
    at.run()
    assert not at.exception
    game = at.session_state["challenge"]
    assert game["phase"] == "done" and game["results"] == [False]
    assert "Time is up" in at.warning[0].value


def test_challenge_a_game_is_six_rounds_with_a_score(fake):
    at = start_challenge(fake)
    for i in range(6):
        game = at.session_state["challenge"]
        if i % 2 == 0:  # win the even rounds, let the odd ones time out
            fake.top = game["prompts"][i]
            # Another drawing each round: answers are cached per drawing, and the fake changes its mind.
            draw_in_challenge(at, shifted(i))
        else:
            game["started"] = time.time() - 21
            at.run()
        at.button(key="challenge_next").click().run()
        assert not at.exception
    assert at.session_state["challenge"]["phase"] == "over"
    assert "you scored 3 out of 6" in at.subheader[0].value

    # The end screen: every round's drawing, why it was guessed, and the runners-up.
    game = at.session_state["challenge"]
    shown = [m.value for m in at.markdown]
    for i, prompt in enumerate(game["prompts"]):
        verdict = f"I knew it was {prompt} in" if i % 2 == 0 else f"Not recognised: {prompt}"
        assert any(m.startswith(f"**Round {i + 1}**") and verdict in m for m in shown), shown
    # The won rounds' drawings, each with its deciding stroke in red; the lost ones had no drawing.
    assert len(at.get("image")) == 3
    assert sum(c.value == "Nothing was drawn." for c in at.caption) == 3
    assert sum(m == "The stroke that decided it (red): your 1st stroke (middle)." for m in shown) == 3
    assert sum(m == "Without your 1st stroke (middle) I'd say: house." for m in shown) == 3
    assert all(b["explain"] is True for b in fake.predict_bodies()[-3:])
    assert any(c.value.startswith("Runners-up: ") for c in at.caption)

    # The leaderboard: a name at the end, then the table from GET /scores.
    at.text_input(key="leaderboard_name").set_value("Ada L.")
    at.button(key="leaderboard_save").click().run()
    assert not at.exception
    (score,) = fake.scores
    assert score["name"] == "Ada L." and score["rounds_won"] == 3 and score["rounds_played"] == 6
    assert 60 < score["total_seconds"] <= 120  # three lost rounds count 20 s each
    assert "on the leaderboard as Ada L\\." in at.success[0].value
    (table,) = at.dataframe
    assert list(table.value["Name"]) == ["Ada L."] and list(table.value["Won"]) == ["3 / 6"]

    at.button(key="challenge_start").click().run()  # play again
    assert at.session_state["challenge"]["phase"] == "playing"


def test_the_end_screen_shows_how_others_drew_the_prompt(fake):
    fake.submissions.append({"id": 7, "label": "cat", "created_at": CREATED, "strokes": CAT_STROKES})
    at = app("challenge")
    at.session_state["challenge"] = {
        "phase": "over", "prompts": ["cat", "dog"], "results": [True, False], "seconds": [3.25, 20.0],
        "drawings": [CAT_STROKES, None], "score": 1, "spec": {"threshold": 0.6},
    }  # fmt: skip
    at.run()
    assert not at.exception
    assert any(c.value == "How others drew it:" for c in at.caption)
    assert len(at.get("image")) == 2  # the round's drawing, and the one kept cat
    assert any(c.value == "Nothing was drawn." for c in at.caption)
    assert any(m.value == f"**Round 1** · {round_summary.WON} I knew it was cat in 3.2 s" for m in at.markdown)


def test_skip_ends_a_round_lost(fake):
    at = start_challenge(fake)
    at.button(key="challenge_skip").click().run()
    game = at.session_state["challenge"]
    assert game["phase"] == "done" and game["results"] == [False] and game["seconds"] == [20]
    assert at.warning[0].value == "Skipped: nothing was drawn."


def test_skip_after_drawing_says_what_the_model_did_not_see(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    fake.top, fake.top_probability = "dog" if prompt != "dog" else "cat", 0.9
    draw_in_challenge(at)
    at.button(key="challenge_skip").click().run()
    assert at.warning[0].value.startswith("Skipped: the model did not see ")


def test_leaderboard_refuses_a_bad_name_with_the_reason(fake):
    at = start_challenge(fake)
    game = at.session_state["challenge"]
    game.update(phase="over", results=[True, False], seconds=[5.0, 20.0], score=1)
    at.run()
    at.text_input(key="leaderboard_name").set_value("<script>")
    at.button(key="leaderboard_save").click().run()
    assert not at.exception
    assert "The API refused this score: name must be" in at.warning[0].value
    assert fake.scores == []


def test_challenge_submit_is_labelled_with_the_prompt(fake):
    at = start_challenge(fake)
    prompt = at.session_state["challenge"]["prompts"][0]
    draw_in_challenge(at)
    at.button(key="challenge_submit").click().run()
    assert not at.exception
    (sub,) = fake.submissions
    assert sub["label"] == prompt and sub["label_source"] == "confirmed" and sub["strokes"] == CAT_STROKES
    assert "submission #1" in at.success[-1].value


def test_challenge_api_down(fake):
    fake.mode = "down"
    at = app("challenge")
    assert not at.exception
    assert "cannot be reached" in at.error[0].value
    fake.mode = "up"
    at.button(key="challenge_classes_retry").click().run()
    assert not at.error
    assert at.button(key="challenge_start")


def test_leaderboard_through_the_real_api(tmp_path):
    # The page against the real app and database (in-process): a refused name, a saved score, the table.
    from tests.utils.app import app_client

    with app_client(f"sqlite:///{tmp_path}/scores.db") as client:
        api_client.transport = client._transport
        api_client.reset()
        try:
            at = app("challenge")
            at.session_state["challenge"] = {
                "phase": "over", "results": [True, False, True], "seconds": [4.5, 20.0, 7.25], "score": 2,
                "prompts": ["cat", "dog", "house"], "drawings": [CAT_STROKES, None, CAT_STROKES],
            }  # fmt: skip
            at.run()
            at.text_input(key="leaderboard_name").set_value("Ada; DROP TABLE")
            at.button(key="leaderboard_save").click().run()
            assert "The API refused this score:" in at.warning[0].value and "name" in at.warning[0].value
            at.text_input(key="leaderboard_name").set_value("Ada L.")
            at.button(key="leaderboard_save").click().run()
            assert not at.exception
            assert "on the leaderboard as Ada L\\." in at.success[0].value
            # The end screen's explanations come from the real API.
            assert sum(m.value.startswith("My guess: **") for m in at.markdown) == 2
            (table,) = at.dataframe
            assert list(table.value["Name"]) == ["Ada L."] and list(table.value["Won"]) == ["2 / 3"]
            assert list(table.value["Time (s)"]) == [31.8]
        finally:
            api_client.transport = None
            api_client.reset()
