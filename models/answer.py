"""What every model answers: probabilities over its classes, and where each class comes from.

One shape for a network, the ensemble and the model with prototype and taught classes alike, so
callers never ask which model they hold. A class's origin is ``trained`` (an output the network
learned), ``prototype`` (answered by similarity to stored examples) or ``taught`` (by similarity to
drawings a player sent while the service runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAINED, PROTOTYPE, TAUGHT = "trained", "prototype", "taught"


@dataclass(frozen=True)
class Answer:
    probabilities: np.ndarray  # float32 (n, len(classes))
    classes: list[str]
    origins: list[str]  # per class: TRAINED, PROTOTYPE or TAUGHT
