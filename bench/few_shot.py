"""N-way K-shot accuracy of the CNN's embedding on held-out drawings, as in the few-shot literature.

Each episode draws N of the 267 categories known here by a few stroke drawings (``training.proto_data``),
K support drawings and Q query drawings of each, all from their *test* split: drawings no model
trained on (the CNN that learned every category trained on the other split). A query is answered by
the nearest class mean of the support embeddings (cosine). Prints the mean accuracy over the
episodes with its 95% confidence interval (1.96 standard errors), for 5-way and 20-way, K = 1, 5, 10
(a category takes part when it has K + Q test drawings).

    .venv/bin/python bench/few_shot.py [--episodes 2000] [--queries 5]

Needs ``../shared/quickdraw`` (or ``--data-dir``) and a CNN with an embedding in the store.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.inputs import Inputs
from models.loading import latest_version
from models.network import load_network
from models.prototypes import normalise
from training.data import category_files
from training.proto_data import load_proto_splits, untrained_categories

WAYS = (5, 20)
SHOTS = (1, 5, 10)


def episodes(emb: np.ndarray, labels: np.ndarray, ways: int, shots: int, n: int, queries: int, seed: int) -> np.ndarray:
    """Accuracy of each of ``n`` episodes."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    by_class = [idx for idx in by_class if len(idx) >= shots + queries]
    acc = np.empty(n)
    for e in range(n):
        chosen = rng.choice(len(by_class), ways, replace=False)
        support, query = [], []
        for c in chosen:
            idx = rng.permutation(by_class[c])
            support.append(emb[idx[:shots]].mean(axis=0))
            query.append(emb[idx[shots : shots + queries]])
        guess = (np.concatenate(query) @ normalise(np.stack(support)).T).argmax(axis=1)
        acc[e] = (guess == np.repeat(np.arange(ways), queries)).mean()
    return acc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=5, help="query drawings per class and episode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cnn = load_network(latest_version(args.model_store / "cnn"))
    if cnn.card.embedding is None:
        raise SystemExit(f"cnn {cnn.version} exports no embedding (python -m training.embedding)")
    t0 = time.perf_counter()
    bitmap_categories = set(category_files(args.data_dir, "numpy_bitmap"))
    categories = sorted(set(untrained_categories(args.data_dir, [])) - bitmap_categories)
    protos = load_proto_splits(args.data_dir, categories)
    labels, x = protos.y["test"], protos.x["test"].astype(np.float32)
    emb = np.concatenate([cnn.embed(Inputs(bitmaps=x[i : i + 512])) for i in range(0, len(x), 512)])
    print(
        f"cnn {cnn.version}: {len(categories)} categories, {len(x)} held-out drawings "
        f"({np.bincount(labels).min()}-{np.bincount(labels).max()} per category), embedded in "
        f"{time.perf_counter() - t0:.0f} s; {args.episodes} episodes, {args.queries} queries per class\n"
    )
    print("| episodes | " + " | ".join(f"K = {k}" for k in SHOTS) + " |")
    print("|---|" + "---:|" * len(SHOTS))
    for ways in WAYS:
        cells = []
        for shots in SHOTS:
            acc = episodes(emb, labels, ways, shots, args.episodes, args.queries, args.seed)
            cells.append(f"{acc.mean():.1%} ± {1.96 * acc.std(ddof=1) / np.sqrt(len(acc)):.1%}")
        print(f"| {ways}-way | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
