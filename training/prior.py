"""Post-hoc logit adjustment (Menon et al. 2021): a classifier trained on a long tail, made fair to its rare classes.

A network trained on 2,500 drawings of some classes and 40 of others learns their frequencies as
a prior: ``log p(c | x)`` carries ``+ log pi_c``. Subtracting ``tau * log pi_c`` from its logits
removes that prior, by an amount ``tau`` chosen on the validation split for the class-balanced
top-1 (every class counts the same). The adjustment is folded into the bias of the softmax layer,
so the exported graph answers the adjusted probabilities at no cost per request.
"""

from __future__ import annotations

import numpy as np

from models.card import PriorCorrection

TAUS = tuple(round(t, 2) for t in np.arange(0.0, 1.51, 0.1))


def log_prior(train_counts: np.ndarray) -> np.ndarray:
    """``log pi_c``: each class's share of the training drawings."""
    return np.log(train_counts / train_counts.sum())


def balanced_top1(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """The mean over classes of each class's top-1 recall (classes with no drawing left out)."""
    hits = scores.argmax(axis=1) == labels
    per_class = [hits[labels == c].mean() for c in range(num_classes) if (labels == c).any()]
    return float(np.mean(per_class))


def choose_tau(probs: np.ndarray, labels: np.ndarray, train_counts: np.ndarray) -> PriorCorrection:
    """The ``tau`` of ``TAUS`` with the best class-balanced validation top-1; every candidate's figure."""
    log_p = np.log(np.maximum(probs, 1e-12))
    prior = log_prior(train_counts)
    table = {tau: balanced_top1(log_p - tau * prior, labels, len(train_counts)) for tau in TAUS}
    best = max(table, key=lambda t: (round(table[t], 4), -t))  # a tie goes to the smaller change
    return PriorCorrection(
        tau=best,
        log_prior=[round(float(v), 6) for v in prior],
        chosen_on=f"val split, {len(labels)} drawings: class-balanced top-1 by tau",
        val_balanced_top1={str(t): round(v, 4) for t, v in table.items()},
    )


def adjusted_loss(train_counts: np.ndarray, tau: float):
    """The logit-adjusted loss (Menon et al. 2021, eq. 10) for a model that outputs softmax
    probabilities: cross-entropy of ``softmax(z + tau * log pi)``, so the network learns logits
    free of the prior instead of having it subtracted afterwards."""
    import keras

    shift = (tau * log_prior(train_counts)).astype("float32")

    def loss(labels, probabilities):
        logits = keras.ops.log(keras.ops.maximum(probabilities, 1e-30)) + shift
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    return loss


def fold_into_bias(model, correction: PriorCorrection, layer: str = "probabilities") -> None:
    """Subtract ``tau * log_prior`` from the softmax layer's bias, in place."""
    dense = model.get_layer(layer)
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias - correction.tau * np.asarray(correction.log_prior, bias.dtype)])
