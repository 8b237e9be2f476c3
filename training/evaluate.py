"""Evaluation shared by every model: top-k accuracy, per-class precision/recall/F1, plots."""

from __future__ import annotations

import csv
from math import comb
from pathlib import Path

import numpy as np


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    topk = np.argsort(-probs, axis=1)[:, :k]
    return float((topk == labels[:, None]).any(axis=1).mean())


def mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (two models on the same drawings)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def per_class_scores(cm: np.ndarray, classes: list[str]) -> list[dict]:
    """Precision, recall, F1 and support per class (rows = true class), sorted as ``classes``."""
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return [
        {
            "class": c,
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    ]


def evaluate(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """All headline metrics plus the per-class table and the confusion matrix."""
    cm = confusion_matrix(labels, probs.argmax(axis=1), len(classes))
    per_class = per_class_scores(cm, classes)
    present = [r for r in per_class if r["support"] > 0]
    return {
        "n": len(labels),
        "top1": round(top_k_accuracy(probs, labels, 1), 4),
        "top3": round(top_k_accuracy(probs, labels, 3), 4),
        "top5": round(top_k_accuracy(probs, labels, 5), 4),
        "macro_f1": round(float(np.mean([r["f1"] for r in present])), 4),
        "worst5_f1": sorted(present, key=lambda r: r["f1"])[:5],
        "per_class": per_class,
        "confusion": cm,
    }


def summary(result: dict, minutes: float) -> str:
    """The two lines a training run ends with: headline test metrics and the weakest classes."""
    return (
        f"test: top-1 {result['top1']:.2%}  top-3 {result['top3']:.2%}  top-5 {result['top5']:.2%}  "
        f"macro-F1 {result['macro_f1']:.3f}  ({minutes:.1f} min)\n"
        "worst classes by F1: " + ", ".join(f"{r['class']} {r['f1']:.2f}" for r in result["worst5_f1"])
    )


def write_report(result: dict, classes: list[str], out_dir: Path, history: dict | None = None) -> None:
    """``per_class.csv``, ``confusion_matrix.png`` and (with a history) ``training_curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "per_class.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["class", "precision", "recall", "f1", "support"])
        writer.writeheader()
        writer.writerows(result["per_class"])

    cm = result["confusion"].astype(float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(6, len(classes) * 0.16)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=6)
    ax.set_yticks(range(len(classes)), classes, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion (row-normalised), top-1 {result['top1']:.1%}")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=110)
    plt.close(fig)

    if history:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for key, ax in (("loss", ax1), ("accuracy", ax2)):
            ax.plot(history.get(key, []), label=f"train {key}")
            ax.plot(history.get(f"val_{key}", []), label=f"val {key}")
            ax.set_xlabel("epoch")
            ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "training_curves.png", dpi=100)
        plt.close(fig)
