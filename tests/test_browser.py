"""End to end in Chromium: the real API and the Streamlit app, a real Quick, Draw! cat drawn with the mouse.

Needs Debian's chromium (``apt-get install chromium``), Playwright's Python package (its own browser
downloads are never used) and a trained CNN in ``model_store/cnn``; skipped otherwise. Screenshots
go to ``test-artifacts/``; with ``DOCS_SCREENSHOTS=1`` the three page screenshots also go to
``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.servers import free_port, stop, wait_for

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
MODEL_STORE = ROOT / "model_store"
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The canvas is 360 px square (frontend/ui.py); the dataset's 0-255 drawing is placed inside a margin.
CANVAS, MARGIN = 360, 30

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
if not any((MODEL_STORE / "cnn").glob("*/card.json")):
    pytest.skip("no trained CNN in model_store/cnn", allow_module_level=True)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = {
        **os.environ,
        "MODEL_STORE": str(MODEL_STORE),
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('db')}/submissions.db",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", proc, 180, "the API")
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def frontend(api, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("frontend") / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "frontend/app.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "API_URL": api}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_stcore/health", proc, 60, "streamlit")
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def to_canvas(drawing: list) -> list:
    """Dataset strokes (0-255) -> canvas pixels, as a player would have drawn them."""
    scale = (CANVAS - 2 * MARGIN) / 255
    return [[[MARGIN + x * scale for x in xs], [MARGIN + y * scale for y in ys]] for xs, ys in drawing]


def fixture_drawings(name: str) -> list[list]:
    """Real drawings of ``name`` among the fixtures (the pairs, then the per-category strokes)."""
    fixtures = ROOT / "tests" / "fixtures"
    files = [fixtures / "pairs" / f"{name}.simplified.ndjson.gz", fixtures / "strokes_simplified.ndjson.gz"]
    drawings = []
    for path in files:
        if path.exists():
            with gzip.open(path, "rt") as f:
                rows = [json.loads(line) for line in f]
            drawings += [r["drawing"] for r in rows if r.get("word", name) == name]
    return drawings


def recognised_drawing(api: str, name: str) -> list | None:
    """The first fixture drawing of ``name`` that the model clearly puts first (a fair test of the app)."""
    for drawing in fixture_drawings(name):
        strokes = to_canvas(drawing)
        top = httpx.post(f"{api}/predict", json={"strokes": strokes}, timeout=10).json()["predictions"][0]
        if top["label"] == name and top["probability"] >= 0.6:
            return strokes
    return None


def draw(page, strokes: list) -> None:
    """Mouse down, moves, up for each stroke, on the (first) drawing canvas of the page."""
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for xs, ys in strokes:
        page.mouse.move(box["x"] + xs[0], box["y"] + ys[0])
        page.mouse.down()
        for x, y in zip(xs[1:], ys[1:], strict=True):
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()
        page.wait_for_timeout(120)


def settle(page, quiet_ms: int = 1500, timeout_s: float = 30) -> None:
    """Wait until Streamlit has finished its reruns (no 'running' indicator for ``quiet_ms``)."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.get_by_test_id("stStatusWidget").count() > 0
        now = time.monotonic()
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif (now - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)


def guesses(page) -> str:
    """The guesses chart's text alternative: 'Guesses: cat 93%, ...'."""
    chart = page.locator("[role='graphics-document'][aria-label^='Guesses:']").first
    chart.wait_for(timeout=30_000)
    return chart.get_attribute("aria-label")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    if os.environ.get("DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / f"{name}.png", DOCS_SCREENSHOTS / f"{name}.png")


@pytest.fixture
def page(browser, frontend):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(frontend)
    page.locator("canvas.upper-canvas").first.wait_for(timeout=60_000)
    yield page
    context.close()


def test_drawing_a_cat_shows_cat_in_the_top5(page, api):
    cat = recognised_drawing(api, "cat")
    assert cat, "the model recognises none of the cat fixtures"
    draw(page, cat)
    settle(page)
    text = guesses(page)
    top5 = [item.rsplit(" ", 1)[0] for item in text.removeprefix("Guesses: ").split(", ")]
    screenshot(page, "draw")
    assert len(top5) == 5
    assert "cat" in top5, text
    # The chart itself (SVG) names the classes too.
    assert page.locator("[role='graphics-document'] text", has_text="cat").count() >= 1
    assert page.get_by_text("I think it is:").count() == 1

    # The same drawing, on the Probabilities page: every class, and the 28x28 the CNN saw.
    page.get_by_role("link", name="Probabilities").click()
    page.get_by_text("The 28x28 the CNN saw").wait_for(timeout=30_000)
    settle(page)
    assert "cat" in guesses(page)
    # Streamlit scrolls inside the page, so a full-page shot needs a window as tall as the chart.
    page.set_viewport_size({"width": 1280, "height": 2000})
    settle(page, quiet_ms=800)
    screenshot(page, "probabilities")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Submit from the Draw page stores it through the API.
    page.get_by_role("link", name="Draw").click()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("Saved as submission #").wait_for(timeout=30_000)
    stored = httpx.get(f"{api}/submissions", timeout=10).json()["items"]
    assert stored[0]["label"] == "cat"


def test_challenge_round_won(page, api):
    page.get_by_role("link", name="Challenge").click()
    page.get_by_role("button", name="Start").click()
    classes = httpx.get(f"{api}/classes", timeout=10).json()["cnn"]
    # Prompts are random: start new games until one asks for a class we hold a recognised drawing of.
    for _ in range(20):
        heading = page.get_by_text("Draw: ")
        heading.wait_for(timeout=30_000)
        text = heading.inner_text()
        prompt = max((c for c in classes if text.endswith(f" {c}")), key=len)  # "Draw: an owl" -> owl
        strokes = recognised_drawing(api, prompt)
        if strokes:
            break
        page.get_by_role("button", name="New game").click()
        page.wait_for_timeout(500)
        settle(page)
    else:
        pytest.skip("no prompt with a recognised fixture drawing in 20 games")
    draw(page, strokes)
    page.get_by_text("Recognised:").wait_for(timeout=30_000)
    assert prompt in guesses(page)
    assert "score 1" in page.get_by_text("Round 1 of 6").inner_text()
    screenshot(page, "challenge")


def test_a_page_opened_by_its_url_keeps_the_app_frame(browser, frontend):
    # A bookmarked /challenge must run through app.py (navigation, sidebar, layout), not alone.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{frontend}/challenge")
        page.get_by_text("Guesses by the Deep Draw API at").wait_for(timeout=30_000)
        assert page.get_by_role("link", name="Probabilities").count() >= 1
    finally:
        context.close()
