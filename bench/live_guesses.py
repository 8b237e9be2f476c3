"""Live guesses in the browser: delay from a drawn point to the guess that includes it.

    .venv/bin/python bench/live_guesses.py [--runs 3]

Runs the browser test ``test_guesses_change_during_one_long_stroke`` (real API, real Streamlit app,
Debian Chromium) ``--runs`` times; each run draws a real cat as one long stroke with the mouse and
records, in the page (``performance.now()``), when every point was drawn and when the live guess
line showed an answer that includes it (the frame after the change). Prints the pooled median and
p95 of those delays, and the guesses per second during the stroke.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "test-artifacts" / "live_guess_delay.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    delays, rates = [], []
    for run in range(args.runs):
        RESULT.unlink(missing_ok=True)
        test = "tests/test_browser.py::test_guesses_change_during_one_long_stroke"
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", test], cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0 or not RESULT.exists():
            sys.exit(f"run {run + 1} failed:\n{out.stdout[-3000:]}")
        figures = json.loads(RESULT.read_text())
        delays += figures["delays_ms"]
        rates.append(figures["updates"] / figures["stroke_seconds"])
        print(
            f"run {run + 1}: {figures['points']} points in {figures['stroke_seconds']:.1f} s, "
            f"{figures['updates']} guesses, median delay {np.median(figures['delays_ms']):.0f} ms"
        )
    d = np.asarray(delays)
    print(
        f"point -> guess shown: median {np.median(d):.0f} ms, p95 {np.percentile(d, 95):.0f} ms "
        f"over {len(d)} points; {np.median(rates):.1f} guesses/s during the stroke"
    )


if __name__ == "__main__":
    main()
