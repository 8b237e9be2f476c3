"""The joint ranking's calibration and its measurement: trained classes beside similarity classes.

``fit_calibration`` chooses the temperature and offset of ``models.prototypes.rank_all`` on
validation drawings of both kinds; ``evaluate`` measures a choice on held-out drawings, plain and
class-balanced. ``_Fast`` gets every setting's top-k hits without a softmax per setting.
"""

from __future__ import annotations

import itertools

import numpy as np

from models.prototypes import Bank, rank_all

METHODS = [("mean", None), ("knn", 1), ("knn", 3), ("knn", 5), ("knn", 10)]
TEMPERATURES = [0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1]
# The trained categories may lose at most this much top-1 against the CNN alone (on validation,
# with a margin so that the held-out figure keeps within a point).
MAX_TRAINED_LOSS = 0.008


def topk(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per drawing: is the label among the k most probable."""
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def balanced(hits: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of the per-class rate: every category weighs the same."""
    return float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))


def choose_method(bank: Bank, emb: np.ndarray, labels: np.ndarray) -> tuple[str, int | None, dict]:
    scores = {}
    for method, k in METHODS:
        sims = bank.similarity(emb, method, k)
        scores[f"{method}{k or ''}"] = float((sims.argmax(axis=1) == labels).mean())
    best = max(METHODS, key=lambda mk: scores[f"{mk[0]}{mk[1] or ''}"])
    return best[0], best[1], scores


def _ranks(own: np.ndarray, other_sorted: np.ndarray, own_rank: np.ndarray, k: int, threshold) -> np.ndarray:
    """Hits at k when a drawing's true class scores ``own`` and is ``own_rank``-th among its kind, and the
    other kind's top scores (descending) are compared through ``threshold(other) > own``."""
    above = (threshold(other_sorted[:, :k]) > own[:, None]).sum(axis=1)
    return own_rank + above < k


class _Fast:
    """The joint ranking's top-k hits for any (temperature, offset), without a softmax per setting:
    only the true class's score and the other kind's k best scores matter."""

    def __init__(self, probs: np.ndarray, sims: np.ndarray, labels: np.ndarray, trained: bool):
        logp = np.log(np.maximum(probs, 1e-7))
        own_scores = logp if trained else sims
        other = sims if trained else logp
        self.own = own_scores[np.arange(len(labels)), labels]
        self.rank = (own_scores > self.own[:, None]).sum(axis=1)
        self.other = -np.sort(-other, axis=1)[:, :5]
        self.trained = trained

    def hits(self, k: int, temp: float, offset: float) -> np.ndarray:
        if self.trained:  # a prototype class beats it when sim / T - b > log p(label)
            return _ranks(self.own, self.other, self.rank, k, lambda s: s / temp - offset)
        return _ranks(self.own / temp - offset, self.other, self.rank, k, lambda logp: logp)


def fit_calibration(t_probs, t_sims, t_labels, p_probs, p_sims, p_labels) -> tuple[float, float, dict]:
    """(temperature, offset) maximising the similarity classes' class-balanced top-1 + top-5 on validation
    (a prototype or taught category found when drawn again), among those that cost the trained categories
    at most MAX_TRAINED_LOSS of top-1 against the CNN alone (without stealing the built-ins' answers)."""
    alone = float(topk(t_probs, t_labels, 1).mean())
    tf, pf = _Fast(t_probs, t_sims, t_labels, True), _Fast(p_probs, p_sims, p_labels, False)
    best, best_score = None, -1.0
    for temp, offset in itertools.product(TEMPERATURES, np.arange(-20.0, 80.0, 0.25)):
        if alone - tf.hits(1, temp, offset).mean() > MAX_TRAINED_LOSS:
            continue
        score = sum(balanced(pf.hits(k, temp, offset), p_labels) for k in (1, 5))
        if score > best_score:
            best, best_score = (temp, float(offset)), score
    if best is None:
        raise RuntimeError("no temperature/offset keeps the trained categories within the allowed loss")
    return best[0], best[1], {"val_score": best_score, "val_trained_top1_alone": alone}


def evaluate(t_probs, t_sims, t_labels, p_probs, p_sims, p_labels, temp, offset) -> dict:
    n_trained = t_probs.shape[1]
    pt = rank_all(t_probs, t_sims, temp, offset)
    pp = rank_all(p_probs, p_sims, temp, offset)
    out = {}
    for k in (1, 5):
        alone = topk(t_probs, t_labels, k)
        t_hits, p_hits = topk(pt, t_labels, k), topk(pp, p_labels + n_trained, k)
        out[f"trained_alone_top{k}"] = float(alone.mean())
        out[f"trained_top{k}"] = float(t_hits.mean())
        out[f"prototype_top{k}"] = float(p_hits.mean())
        out[f"all_top{k}"] = float(np.concatenate([t_hits, p_hits]).mean())
        out[f"trained_alone_balanced_top{k}"] = balanced(alone, t_labels)
        out[f"trained_balanced_top{k}"] = balanced(t_hits, t_labels)
        out[f"prototype_balanced_top{k}"] = balanced(p_hits, p_labels)
        labels = np.concatenate([t_labels, p_labels + n_trained])
        out[f"all_balanced_top{k}"] = balanced(np.concatenate([t_hits, p_hits]), labels)
    out["n_trained"], out["n_prototype"] = len(t_labels), len(p_labels)
    # How often a trained-category drawing is answered by a prototype class, and the reverse.
    out["trained_answered_by_prototype"] = float((pt.argmax(axis=1) >= n_trained).mean())
    out["prototype_answered_by_trained"] = float((pp.argmax(axis=1) < n_trained).mean())
    return out


def report_table(r: dict, n_trained: int, n_proto: int, n_taught: int) -> str:
    rows = [
        (f"{n_trained} trained categories, CNN alone (ranking its {n_trained})", "trained_alone", r["n_trained"]),
        (f"{n_trained} trained categories, ranked among all", "trained", r["n_trained"]),
        (f"{n_proto} prototype + {n_taught} taught categories, ranked among all", "prototype", r["n_prototype"]),
        ("all", "all", r["n_trained"] + r["n_prototype"]),
    ]
    lines = [
        "| held-out drawings | n | top-1 | top-5 | top-1, class-balanced | top-5, class-balanced |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for title, key, n in rows:
        lines.append(
            f"| {title} | {n} | {r[key + '_top1']:.1%} | {r[key + '_top5']:.1%} | "
            f"{r[key + '_balanced_top1']:.1%} | {r[key + '_balanced_top5']:.1%} |"
        )
    return "\n".join(lines)
