"""The Submit page, and how the app starts, with AppTest against a fake API (``tests/utils/fake_api.py``)."""

from __future__ import annotations

import importlib
import subprocess
import sys

from streamlit.testing.v1 import AppTest

import ui
from tests.utils.fake_api import (
    CAT_STROKES,
    CREATED,
    DRAWING,
    FRONTEND,
    app,
    shifted,
    texts,
)


def keep(fake, at: AppTest, label: str, dx: float) -> None:
    """Keep a drawing from the Draw page, as a player does (one click)."""
    at.switch_page("views/draw.py")
    at.session_state["drawing"] = shifted(dx)
    at.session_state["drawing_generation"] = at.session_state["drawing_generation"] + 1
    at.run()
    at.selectbox(key="draw_label").set_value(label)
    at.button(key="draw_submit").click().run()
    assert not at.exception


def test_submit_gallery_is_filtered_and_paged(fake):
    for i in range(15):  # kept by other players: no token in this session
        fake.submissions.append({"id": i + 1, "label": "cat" if i % 3 else "dog", "strokes": CAT_STROKES,
                                 "simplified": [], "canvas": DRAWING["canvas"], "created_at": CREATED,
                                 "label_source": "player",
                                 "predictions": [{"label": "cat", "probability": 0.8}]})  # fmt: skip
    at = app("submit")
    assert not at.exception
    assert len(at.get("image")) == 12  # one page of thumbnails
    assert "Page 1 of 2 · 15 drawings" in texts(at)
    assert "guessed cat (80%)" in texts(at)
    assert not [b for b in at.button if b.key and b.key.startswith("gallery_delete_")]  # not ours
    at.button(key="gallery_next").click().run()
    assert len(at.get("image")) == 3 and "Page 2 of 2" in texts(at)
    at.selectbox(key="gallery_label").set_value("dog").run()
    assert "Page 1 of 1 · 5 drawings" in texts(at)  # a new filter starts on its first page
    assert fake.bodies("/submissions") == []  # listing never posts
    params = [r.url.params for r, _ in fake.exchanges if r.url.path == "/submissions"]
    assert params[-1]["label"] == "dog" and params[-1]["offset"] == "0"


def test_submit_own_drawing_can_be_deleted(fake):
    at = app()
    keep(fake, at, "cat", 0)
    keep(fake, at, "dog", 5)
    at.switch_page("views/submit.py").run()
    assert not at.exception
    assert len(at.get("image")) == 2
    at.button(key="gallery_delete_1").click().run()
    assert not at.exception
    deletes = [r for r, _ in fake.exchanges if r.method == "DELETE"]
    assert [(r.url.path, r.headers["X-Delete-Token"]) for r in deletes] == [("/submissions/1", "token-1")]
    assert [s["id"] for s in fake.submissions] == [2]
    assert "Submission #1 is deleted" in at.success[0].value
    assert len(at.get("image")) == 1


def test_submit_page_api_down(fake):
    fake.mode = "down"
    at = app("submit")
    assert not at.exception
    assert "cannot be reached" in at.error[0].value


def test_live_guesses_use_the_browser_facing_api_url(monkeypatch):
    # Inside Compose the app reaches the API as http://api:8000, which a player's browser cannot.
    sketchpad = importlib.import_module("sketchpad")
    monkeypatch.setenv("API_URL", "http://api:8000")
    monkeypatch.delenv("PUBLIC_API_URL", raising=False)
    assert sketchpad.public_api_url() == "http://api:8000"
    monkeypatch.setenv("PUBLIC_API_URL", "http://127.0.0.1:8000/")
    assert sketchpad.public_api_url() == "http://127.0.0.1:8000"


def test_app_starts_from_a_relative_path():
    # `streamlit run frontend/app.py` from the repo root (and the container's check) must find the pages.

    code = (
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('frontend/app.py', default_timeout=30).run()\n"
        "print('EXCEPTION' if at.exception else 'OK')"
    )
    env = {"API_URL": "http://127.0.0.1:9", "PATH": ""}  # nothing listens there: the page shows its notice
    out = subprocess.run([sys.executable, "-c", code], cwd=FRONTEND.parent, env=env, capture_output=True, text=True)
    assert out.stdout.strip().endswith("OK"), out.stdout + out.stderr


def test_a_label_with_markdown_is_shown_as_text(fake):
    # A legal 64-character label that, read as markdown, loads a remote image and shows a link.
    label = "![](http://127.0.0.1:9/p.png)[WIN](http://127.0.0.1:9/x)"
    fake.submissions.append({"id": 1, "label": label, "strokes": CAT_STROKES, "simplified": [],
                             "canvas": DRAWING["canvas"], "created_at": CREATED, "label_source": "player",
                             "predictions": [{"label": label, "probability": 0.5}]})  # fmt: skip
    at = app("submit")
    assert not at.exception
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    escaped = ui.text(label)
    assert f"**{escaped}** · #1" in shown
    assert any(f"guessed {escaped} (50%)" in c for c in shown)
    assert not any("![" in m or "](" in m for m in shown)  # nothing left for markdown to read as a link
