"""What every training run shares: the seed, class weights and the wall-clock budget callbacks."""

from __future__ import annotations

import time

import numpy as np

SEED = 1337


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> dict[int, float]:
    """Weights ~ (1/frequency)^power, mean 1: small classes count more without drowning the big ones."""
    return weights_for_counts(np.bincount(labels, minlength=num_classes), power)


def weights_for_counts(counts: np.ndarray, power: float) -> dict[int, float]:
    """``class_weights`` from the drawings per class (e.g. a shard manifest's counts)."""
    counts = np.asarray(counts, dtype=float)
    num_classes = len(counts)
    w = (counts.sum() / np.maximum(counts, 1) / num_classes) ** power
    w /= (w * counts).sum() / counts.sum()
    return {i: float(v) for i, v in enumerate(w)}


def time_budget(minutes: float):
    """A Keras callback that stops training before an epoch that would overrun the wall-clock budget."""
    import keras

    budget = minutes * 60

    class _TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.monotonic() - self.start
            if elapsed / (epoch + 1) * (epoch + 2) > budget:
                print(f"time budget: stopping after epoch {epoch + 1} ({elapsed / 60:.1f} min)")
                self.model.stop_training = True

    return _TimeBudget()


def cosine_over_budget(base_lr: float, total_steps: int, budget_s: float):
    """Cosine learning-rate decay over whichever runs out first, the steps or the wall-clock budget.

    A step-based schedule would still be near its peak when the time budget stops training on a
    slow machine; this one always ends at a low rate.
    """
    import keras

    class _CosineOverBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.step = time.monotonic(), 0

        def on_train_batch_begin(self, batch, logs=None):
            done = max(self.step / total_steps, (time.monotonic() - self.start) / budget_s)
            self.model.optimizer.learning_rate.assign(base_lr * 0.5 * (1 + np.cos(np.pi * min(done, 1.0))))
            self.step += 1

    return _CosineOverBudget()
