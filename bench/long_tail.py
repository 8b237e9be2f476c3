"""The logit adjustment's trade-off, held out: the shipped CNN's class-balanced top-1 by ``tau``.

The CNN carries its chosen correction folded into its softmax bias (``training.prior``); this bench
undoes it and applies each ``tau`` of a grid instead, on the test split of the prepared shards, and
prints the class-balanced top-1 of the categories with official bitmaps, of those known by a few
stroke drawings, and of all of them, plus the plain top-1 over the bitmap categories' drawings.

``--alternatives`` also measures two other post-hoc tools of long-tailed recognition on the same
frozen network, each tuned on the validation split and reported on the test split: the logits
plus a nearest-class-mean score (cosine to each class's mean training embedding), and decoupled
classifier retraining (Kang et al. 2020: a new softmax layer on the frozen embeddings, trained with
class-balanced weights). ``--confusions N`` lists the N pairs (bitmap category, thin category that
answers for it) that cost the bitmap categories the most at the shipped ``tau``.

    .venv/bin/python bench/long_tail.py [--data-dir ../shared/quickdraw] [--split val] [--alternatives]
        [--confusions 20]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.inputs import Inputs
from models.loading import latest_version
from models.network import load_network
from training import prepare, shards
from training.data import category_files

TAUS = (-0.3, 0.0, 0.2, 0.5, 0.7)
MEAN_WEIGHTS = (2.0, 5.0, 10.0, 20.0)
RETRAIN_EPOCHS = 8


def balanced(hits: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    return float(np.mean([hits[labels == c].mean() for c in classes if (labels == c).any()]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    parser.add_argument(
        "--alternatives", action="store_true", help="also nearest class means and classifier retraining"
    )
    parser.add_argument("--split", choices=("val", "test"), default="test", help="val: to choose between CNNs")
    parser.add_argument("--confusions", type=int, default=0, metavar="N", help="the N costliest pairs")
    args = parser.parse_args(argv)
    cnn = load_network(latest_version(args.model_store / "cnn"))
    correction = cnn.card.training.prior_correction
    if correction is None:
        raise SystemExit(f"cnn {cnn.version} carries no prior correction")
    data = shards.ShardSet(prepare.ensure_shards(args.data_dir, "bitmap", cnn.classes), "bitmap", cnn.classes)
    log_prior = np.asarray(correction.log_prior)
    logits, _, y = outputs(cnn, data, args.split, correction.tau * log_prior)
    with_bitmaps = set(category_files(args.data_dir, "numpy_bitmap"))
    groups = Groups(
        np.array([i for i, c in enumerate(cnn.classes) if c in with_bitmaps]),
        np.array([i for i, c in enumerate(cnn.classes) if c not in with_bitmaps]),
        np.arange(len(cnn.classes)),
    )
    print(
        f"cnn {cnn.version}: {len(y)} {args.split} drawings, {len(groups.bitmap)} + {len(groups.thin)} categories; "
        f"shipped tau {correction.tau}\n"
    )
    print(
        "| tau | bitmap categories | thin categories | all | bitmap categories, top-1 over their drawings "
        "| bitmap categories, among their own outputs | bitmap drawings answered as a thin category |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for tau in sorted({*TAUS, correction.tau}):
        scores = logits - tau * log_prior
        print(f"| {tau:g} | {groups.row(scores, y)} | {groups.bitmap_row(scores, y)} |")
    if args.confusions:
        print_confusions(logits - correction.tau * log_prior, y, cnn.classes, groups, args.confusions)
    if args.alternatives:
        print_alternatives(cnn, data, correction.tau, log_prior, groups)


@dataclass(frozen=True)
class Groups:
    bitmap: np.ndarray
    thin: np.ndarray
    every: np.ndarray

    def row(self, scores: np.ndarray, y: np.ndarray) -> str:
        hits = scores.argmax(axis=1) == y
        mine = np.isin(y, self.bitmap)
        figures = [balanced(hits, y, group) for group in (self.bitmap, self.thin, self.every)]
        return " | ".join(f"{f:.1%}" for f in figures) + f" | {hits[mine].mean():.1%}"

    def bitmap_row(self, scores: np.ndarray, y: np.ndarray) -> str:
        """What the thin categories cost the bitmap ones: their top-1 if only their own outputs could
        answer (class-balanced), and how many of their drawings a thin category takes."""
        mine = np.isin(y, self.bitmap)
        own = self.bitmap[scores[mine][:, self.bitmap].argmax(axis=1)] == y[mine]
        taken = ~np.isin(scores[mine].argmax(axis=1), self.bitmap)
        return f"{balanced(own, y[mine], self.bitmap):.1%} | {taken.mean():.1%}"


def print_confusions(scores: np.ndarray, y: np.ndarray, classes: list[str], groups: Groups, n: int) -> None:
    """The (bitmap category, thin category) pairs that take the most of the bitmap category's drawings."""
    answers = scores.argmax(axis=1)
    taken = np.isin(y, groups.bitmap) & np.isin(answers, groups.thin)
    pairs, counts = np.unique(np.stack([y[taken], answers[taken]]), axis=1, return_counts=True)
    support = np.bincount(y, minlength=len(classes))
    print(f"\n{taken.sum()} bitmap drawings answered as a thin category; the {n} costliest pairs:\n")
    print("| drawn | answered | drawings | share of the drawn category's |")
    print("|---|---|---:|---:|")
    for k in np.argsort(-counts, kind="stable")[:n]:
        drawn, answered = pairs[:, k]
        print(f"| {classes[drawn]} | {classes[answered]} | {counts[k]} | {counts[k] / support[drawn]:.0%} |")
    top = np.sort(counts)[::-1][:n].sum()
    print(f"\nThese {min(n, len(counts))} of {len(counts)} pairs hold {top / max(taken.sum(), 1):.0%} of them.")


def outputs(cnn, data, split: str, undo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits with the shipped correction undone, embeddings and labels of a split."""
    x, y = data.arrays(split)
    logits, embeddings = [], []
    for i in range(0, len(x), 2048):
        probabilities, embedding = cnn.probabilities_and_embedding(Inputs(bitmaps=x[i : i + 2048].astype(np.float32)))
        logits.append(np.log(np.maximum(probabilities, 1e-12)) + undo)
        embeddings.append(embedding)
    return np.concatenate(logits), np.concatenate(embeddings), y


def print_alternatives(cnn, data, shipped_tau: float, log_prior: np.ndarray, groups: Groups) -> None:
    import keras

    splits = {split: outputs(cnn, data, split, shipped_tau * log_prior) for split in ("train", "val", "test")}
    _, train_emb, train_y = splits["train"]
    (val_logits, val_emb, val_y), (test_logits, test_emb, test_y) = splits["val"], splits["test"]
    counts = np.bincount(train_y, minlength=len(cnn.classes))
    means = np.stack([train_emb[train_y == c].mean(axis=0) for c in range(len(cnn.classes))])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-6)
    grid = [(w, tau) for w in MEAN_WEIGHTS for tau in TAUS]
    w, tau = max(grid, key=lambda g: balanced_of(val_logits - g[1] * log_prior + g[0] * val_emb @ means.T, val_y))
    print("\n| alternative (chosen on val) | bitmap categories | thin categories | all | bitmap, over drawings |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| + {w:g} x cosine to class means, tau {tau:g} | "
        f"{groups.row(test_logits - tau * log_prior + w * test_emb @ means.T, test_y)} |"
    )
    # One bias added to every thin category's logits, with tau: the best for the bitmap categories
    # on val among the choices that serve the thin ones at least as well as the shipped tau does.
    thin = np.isin(np.arange(len(cnn.classes)), groups.thin)
    shipped_thin = balanced((val_logits - shipped_tau * log_prior).argmax(axis=1) == val_y, val_y, groups.thin)
    grid = [(tau, bias) for tau in np.arange(0.0, 1.01, 0.1) for bias in np.arange(-3.0, 3.01, 0.25)]
    kept = [
        (tau, bias)
        for tau, bias in grid
        if balanced((val_logits - tau * log_prior + bias * thin).argmax(axis=1) == val_y, val_y, groups.thin)
        >= shipped_thin
    ]
    tau, bias = max(
        kept,
        key=lambda g: balanced(
            (val_logits - g[0] * log_prior + g[1] * thin).argmax(axis=1) == val_y, val_y, groups.bitmap
        ),
    )
    print(
        f"| + {bias:g} on the thin categories' logits, tau {tau:g} | "
        f"{groups.row(test_logits - tau * log_prior + bias * thin, test_y)} |"
    )
    keras.utils.set_random_seed(0)
    layer = keras.Sequential([keras.Input((train_emb.shape[1],)), keras.layers.Dense(len(cnn.classes))])
    layer.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    weights = 1.0 / counts[train_y]
    layer.fit(
        train_emb, train_y, sample_weight=weights / weights.mean(), batch_size=512, epochs=RETRAIN_EPOCHS, verbose=0
    )
    val_new, test_new = layer.predict(val_emb, verbose=0), layer.predict(test_emb, verbose=0)
    tau = max(TAUS, key=lambda t: balanced_of(val_new - t * log_prior, val_y))
    print(
        f"| classifier retrained, class-balanced, {RETRAIN_EPOCHS} epochs, tau {tau:g} | "
        f"{groups.row(test_new - tau * log_prior, test_y)} |"
    )


def balanced_of(scores: np.ndarray, y: np.ndarray) -> float:
    return balanced(scores.argmax(axis=1) == y, y, np.unique(y))


if __name__ == "__main__":
    main()
