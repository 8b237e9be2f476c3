"""What the player's model costs in-process, with and without taught categories, side by side in one run.

    .venv/bin/python -m bench.model_cost [--rounds 9] [--calls 100]

Loads the shipped store and times ``PrototypeModel.predict`` on real test bitmaps (the fixtures'
test split): one drawing (a live guess) and 20 (an explanation's variants of a 20-stroke drawing),
in three states, alternated round by round, medians:

- nothing taught (the probabilities file alone);
- one category taught from 5 drawings, the embedding from the int8 file that gives both (served);
- the same, the embedding from the float graph instead (what a card without
  ``files.onnx_embedding`` runs: the int8 probabilities, then ``model.onnx``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.harness import FIXTURES, REPO

SIZES = (1, 20)


def per_call_ms(predict, x, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        predict(x)
    return (time.perf_counter() - started) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()

    from models.inputs import Inputs
    from models.loading import load_store

    store = load_store(REPO / "model_store")
    model = store.teachable
    cnn = model.cnn
    x = np.load(FIXTURES / "bitmaps_test_split.npz")["x"].reshape(-1, 28, 28).astype(np.float32)
    inputs = {n: Inputs(bitmaps=x[:n]) for n in SIZES}
    taught = cnn.embed(Inputs(bitmaps=x[-5:]))
    served_embedding = cnn.run_embedding

    def nothing_taught() -> None:
        model.set_taught([], np.zeros((0, taught.shape[1]), np.float32), np.zeros(0, int))
        cnn.run_embedding = served_embedding

    def one_taught(int8: bool) -> None:
        model.set_taught(["zigzag"], taught, np.zeros(len(taught), int))
        cnn.run_embedding = served_embedding if int8 else None

    states = {
        "nothing taught": nothing_taught,
        "one taught, int8 embedding (served)": lambda: one_taught(True),
        "one taught, float embedding": lambda: one_taught(False),
    }
    if served_embedding is None:
        print(f"cnn {cnn.version} has no int8 embedding file: its second and third rows are the same path")
    times = {(s, n): [] for s in states for n in SIZES}
    for enter in states.values():  # warm every path once
        enter()
        for n in SIZES:
            per_call_ms(model.predict, inputs[n], 10)
    for _ in range(args.rounds):
        for state, enter in states.items():
            enter()
            for n in SIZES:
                times[state, n].append(per_call_ms(model.predict, inputs[n], args.calls))
    nothing_taught()

    print(f"prototypes {model.version} over cnn {cnn.version}, in-process, one thread, ", end="")
    print(f"{args.rounds} rounds x {args.calls} calls, medians\n")
    print("| state | " + " | ".join(f"{n} drawing{'s' if n > 1 else ''} ms" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for state in states:
        cells = " | ".join(f"{np.median(times[state, n]):.3f}" for n in SIZES)
        print(f"| {state} | {cells} |")


if __name__ == "__main__":
    main()
