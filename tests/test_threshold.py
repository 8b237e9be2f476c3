"""The Challenge's "I know" threshold: the false rate is counted on wrong drawings, the lowest safe threshold wins
(or, when none is safe, the safest)."""

from __future__ import annotations

import numpy as np
import pytest

from training.threshold import GRID, choose, rates


def test_false_i_know_counts_the_class_a_drawing_is_confused_with():
    # Three classes; drawing 0 is a confident right answer, drawing 1 a confident wrong one (it looks
    # like class 2), drawing 2 is unsure.
    probs = np.array([[0.90, 0.05, 0.05], [0.10, 0.10, 0.80], [0.40, 0.30, 0.30]], dtype=np.float32)
    labels = np.array([0, 1, 2])
    table = rates(probs, labels, grid=np.array([0.3, 0.5, 0.85]))
    # At 0.5 only drawing 1's wrong class reaches it; at 0.3 drawing 2's class 0 (0.40) does too.
    assert table["false_hardest"].tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert table["recognised"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3])
    # A random wrong prompt: drawing 1 is caught by 1 of its 2 wrong classes at 0.5.
    assert table["false_random"][1] == pytest.approx((0 + 1 / 2 + 0) / 3)
    assert choose(table, 0.34) == (1, True)  # 0.5


def test_without_a_safe_threshold_the_safest_one_is_chosen_and_said():
    # Drawing 0 is certain and wrong: no threshold is safe. Drawing 1's wrong class stops at 0.6.
    probs = np.array([[0.0, 1.0, 0.0], [0.3, 0.6, 0.1]], dtype=np.float32)
    table = rates(probs, np.array([0, 2]), GRID)
    i, within = choose(table, 0.01)
    assert not within
    assert table["false_hardest"][i] == 0.5 and table["threshold"][i] == 0.61
