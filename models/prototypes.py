"""Every category in one ranking: the CNN's trained classes, prototype classes and taught ones.

A *prototype* class has no output of its own in the CNN: it is answered by the cosine similarity
of the drawing's embedding (``models.card.EmbeddingSpec``) to stored example embeddings of the
class (the bank, ``prototypes.npz``, built once by ``training.prototypes``), either to the mean
of its examples or as the mean similarity of its ``k`` nearest examples. A *taught* class is the
same thing built from drawings a player sent (``POST /categories``), added while serving.

One softmax ranks them all: ``log p_cnn(c)`` for a trained class, ``sim(c) / T - b`` for a
prototype or taught class. ``T`` (temperature) and ``b`` (offset) are fitted on validation
drawings of both kinds, under the constraint that the trained classes lose at most a point of
top-1 against the CNN alone; they are recorded in the card.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.answer import PROTOTYPE, TAUGHT, TRAINED, Answer
from models.card import FromCard, ModelCard, ModelStoreError
from models.inputs import Inputs
from models.network import Network

EPS = 1e-7
RULE = (
    "softmax over log p_cnn(c) for the CNN's classes and sim(c) / temperature - offset for prototype and "
    "taught classes; sim = cosine similarity of the embeddings (to the class mean, or the mean of the k nearest)"
)


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)).astype(np.float32)


@dataclass(frozen=True)
class Bank:
    """Example embeddings of some classes, with an index that groups them by class."""

    classes: tuple[str, ...]
    embeddings: np.ndarray  # (examples, dim), unit norm
    means: np.ndarray  # (classes, dim), unit norm
    index: np.ndarray  # (classes, max examples): rows of ``embeddings``; padding points one past the end
    counts: np.ndarray  # (classes,) examples per class

    @classmethod
    def build(cls, classes: list[str], embeddings: np.ndarray, labels: np.ndarray) -> Bank:
        embeddings = np.asarray(embeddings, np.float32)
        counts = np.bincount(labels, minlength=len(classes)).astype(int)
        index = np.full((len(classes), int(counts.max(initial=1))), len(embeddings))
        means = np.zeros((len(classes), embeddings.shape[1]), np.float32)
        for c in range(len(classes)):
            rows = np.flatnonzero(labels == c)
            index[c, : len(rows)] = rows
            means[c] = embeddings[rows].mean(axis=0) if len(rows) else 0.0
        return cls(tuple(classes), embeddings, normalise(means), index, counts)

    @classmethod
    def empty(cls, dim: int) -> Bank:
        return cls.build([], np.zeros((0, dim), np.float32), np.zeros(0, int))

    def similarity(self, emb: np.ndarray, method: str, k: int | None = None) -> np.ndarray:
        """Cosine similarity of each embedding to each class, (n, classes)."""
        if not self.classes:
            return np.zeros((len(emb), 0), np.float32)
        if method == "mean":
            return emb @ self.means.T
        # One matrix product for every example, then each class's k best (padding scores -inf).
        sims = np.concatenate([emb @ self.embeddings.T, np.full((len(emb), 1), -np.inf, np.float32)], axis=1)
        grouped = sims[:, self.index]  # (n, classes, max examples)
        k_c = np.minimum(self.counts, k)  # a class with fewer examples than k averages what it has
        kmax = int(k_c.max())
        if kmax < grouped.shape[2]:
            grouped = -np.partition(-grouped, kmax - 1, axis=2)[:, :, :kmax]
        top = -np.sort(-grouped, axis=2)[:, :, :kmax]
        top = np.where(np.arange(kmax)[None, None, :] < k_c[None, :, None], top, 0.0)
        return (top.sum(axis=2) / k_c[None, :]).astype(np.float32)


def rank_all(trained_probs: np.ndarray, sims: np.ndarray, temperature: float, offset: float) -> np.ndarray:
    """Probabilities over ``trained + similarity classes`` (module docstring)."""
    logits = np.concatenate([np.log(np.maximum(trained_probs, EPS)), sims / temperature - offset], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class PrototypeModel(FromCard):
    """The CNN plus its prototype bank and the taught classes: one model over every category."""

    card: ModelCard
    cnn: Network  # with an embedding
    bank: Bank
    taught: Bank
    runtime: str = "prototypes"

    @classmethod
    def from_card(cls, card: ModelCard, folder: Path, members: dict) -> PrototypeModel:
        spec = card.prototypes
        cnn = members.get("cnn")
        version = spec.members["cnn"]
        if cnn is None:
            raise ModelStoreError(f"prototypes {card.version} needs cnn {version}, which is not loaded")
        if cnn.version != version:
            raise ModelStoreError(
                f"prototypes {card.version} were built with the embedding of cnn {version}, but cnn {cnn.version} "
                "is loaded: rebuild them with python -m training.prototypes"
            )
        if cnn.card.embedding is None:
            raise ModelStoreError(f"prototypes {card.version}: cnn {cnn.version} exports no embedding")
        if card.classes[: spec.trained_classes] != cnn.classes:
            raise ModelStoreError(f"prototypes {card.version}: its first classes are not the CNN's")
        path = Path(folder) / spec.file
        try:
            with np.load(path, allow_pickle=False) as f:
                embeddings, labels = f["embeddings"].astype(np.float32), f["labels"].astype(int)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated, not an npz...
            raise ModelStoreError(f"prototypes {card.version}: {path} is unreadable: {exc}") from None
        proto_classes = card.classes[spec.trained_classes :]
        if embeddings.shape[1:] != (cnn.card.embedding.dim,) or len(labels) != len(embeddings):
            raise ModelStoreError(f"prototypes {card.version}: {path} does not hold the CNN's embeddings")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(proto_classes)):
            raise ModelStoreError(f"prototypes {card.version}: {path} has labels outside its classes")
        bank = Bank.build(proto_classes, embeddings, labels)
        return cls(card, cnn, bank, Bank.empty(cnn.card.embedding.dim))

    @property
    def classes(self) -> list[str]:
        return self.listing()[0]

    @property
    def origins(self) -> list[str]:
        return self.listing()[1]

    def listing(self) -> tuple[list[str], list[str]]:
        """Classes and their origins from one snapshot of the taught classes."""
        taught = self.taught
        return [*self.card.classes, *taught.classes], self._origins(taught)

    def _origins(self, taught: Bank) -> list[str]:
        spec = self.card.prototypes
        n_proto = len(self.card.classes) - spec.trained_classes
        return [TRAINED] * spec.trained_classes + [PROTOTYPE] * n_proto + [TAUGHT] * len(taught.classes)

    @property
    def max_len(self) -> int | None:
        return None

    @property
    def uses(self) -> frozenset[str]:
        return self.cnn.uses

    @property
    def notes(self) -> list[str]:
        return self.cnn.notes

    def embed(self, inputs: Inputs) -> np.ndarray:
        return self.cnn.embed(inputs)

    def set_taught(self, classes: list[str], embeddings: np.ndarray, labels: np.ndarray) -> None:
        """Replace the taught classes (their example embeddings); requests see the old or the new set."""
        self.taught = Bank.build(classes, embeddings, labels)

    def predict(self, inputs: Inputs) -> Answer:
        """Probabilities with the classes and origins they belong to, from one snapshot of the taught classes."""
        taught = self.taught
        spec = self.card.prototypes
        if not self.bank.classes and not taught.classes:
            # Nothing to compare with: the network's probabilities, from its cheaper graph.
            return Answer(self.cnn.probabilities(inputs), list(self.card.classes), self._origins(taught))
        probs, emb = self.cnn.probabilities_and_embedding(inputs)
        sims = [self.bank.similarity(emb, spec.method, spec.knn_k), taught.similarity(emb, spec.method, spec.knn_k)]
        p = rank_all(probs, np.concatenate(sims, axis=1), spec.temperature, spec.offset)
        return Answer(p, [*self.card.classes, *taught.classes], self._origins(taught))
