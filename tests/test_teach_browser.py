"""The Teach page in Chromium against the real API: three examples drawn with the mouse, then a
fourth guessed as the taught category; deleting it from the list. Needs what tests/test_browser.py needs."""

from __future__ import annotations

import httpx
import pytest

from tests.test_browser import (  # noqa: F401  (its fixtures and helpers)
    api,
    browser,
    draw,
    frontend,
    frontend_port,
    guesses,
    page,
    screenshot,
    settle,
)
from tests.test_categories import letter

pytestmark = pytest.mark.browser


def test_teach_a_category_then_it_is_guessed(page, api):  # noqa: F811
    page.set_viewport_size({"width": 1280, "height": 1400})  # both canvases wholly in view: mouse moves land
    page.get_by_role("link", name="Teach").click()
    name = page.get_by_role("textbox", name="Name")
    name.wait_for(timeout=30_000)
    name.fill("letter K")
    name.press("Enter")
    settle(page)
    for seed in range(3):
        draw(page, letter("K", jitter=12, seed=seed), index=0)
        settle(page)
        page.get_by_role("button", name="Add this example").click()
        settle(page)
    page.get_by_text("Examples: 3").wait_for(timeout=30_000)
    # Each example shows as a picture before it is taught.
    assert page.locator("[data-testid='stImage'] img").count() == 3
    page.get_by_role("button", name="Teach it").click()
    page.get_by_text("Learned “letter K”").wait_for(timeout=60_000)
    assert [c["name"] for c in httpx.get(f"{api}/categories", timeout=10).json()["items"]] == ["letter K"]

    draw(page, letter("K", jitter=12, seed=42), index=1)
    settle(page)
    page.get_by_text("I think it is: letter K (taught)").wait_for(timeout=30_000)
    assert guesses(page).startswith("Guesses: letter K")
    screenshot(page, "teach")

    # A category another player taught is listed, without a Delete for this player.
    others = {"name": "letter E", "drawings": [letter("E", 12, seed) for seed in range(3)]}
    assert httpx.post(f"{api}/categories", json=others, timeout=60).status_code == 201
    page.get_by_role("link", name="Draw").click()  # away and back: the list is read again
    settle(page)
    page.get_by_role("link", name="Teach").click()
    page.get_by_text("taught by someone else").wait_for(timeout=30_000)
    settle(page)
    assert page.get_by_role("button", name="Delete").count() == 1
    page.get_by_role("button", name="Delete").click()
    settle(page)
    page.get_by_role("button", name="Delete").wait_for(state="detached", timeout=30_000)
    assert [c["name"] for c in httpx.get(f"{api}/categories", timeout=10).json()["items"]] == ["letter E"]
    # What was learned, and the guess of it, go with it.
    assert page.get_by_text("Learned “letter K”").count() == 0
    assert page.get_by_text("I think it is: letter K").count() == 0
