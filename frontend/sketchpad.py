"""The sketchpad component: a canvas that sends strokes at pen lift and guesses live from the browser.

streamlit-drawable-canvas 0.13 (Fabric.js' pencil brush) creates a stroke's path only when the pen
lifts, and sends the canvas to Python only then (debounced), so it cannot guess during a stroke.
This component is the small replacement: plain JS in ``sketchpad/``, committed, no build step.

Live guesses go from the browser straight to the API (``PUBLIC_API_URL``, the API's address as the
browser sees it; CORS allows the app's origin), one request in flight per player: sending them
through Python on a timer would rerun the page (or a fragment) several times a second, and each
rerun costs more than the prediction itself. Python hears from the component at pen lift, and at
once when a Challenge prompt is recognised; its own prediction then decides (the browser's is
only shown).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import streamlit as st

import api_client

ASSETS = Path(__file__).resolve().parent / "sketchpad"
# The pace of live guesses: no sooner than this after the previous request started.
INTERVAL_MS = 120

_mount = st.components.v2.component(
    "deepdraw.sketchpad",
    html=(ASSETS / "index.html").read_text(),
    css=(ASSETS / "sketchpad.css").read_text(),
    js=(ASSETS / "sketchpad.js").read_text(),
)


def public_api_url() -> str:
    """The API as the player's browser reaches it (inside Compose, API_URL names a host it cannot see)."""
    return os.environ.get("PUBLIC_API_URL", "").rstrip("/") or api_client.api_url()


def sketchpad(
    key: str,
    *,
    size: int,
    line_width: int,
    strokes: list | None = None,
    disabled: bool = False,
    prompt: str | None = None,
    prompt_text: str | None = None,
    threshold: float | None = None,
    speak: bool = False,
    explain: bool = False,
    on_drawing: Callable[[dict], None] | None = None,
) -> dict | None:
    """Mount the pad; ``{"strokes", "image"}`` (the PNG as base64) once something is drawn, else ``None``.

    ``strokes`` seed a newly mounted pad only (a new ``key``); afterwards the pad owns its drawing.
    With a ``prompt``, the pad says "I know, it's …!" and reports the drawing at once when the
    prompt reaches ``threshold``. With ``explain``, every pen lift colours the strokes by how much
    the top guess needs each one (the API's ``"explain": true``). ``on_drawing`` is called with what
    the pad sends, before the page runs again (so the page can act on it before drawing the pad).
    """
    data = {
        "size": size,
        "lineWidth": line_width,
        "strokes": strokes or [],
        "disabled": disabled,
        "apiUrl": public_api_url(),
        "intervalMs": INTERVAL_MS,
        "prompt": prompt,
        "promptText": prompt_text,
        "threshold": threshold,
        "speak": speak,
        "explain": explain,
    }

    def changed() -> None:
        sent = st.session_state[key]["drawing"]
        if on_drawing is not None and sent:
            on_drawing(sent)

    result = _mount(data=data, key=key, default={"drawing": None}, on_drawing_change=changed)
    return result.get("drawing")
