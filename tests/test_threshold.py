"""The Challenge's "I know" threshold: the false rate is counted on wrong drawings, the lowest safe threshold wins."""

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
    assert table["threshold"][choose(table, 0.34)] == 0.5


def test_no_safe_threshold_is_an_error():
    probs = np.array([[0.0, 1.0]], dtype=np.float32)  # certain, and wrong
    with pytest.raises(SystemExit, match="no threshold"):
        choose(rates(probs, np.array([0]), GRID), 0.01)
