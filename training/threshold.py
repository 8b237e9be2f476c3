"""Choose the Challenge page's "I know, it's …!" confidence threshold on the validation split.

The game says "I know" the moment the prompt's probability reaches the threshold. A false "I know"
is the game accepting a drawing of something else. The hardest wrong prompt for a drawing is the
class the model confuses it with most, so the rate reported is, over validation drawings, how
often that class reaches the threshold (a player who drew a dog while asked for the cat it looks
like). The threshold is the lowest one whose rate stays within ``--max-false-rate``: lower would
accept more wrong drawings, higher would make right drawings wait longer.

    python -m training.threshold --data-dir ../shared/quickdraw --out frontend/challenge_threshold.json

Loads the served CNN through ``models`` (its ONNX copy) and reads the content-hash split of
``training.data``: the validation drawings, never the test split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models.inputs import Inputs
from models.loading import latest_version
from models.network import load_network
from training import data as qd

GRID = np.round(np.arange(0.05, 1.0, 0.01), 2)


def probabilities(model_dir: Path, bitmaps: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, dict]:
    """Class probabilities of the CNN in ``model_dir`` for every bitmap, and the model's name/version/classes."""
    network = load_network(model_dir)
    x = bitmaps.astype(np.float32)
    probs = np.concatenate([network.probabilities(Inputs(bitmaps=x[i : i + batch])) for i in range(0, len(x), batch)])
    return probs, {"name": network.name, "version": network.version, "classes": network.classes}


def rates(probs: np.ndarray, labels: np.ndarray, grid: np.ndarray = GRID) -> dict[str, np.ndarray]:
    """Per threshold: false "I know" rate (hardest wrong prompt and a random one) and recognition rate."""
    rows = np.arange(len(labels))
    right = probs[rows, labels]
    others = probs.copy()
    others[rows, labels] = -1.0
    hardest = others.max(axis=1)
    # A random wrong prompt: each wrong class equally likely, so average its indicator over them.
    wrong_count = lambda t: ((others >= t).sum(axis=1) / (probs.shape[1] - 1)).mean()  # noqa: E731
    return {
        "threshold": grid,
        "false_hardest": np.array([(hardest >= t).mean() for t in grid]),
        "false_random": np.array([wrong_count(t) for t in grid]),
        "recognised": np.array([(right >= t).mean() for t in grid]),
    }


def choose(table: dict[str, np.ndarray], max_false_rate: float) -> int:
    """Index of the lowest threshold whose hardest-prompt false rate is within the bound."""
    ok = np.flatnonzero(table["false_hardest"] <= max_false_rate)
    if not len(ok):
        raise SystemExit(f"no threshold up to {table['threshold'][-1]} keeps false 'I know' <= {max_false_rate}")
    return int(ok[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    parser.add_argument("--model-dir", type=Path, default=None, help="a model_store/cnn/<version> folder")
    parser.add_argument("--max-false-rate", type=float, default=0.02)
    parser.add_argument("--max-per-class", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("frontend/challenge_threshold.json"))
    args = parser.parse_args(argv)

    model_dir = args.model_dir or latest_version(Path("model_store/cnn"))
    splits = qd.load_bitmap_splits(args.data_dir, None, args.max_per_class)
    probs, model = probabilities(model_dir, splits.x["val"])
    if splits.classes != model["classes"]:
        raise SystemExit("the data's classes differ from the model's: a threshold for them would mean nothing")
    table = rates(probs, splits.y["val"])
    i = choose(table, args.max_false_rate)
    result = {
        "threshold": float(table["threshold"][i]),
        "chosen_for": f"lowest threshold with a false 'I know' rate <= {args.max_false_rate} (hardest wrong prompt)",
        "false_i_know_rate": round(float(table["false_hardest"][i]), 4),
        "false_i_know_rate_random_prompt": round(float(table["false_random"][i]), 6),
        "recognised_rate": round(float(table["recognised"][i]), 4),
        "split": "val",
        "n": len(probs),
        "model": {"name": model["name"], "version": model["version"]},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, result["threshold"]):
        k = int(np.argmin(np.abs(table["threshold"] - t)))
        print(
            f"threshold {table['threshold'][k]:.2f}: false 'I know' {table['false_hardest'][k]:.2%} (hardest prompt), "
            f"{table['false_random'][k]:.4%} (random prompt); right drawings recognised {table['recognised'][k]:.2%}"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
