"""Taught categories in the served model: checking what a player sends, and keeping every replica in step.

``TaughtClasses.refresh`` runs before each prediction: it reads the database's version counter
(one primary-key read) and, only when it moved, reloads the list of taught categories, embeds the
drawings of those it has not seen (cached per category id), and swaps the prototype model's taught
classes in one assignment.
"""

from __future__ import annotations

import threading

import numpy as np

from api.schemas import MAX_POINTS
from models.loading import Inputs, Store
from models.prototypes import PrototypeModel
from sketch.raster import render_simplified
from sketch.strokes import normalize, parse_strokes, to_dataset_format
from store import taught as store
from store.db import Database
from store.taught import Category

PROTOTYPES = "prototypes"


def simplify_drawings(drawings: list) -> list[list]:
    """Each drawing in the dataset's simplified form; ``ValueError`` names the first bad one."""
    out = []
    for i, drawing in enumerate(drawings):
        try:
            out.append(to_dataset_format(normalize(parse_strokes(drawing, max_points=MAX_POINTS))))
        except ValueError as exc:  # EmptyDrawingError included
            raise ValueError(f"drawings[{i}]: {exc}") from None
    return out


def bitmaps_of(simplified: list[list]) -> np.ndarray:
    """float32 (n, 28, 28): simplified drawings rendered as the CNN reads them."""
    strokes = [[np.asarray(s, np.float64).T for s in d] for d in simplified]
    return np.stack([render_simplified(s) for s in strokes]).astype(np.float32)


class TaughtClasses:
    """The taught categories of the database, as the prototype model's taught classes."""

    def __init__(self, database: Database, models: Store):
        self.database = database
        self.models = models
        self.version: int | None = None
        self._embeddings: dict[int, np.ndarray] = {}  # category id -> its drawings' embeddings
        self._lock = threading.Lock()

    @property
    def model(self) -> PrototypeModel | None:
        model = self.models.models.get(PROTOTYPES)
        return model if isinstance(model, PrototypeModel) else None

    def refresh(self) -> None:
        """Bring the model's taught classes up to the database's version (cheap when nothing changed)."""
        model = self.model
        if model is None or store.version(self.database) == self.version:
            return
        with self._lock:
            version = store.version(self.database)
            if version == self.version:
                return
            taught = store.listing(self.database)
            new = [c.id for c in taught if c.id not in self._embeddings]
            for cid, drawings in store.drawings_of(self.database, new).items():
                self._embeddings[cid] = model.embed(Inputs(bitmaps=bitmaps_of(drawings)))
            self._embeddings = {c.id: self._embeddings[c.id] for c in taught if c.id in self._embeddings}
            self._apply(model, taught)
            self.version = version

    def _apply(self, model: PrototypeModel, taught: list[Category]) -> None:
        dim = model.cnn.card.embedding.dim
        parts = [self._embeddings[c.id] for c in taught]
        embeddings = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        labels = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]) if parts else np.zeros(0, int)
        model.set_taught([c.name for c in taught], embeddings, labels)
