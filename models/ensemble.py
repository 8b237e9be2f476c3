"""The CNN x RNN ensemble: a model like any other, answering every class the CNN knows.

``p(c) ~ p_cnn(c) ** (1 - w) * q(c) ** w``, renormalised over the CNN's classes: a product of
experts, where a class wins when both models find it plausible and one model's confident "no"
counts. ``q(c)`` is the RNN's probability for the classes it knows. For a class it was never
trained on, the RNN has no opinion of its own; it is given the RNN's mean probability over the
classes *it* knows and the CNN does not (its "something else" mass per class), times a scale ``s``:
a drawing the RNN takes for none of the shared classes lifts the classes only the CNN knows, and a
drawing it recognises confidently pushes them down. ``w`` and ``s`` are chosen on validation data
by ``training.compare`` (``s`` by hiding classes from the RNN, since no class it never learned has
stroke drawings to measure on) and recorded, with the exact member versions, in the ensemble's card.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from models.answer import TRAINED, Answer
from models.card import FromCard, ModelCard, ModelStoreError
from models.inputs import Inputs
from models.network import Network

# A probability of exactly 0 would veto a class for good.
EPS = 1e-7
RULE = (
    "weighted geometric mean p_cnn^(1-w) * q^w over the CNN's classes, renormalised; q = the RNN's "
    "probability, or for a class the RNN does not know, s times its mean probability over the classes only it knows"
)


def combine(
    cnn_probs: np.ndarray,
    cnn_classes: list[str],
    rnn_probs: np.ndarray,
    rnn_classes: list[str],
    rnn_weight: float,
    unknown_scale: float = 1.0,
) -> np.ndarray:
    """Ensemble probabilities over ``cnn_classes`` (see the module docstring)."""
    column, known, rnn_only = _columns(tuple(cnn_classes), tuple(rnn_classes))
    if len(rnn_only):
        unknown = unknown_scale * rnn_probs[:, rnn_only].mean(axis=1, keepdims=True)
    else:
        unknown = np.full((len(rnn_probs), 1), EPS, dtype=rnn_probs.dtype)
    q = np.where(known, rnn_probs[:, column], unknown).astype(cnn_probs.dtype)
    log_p = (1.0 - rnn_weight) * np.log(np.maximum(cnn_probs, EPS)) + rnn_weight * np.log(np.maximum(q, EPS))
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _columns(cnn_classes: tuple[str, ...], rnn_classes: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """For each CNN class, the RNN's column (0 where it has none) and whether it has one; and the
    RNN's columns of the classes only it knows. Worked out once per pair of models, not per call."""
    rnn_index = {c: i for i, c in enumerate(rnn_classes)}
    cnn_set = set(cnn_classes)
    column = np.array([rnn_index.get(c, 0) for c in cnn_classes], dtype=np.intp)
    known = np.array([c in rnn_index for c in cnn_classes])
    rnn_only = np.array([i for i, c in enumerate(rnn_classes) if c not in cnn_set], dtype=np.intp)
    return column, known, rnn_only


@dataclass
class Ensemble(FromCard):
    card: ModelCard
    cnn: Network
    rnn: Network
    runtime: str = "ensemble"

    @classmethod
    def from_card(cls, card: ModelCard, members: dict) -> Ensemble:
        for kind, version in card.ensemble.members.items():
            member = members.get(kind)
            if member is None:
                raise ModelStoreError(f"ensemble {card.version} needs {kind} {version}, which is not loaded")
            if member.version != version:
                raise ModelStoreError(
                    f"ensemble {card.version} was chosen for {kind} {version}, but {kind} {member.version} is loaded"
                )
        cnn, rnn = members["cnn"], members["rnn"]
        if card.classes != cnn.classes:
            raise ModelStoreError(f"ensemble {card.version}: its classes are not the CNN's")
        return cls(card, cnn, rnn)

    @property
    def max_len(self) -> int | None:
        return self.rnn.max_len

    @property
    def notes(self) -> list[str]:
        return [*self.cnn.notes, *self.rnn.notes]

    @property
    def uses(self) -> frozenset[str]:
        return self.cnn.uses | (self.rnn.uses if self.card.ensemble.rnn_weight else frozenset())

    @property
    def origins(self) -> list[str]:
        return [TRAINED] * len(self.card.classes)

    def predict(self, inputs: Inputs) -> Answer:
        spec = self.card.ensemble
        cnn_probs = self.cnn.probabilities(inputs)
        if spec.rnn_weight == 0.0:
            # Its opinion weighs nothing: running the RNN would change no number of the answer.
            rnn_probs = np.full((len(cnn_probs), len(self.rnn.classes)), 1.0 / len(self.rnn.classes), np.float32)
        else:
            rnn_probs = self.rnn.probabilities(inputs)
        probs = combine(cnn_probs, self.cnn.classes, rnn_probs, self.rnn.classes, spec.rnn_weight, spec.unknown_scale)
        return Answer(probs, self.classes, self.origins)
