"""What an explanation costs: /predict with ``"explain": true`` against the plain /predict, side by side.

    .venv/bin/python -m bench.explain [--rounds 40] [--models prototypes cnn ensemble]

Starts ``uvicorn api.main:app`` (one process) on 127.0.0.1 and, from one keep-alive client, sends
each drawing plain and explained in turn, ``--rounds`` times, so both see the same machine load.
Drawings: the fixtures' median one (by strokes), one of 20 strokes, and the official extremes (most
strokes, most points, longest pen path). Prints the medians, their ratio, and what the explanation
needed (strokes left out one by one, and whether pairs were tried). Then, in-process (the same
store, no HTTP), where an explanation's time goes: normalising the variants, normalising and preparing what the
model reads (the bitmaps' rendering; also both ways of rendering them, each variant afresh and
composited from the strokes drawn once, whichever the drawing's size chooses when served), the
model on them, and the whole explained answer (the drawing's prediction is made alongside the
variants' preparation); and how long the step /predict makes on its event loop (leave-one-out)
takes for drawings made to cost most within its bounds (``api.routes.predict.QUICK_*``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from api.routes.predict import INLINE_POINTS, QUICK_EXPLAINED_STROKES, QUICK_PEN_PATH
from bench.harness import FIXTURES, REPO, read_ndjson, running_api
from models import inputs
from models.explain import explain_strokes, explained_strokes, leave_one_out
from models.inputs import inputs_of, inputs_without
from models.loading import load_store
from sketch.sequence import MAX_LEN
from sketch.strokes import normalize, normalize_without, parse_strokes, pen_path


def drawings() -> dict[str, list]:
    pool = read_ndjson(FIXTURES / "strokes_simplified.ndjson.gz") + read_ndjson(
        FIXTURES / "prototype_test_split.ndjson.gz"
    )
    pool.sort(key=lambda row: len(row["drawing"]))
    median = pool[len(pool) // 2]
    twenty = next(row for row in pool if len(row["drawing"]) == 20)
    chosen = {
        f"median: {median['word']}, {len(median['drawing'])} strokes": median["drawing"],
        f"{twenty['word']}, 20 strokes": twenty["drawing"],
    }
    for row in read_ndjson(FIXTURES / "extremes.ndjson.gz"):
        points = sum(len(s[0]) for s in row["drawing"])
        chosen[f"{row['_why']}: {row['word']}, {len(row['drawing'])} strokes, {points} points"] = row["drawing"]
    return chosen


def post(conn: http.client.HTTPConnection, body: dict) -> tuple[float, dict]:
    payload = json.dumps(body)
    t0 = time.perf_counter()
    conn.request("POST", "/predict", payload, {"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status != 200:
        sys.exit(f"/predict answered {response.status}: {answer}")
    return elapsed, answer


def _median_ms(work, rounds: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def _steps_ms(model, strokes: list, rounds: int) -> list[float]:
    """Medians of: the plain prediction, then an explanation's steps, then the whole explained answer."""
    reads, max_len = model.uses, model.max_len or MAX_LEN
    kind = (reads, max_len)
    drawing = parse_strokes(strokes)
    removals = [(i,) for i in explained_strokes(drawing)]
    _, prepared = inputs_without(drawing, removals, reads, max_len)
    steps = [
        lambda: model.predict(inputs_of([normalize(drawing)], reads, max_len)),
        lambda: normalize_without(drawing, removals),
        lambda: inputs_without(drawing, removals, reads, max_len),
        lambda: model.predict(prepared) if prepared else None,
        lambda: explain_strokes(model.predict, drawing, normalize(drawing), *kind),
    ]
    served = [_median_ms(step, rounds) for step in steps]
    # The two ways of preparing the variants, whichever the drawing's size chooses when served.
    ways = [_prepare_ms(drawing, removals, reads, max_len, rounds, strokes) for strokes in (len(drawing) + 1, 0)]
    return served[:3] + ways + served[3:]


def _prepare_ms(drawing, removals, reads, max_len: int, rounds: int, composite_from: int) -> float:
    """``inputs_without``'s median with compositing from ``composite_from`` strokes."""
    served = inputs.COMPOSITE_FROM_STROKES
    inputs.COMPOSITE_FROM_STROKES = composite_from
    try:
        return _median_ms(lambda: inputs_without(drawing, removals, reads, max_len), rounds)
    finally:
        inputs.COMPOSITE_FROM_STROKES = served


def breakdown(models: list[str], rounds: int) -> None:
    """In-process medians of each step of an explanation, beside the plain prediction's."""
    loaded = load_store(REPO / "model_store")
    print("\nIn-process, medians, ms (the variants: the drawing without each explained stroke)\n")
    print(
        "| model | drawing | plain: normalise + prepare + model | normalise variants | normalise + prepare variants "
        "| the same, each rendered afresh | the same, composited | model on variants | answer and explanation |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in models:
        for label, strokes in drawings().items():
            cells = " | ".join(f"{ms:.2f}" for ms in _steps_ms(loaded.by_name[name], strokes, rounds))
            print(f"| {name} | {label} | {cells} |", flush=True)


def at_the_bounds() -> dict[str, list]:
    """Drawings made to cost most within what /predict explains on its event loop (``QUICK_*``):
    the most strokes, as many points as a drawing answered there holds, and the pen path cut to
    the bound."""
    rng = np.random.default_rng(0)
    count, per = QUICK_EXPLAINED_STROKES, INLINE_POINTS // QUICK_EXPLAINED_STROKES
    turns = np.linspace(0, 2 * np.pi, per)
    rings = [np.stack([128 + (40 + 4 * i) * np.cos(turns), 128 + (40 + 4 * i) * np.sin(turns)]) for i in range(count)]
    shapes = {
        "zigzags across the box": [rng.uniform(0, 255, (2, per)) for _ in range(count)],
        "wiggles": [np.cumsum(rng.normal(0, 3, (2, per)), axis=1) + rng.uniform(0, 255, (2, 1)) for _ in range(count)],
        "nested rings": rings,
    }
    made = {}
    for name, strokes in shapes.items():
        keep = per
        while pen_path(parse_strokes([s[:, :keep].tolist() for s in strokes])) > QUICK_PEN_PATH:
            keep -= 1
        drawing = [s[:, :keep].round(1).tolist() for s in strokes]
        path = pen_path(parse_strokes(drawing))
        made[f"{name}: {count} strokes, {count * keep} points, pen path {path:,.0f}"] = drawing
    return made


def quick_step(rounds: int) -> None:
    """In-process: how long the step of an explanation made on the event loop takes at its bounds."""
    model = load_store(REPO / "model_store").by_name["prototypes"]
    reads = model.uses
    print("\nThe step made on the event loop (leave-one-out), the default model, in process, ms\n")
    print("| drawing | p50 | max |")
    print("|---|---:|---:|")
    for name, strokes in at_the_bounds().items():
        drawing = parse_strokes(strokes)
        whole = normalize(drawing)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            leave_one_out(model.predict, drawing, whole, reads, MAX_LEN)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"| {name} | {np.median(times):.2f} | {max(times):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="plain + explained requests per drawing and model")
    parser.add_argument("--models", nargs="+", default=["prototypes", "cnn", "ensemble"])
    args = parser.parse_args()
    database = f"sqlite:///{tempfile.gettempdir()}/deepdraw-bench-explain.db"
    log = Path(tempfile.gettempdir()) / "deepdraw-bench-explain.log"
    with running_api(database, log, ACCESS_LOG="false") as api:
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
        print(f"uvicorn api.main:app, 1 process, {os.cpu_count()} cores, {args.rounds} rounds, one client\n")
        print("| model | drawing | plain p50 ms | explain p50 ms | ratio | strokes explained | pairs tried |")
        print("|---|---|---:|---:|---:|---:|---|")
        for model in args.models:
            for name, strokes in drawings().items():
                plain, explained = [], []
                for _ in range(3):  # warm-up
                    post(conn, {"strokes": strokes, "model": model, "explain": True})
                for _ in range(args.rounds):
                    plain.append(post(conn, {"strokes": strokes, "model": model})[0])
                    ms, answer = post(conn, {"strokes": strokes, "model": model, "explain": True})
                    explained.append(ms)
                explanation = answer["explanation"]
                singles = [p for p in explanation["strokes"] if p["label_without"] not in (None, explanation["label"])]
                pairs = "no" if singles or len(explanation["strokes"]) < 2 else "yes"
                a, b = float(np.median(plain)), float(np.median(explained))
                print(
                    f"| {model} | {name} | {a:.2f} | {b:.2f} | {b / a:.1f}x | "
                    f"{len(explanation['strokes'])} of {explanation['strokes_total']} | {pairs} |",
                    flush=True,
                )
    breakdown(args.models, args.rounds)
    quick_step(args.rounds)


if __name__ == "__main__":
    main()
