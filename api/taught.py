"""Taught categories in the served model: checking what a player sends, and keeping every replica in step.

A category's drawings are embedded once, where it is taught, and the vectors are stored with it
(with the version of the network that computed them). ``TaughtClasses.refresh`` reads the
database's version counter (one primary-key read) and, only when it moved, reloads the list of
taught categories and the stored vectors of those it has not seen (cached per category id), and
swaps the prototype model's taught classes in one assignment. Only vectors by another network
version (the model was replaced) are computed again, once, and stored back. It runs in the thread
pool, never on the event loop: right after a teach or a delete on this replica (so its answer
already counts), and every ``POLL_SECONDS`` in the background (categories taught through another
replica or worker). A prediction never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import numpy as np
from fastapi.concurrency import run_in_threadpool

from api.schemas import MAX_POINTS
from models.inputs import inputs_of
from models.kinds import BITMAP
from models.loading import LoadedModels
from models.prototypes import PrototypeModel
from sketch.strokes import from_dataset_format, normalize, parse_strokes, to_dataset_format
from store import taught as taught_rows
from store.db import Database, StoreUnavailableError
from store.taught import Category, Embedded

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


def simplify_drawings(drawings: list) -> list[list]:
    """Each drawing in the dataset's simplified form; ``ValueError`` names the first bad one."""
    out = []
    for i, drawing in enumerate(drawings):
        try:
            out.append(to_dataset_format(normalize(parse_strokes(drawing, max_points=MAX_POINTS))))
        except ValueError as exc:  # EmptyDrawingError included
            raise ValueError(f"drawings[{i}]: {exc}") from None
    return out


class TaughtClasses:
    """The taught categories of the database, as the prototype model's taught classes."""

    def __init__(self, database: Database, loaded: LoadedModels):
        self.database = database
        self.loaded = loaded
        self.version: int | None = None
        self._embeddings: dict[int, np.ndarray] = {}  # category id -> its drawings' embeddings
        self._lock = threading.Lock()

    @property
    def model(self) -> PrototypeModel | None:
        return self.loaded.teachable

    def embed(self, simplified: list) -> Embedded:
        """Simplified drawings as the served network embeds them, ready to store with their category."""
        model = self.model
        vectors = model.embed(inputs_of([from_dataset_format(d) for d in simplified], frozenset({BITMAP})))
        return Embedded(np.ascontiguousarray(vectors, np.float32).tobytes(), model.cnn.version)

    def refresh(self) -> None:
        """Bring the model's taught classes up to the database's version (cheap when nothing changed)."""
        model = self.model
        if model is None:
            return
        with self.database.session() as session:
            if taught_rows.version(session) == self.version:
                return
        with self._lock, self.database.session() as session:
            now = taught_rows.snapshot(session, frozenset(self._embeddings), model.cnn.version)
            if now.version == self.version:
                return
            dim = model.cnn.card.embedding.dim
            for cid, vectors in now.embedded.items():
                self._embeddings[cid] = np.frombuffer(vectors, np.float32).reshape(-1, dim)
            for cid, drawings in now.drawings.items():
                embedded = self.embed(drawings)
                self._embeddings[cid] = np.frombuffer(embedded.vectors, np.float32).reshape(-1, dim)
                # For the other workers; each computes them again if this write fails.
                with contextlib.suppress(StoreUnavailableError), self.database.session() as writer:
                    taught_rows.keep_embeddings(writer, cid, embedded)
            self._embeddings = {c.id: self._embeddings[c.id] for c in now.categories}
            self._apply(model, now.categories)
            self.version = now.version

    def _apply(self, model: PrototypeModel, taught: list[Category]) -> None:
        dim = model.cnn.card.embedding.dim
        parts = [self._embeddings[c.id] for c in taught]
        embeddings = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        labels = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]) if parts else np.zeros(0, int)
        model.set_taught([c.name for c in taught], embeddings, labels)

    async def follow(self) -> None:
        """Refresh every ``POLL_SECONDS`` in the thread pool, for the life of the app."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await run_in_threadpool(self.refresh_quietly)

    def refresh_quietly(self) -> None:
        """``refresh`` after a change this replica committed: a failure leaves the categories as they
        were until the next poll, and never turns the committed change into an error."""
        try:
            self.refresh()
        except StoreUnavailableError:
            pass
        except Exception:
            log.exception("refreshing the taught categories failed; the next poll tries again")
