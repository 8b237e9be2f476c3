"""What teaching costs the others: /health while heavy categories are taught and caught up, and how
long a worker takes to start with them stored.

    .venv/bin/python -m bench.taught_load [--categories 5]

Starts ``python -m api.serve --workers 2`` on a fresh SQLite file, probes /health every 20 ms on
new connections (the kernel spreads them over both workers), and teaches ``--categories``
categories of 20 drawings of 3,000 points each (legal, ~1.9 MB bodies) one after another; the
other worker catches up in the background. Then restarts the server on the same database and
times it to /ready. Prints the probes' median, p99 and worst (idle first, then while teaching), and the start time.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from bench.harness import running_api


def heavy_drawing(seed: int, points: int = 3_000) -> list:
    """A closed scribble of ``points`` points in 6 strokes (canvas pixels)."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, points)
    radius = 150 + 20 * np.sin(5 * angles + seed) + rng.normal(0, 2, points)
    xs, ys = 200 + radius * np.cos(angles), 200 + radius * np.sin(angles)
    cuts = np.linspace(0, points, 7).astype(int)
    return [[xs[a:b].round(1).tolist(), ys[a:b].round(1).tolist()] for a, b in itertools.pairwise(cuts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--categories", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="deepdraw-taught-"))
    database = f"sqlite:///{tmp}/taught.db"
    probes: list[float] = []
    stop = threading.Event()

    def probe(url: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                httpx.get(f"{url}/health", timeout=10)
                probes.append(time.monotonic() - started)
            except httpx.HTTPError:
                probes.append(float("inf"))
            time.sleep(0.02)

    with running_api(database, tmp / "api.log", workers=2, ACCESS_LOG="false") as api:
        prober = threading.Thread(target=probe, args=(api.url,))
        prober.start()
        time.sleep(3)  # the probes alone first: what a probe costs on this machine
        idle = np.array(probes) * 1000
        probes.clear()
        taught_ms = []
        for c in range(args.categories):
            drawings = [heavy_drawing(seed=100 * c + i) for i in range(20)]
            started = time.monotonic()
            resp = httpx.post(f"{api.url}/categories", json={"name": f"heavy {c}", "drawings": drawings}, timeout=120)
            taught_ms.append((time.monotonic() - started) * 1000)
            assert resp.status_code == 201, resp.text
        time.sleep(3)  # the other worker catches up meanwhile (one poll a second)
        stop.set()
        prober.join()
    ms = np.array(probes) * 1000
    print(f"api.serve --workers 2, {args.categories} categories x 20 drawings x 3,000 points, taught one by one")
    print(f"teach answered in {np.median(taught_ms):.0f} ms (median), {max(taught_ms):.0f} ms (worst)")
    print(
        f"/health before, idle: {len(idle)} probes, median {np.median(idle):.1f} ms, "
        f"p99 {np.percentile(idle, 99):.1f} ms, worst {idle.max():.1f} ms"
    )
    print(
        f"/health meanwhile: {len(ms)} probes, median {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
        f"worst {ms.max():.1f} ms"
    )
    started = time.monotonic()
    with running_api(database, tmp / "api2.log", workers=2, ACCESS_LOG="false") as api:
        ready_s = time.monotonic() - started
        listed = len(httpx.get(f"{api.url}/categories", timeout=10).json()["items"])
    print(f"restart on the same database: /ready after {ready_s:.1f} s with {listed} taught categories stored")


if __name__ == "__main__":
    main()
