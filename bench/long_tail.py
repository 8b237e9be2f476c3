"""The logit adjustment's trade-off, held out: the shipped CNN's class-balanced top-1 by ``tau``.

The CNN carries its chosen correction folded into its softmax bias (``training.prior``); this bench
undoes it and applies each ``tau`` of a grid instead, on the test split of the prepared shards, and
prints the class-balanced top-1 of the categories with official bitmaps, of those known by a few
stroke drawings, and of all of them, plus the plain top-1 over the bitmap categories' drawings.

    .venv/bin/python bench/long_tail.py [--data-dir ../shared/quickdraw]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.inputs import Inputs
from models.loading import latest_version
from models.network import load_network
from training import prepare, shards
from training.data import category_files

TAUS = (-0.3, 0.0, 0.2, 0.5, 0.7)


def balanced(hits: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    return float(np.mean([hits[labels == c].mean() for c in classes if (labels == c).any()]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    args = parser.parse_args(argv)
    cnn = load_network(latest_version(args.model_store / "cnn"))
    correction = cnn.card.training.prior_correction
    if correction is None:
        raise SystemExit(f"cnn {cnn.version} carries no prior correction")
    data = shards.ShardSet(prepare.ensure_shards(args.data_dir, "bitmap", cnn.classes), "bitmap", cnn.classes)
    x, y = data.arrays("test")
    probs = np.concatenate(
        [cnn.probabilities(Inputs(bitmaps=x[i : i + 2048].astype(np.float32))) for i in range(0, len(x), 2048)]
    )
    log_prior = np.asarray(correction.log_prior)
    logits = np.log(np.maximum(probs, 1e-12)) + correction.tau * log_prior  # the correction undone
    with_bitmaps = set(category_files(args.data_dir, "numpy_bitmap"))
    bitmap = np.array([i for i, c in enumerate(cnn.classes) if c in with_bitmaps])
    thin = np.array([i for i, c in enumerate(cnn.classes) if c not in with_bitmaps])
    print(
        f"cnn {cnn.version}: {len(y)} test drawings, {len(bitmap)} + {len(thin)} categories; "
        f"shipped tau {correction.tau}\n"
    )
    print("| tau | bitmap categories | thin categories | all | bitmap categories, top-1 over their drawings |")
    print("|---:|---:|---:|---:|---:|")
    for tau in TAUS:
        hits = (logits - tau * log_prior).argmax(axis=1) == y
        mine = np.isin(y, bitmap)
        print(
            f"| {tau:g} | {balanced(hits, y, bitmap):.1%} | {balanced(hits, y, thin):.1%} | "
            f"{balanced(hits, y, np.arange(len(cnn.classes))):.1%} | {hits[mine].mean():.1%} |"
        )


if __name__ == "__main__":
    main()
