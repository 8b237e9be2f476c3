"""What serving-time tricks give the shipped CNN on a class-balanced evaluation of its test split.

Class-balanced: the mean over the 78 classes of each class's top-k rate (an equal number of
drawings per class, in expectation). Ablation, without retraining:

- horizontal-flip test-time augmentation: the mean of the probabilities of the drawing and of its
  mirror image (the CNN was trained with random flips);
- prior balancing: the CNN learned on imbalanced classes (450-5,880 drawings) with class weights
  1/sqrt(frequency), so its outputs still lean to frequent classes; dividing by
  frequency^alpha (renormalised) removes that lean, alpha chosen on the validation split.

    .venv/bin/python bench/cnn_balanced.py [--data-dir ../shared/quickdraw]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.inputs import Inputs
from models.loading import latest_version
from models.network import load_network
from training.data import load_bitmap_splits

ALPHAS = np.round(np.arange(0.0, 1.01, 0.05), 2)


def probabilities(cnn, x: np.ndarray, flip: bool) -> np.ndarray:
    x = x[:, :, ::-1] if flip else x
    batches = (x[i : i + 512].astype(np.float32) for i in range(0, len(x), 512))
    return np.concatenate([cnn.probabilities(Inputs(bitmaps=b)) for b in batches])


def balanced_topk(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    hits = (np.argpartition(-probs, k - 1, axis=1)[:, :k] == labels[:, None]).any(axis=1)
    return float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))


def rebalance(probs: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    p = probs / prior**alpha
    return p / p.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    args = parser.parse_args(argv)
    cnn = load_network(latest_version(args.model_store / "cnn"))
    splits = load_bitmap_splits(args.data_dir, cnn.classes)
    prior = np.bincount(splits.y["train"], minlength=len(cnn.classes)) / len(splits.y["train"])
    out = {}
    for split in ("val", "test"):
        plain = probabilities(cnn, splits.x[split], False)
        out[split] = {"plain": plain, "flip": (plain + probabilities(cnn, splits.x[split], True)) / 2}
    rows = []
    for name in ("plain", "flip"):
        val, test = out["val"][name], out["test"][name]
        alpha = max(ALPHAS, key=lambda a: balanced_topk(rebalance(val, prior, a), splits.y["val"], 1))
        for a, label in ((0.0, ""), (alpha, f" + prior balancing (alpha {alpha:g}, on val)")):
            p = rebalance(test, prior, a)
            rows.append(
                (
                    f"{'flip TTA' if name == 'flip' else 'as served'}{label}",
                    balanced_topk(p, splits.y["test"], 1),
                    balanced_topk(p, splits.y["test"], 5),
                    float((p.argmax(axis=1) == splits.y["test"]).mean()),
                )
            )
    print(f"cnn {cnn.version}, test split: {len(splits.y['test'])} drawings, {len(cnn.classes)} classes\n")
    print("| serving | top-1, class-balanced | top-5, class-balanced | top-1 (all drawings) |")
    print("|---|---:|---:|---:|")
    for name, t1, t5, micro in rows:
        print(f"| {name} | {t1:.1%} | {t5:.1%} | {micro:.1%} |")


if __name__ == "__main__":
    main()
