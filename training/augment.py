"""Stroke-level augmentation: a drawing as another hand might have made it, then normalised again.

Used by the RNN on every training drawing, and by ``training.records`` for the training copies of
the categories known only by stroke drawings.
"""

from __future__ import annotations

import numpy as np

from sketch.drawing import Drawing
from sketch.strokes import SIMPLIFIED_SIDE, normalize


def augment(drawing: Drawing, rng: np.random.Generator) -> Drawing:
    """A plausible other hand: random stretch, shear and small turn, then the usual normalisation.

    No mirroring: the order and direction of the strokes is what this model reads, and people
    draw with a handedness.
    """
    angle = rng.uniform(-0.2, 0.2)
    c, s = np.cos(angle), np.sin(angle)
    stretch = np.diag(rng.uniform(0.75, 1.25, size=2))
    shear = np.array([[1.0, rng.uniform(-0.2, 0.2)], [rng.uniform(-0.2, 0.2), 1.0]])
    matrix = np.array([[c, -s], [s, c]]) @ shear @ stretch
    return normalize(Drawing((drawing.points - SIMPLIFIED_SIDE / 2) @ matrix.T, drawing.counts))
