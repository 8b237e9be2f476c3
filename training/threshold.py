"""Choose the Challenge page's "I know, it's …!" confidence threshold on the validation split.

The game says "I know" the moment the prompt's probability reaches the threshold. A false "I know"
is the game accepting a drawing of something else. The hardest wrong prompt for a drawing is the
class the model confuses it with most, so the rate reported is, over validation drawings, how
often that class reaches the threshold (a player who drew a dog while asked for the cat it looks
like). The threshold is the lowest one whose rate stays within a bound
(``training.prototypes.MAX_FALSE_I_KNOW``): lower would accept more wrong drawings, higher would
make right drawings wait longer. A model too weak for the bound (a few categories, a few epochs)
still gets a game: the threshold with the lowest rate, and its card says the bound was not met.

``training.prototypes`` chooses it for the player's default model on the validation split (never
the test split) and records it, with the prompts' order, in that model's card (``challenge``).
"""

from __future__ import annotations

import numpy as np

GRID = np.round(np.arange(0.05, 1.0, 0.01), 2)


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


def choose(table: dict[str, np.ndarray], max_false_rate: float) -> tuple[int, bool]:
    """Index of the lowest threshold whose hardest-prompt false rate is within the bound, and True;
    when none is, of the lowest threshold with the lowest rate, and False."""
    ok = np.flatnonzero(table["false_hardest"] <= max_false_rate)
    if len(ok):
        return int(ok[0]), True
    return int(np.argmin(table["false_hardest"])), False
