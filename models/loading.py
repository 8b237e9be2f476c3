"""A whole model store -> the models it serves, by name; a broken model never stops the others.

A store holds ``<store>/<kind>/<version>/card.json`` (and the model files the card names); the
newest version of each kind is served unless one is pinned. Loading never raises for one broken
model: the loaded set records why it could not be loaded, and the others still serve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from models.answer import Answer
from models.card import CARD_FILE, ModelCard, ModelStoreError
from models.ensemble import Ensemble
from models.inputs import Inputs
from models.kinds import KINDS, LOAD_ORDER
from models.network import load_card, load_network
from models.prototypes import PrototypeModel

log = logging.getLogger(__name__)


class Model(Protocol):
    """What every loaded model offers, whatever its kind."""

    card: ModelCard
    runtime: str

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def classes(self) -> list[str]:
        """Its classes now, in output order (taught classes can come and go)."""
        ...

    @property
    def origins(self) -> list[str]:
        """Each class's origin (``models.answer``), in the order of ``classes``."""
        ...

    @property
    def max_len(self) -> int | None: ...

    @property
    def uses(self) -> frozenset[str]:
        """The prepared inputs its answers are computed from: its kind's ``reads``, or fewer (an
        ensemble whose RNN weighs nothing needs no stroke sequences made)."""
        ...

    @property
    def notes(self) -> list[str]: ...

    def predict(self, inputs: Inputs) -> Answer: ...


def latest_version(kind_dir: Path, pinned: str | None = None) -> Path:
    if pinned:
        path = kind_dir / pinned
        if not (path / CARD_FILE).is_file():
            raise ModelStoreError(f"pinned version {pinned} not found in {kind_dir}")
        return path
    versions = sorted(p for p in kind_dir.iterdir() if (p / CARD_FILE).is_file()) if kind_dir.is_dir() else []
    if not versions:
        raise ModelStoreError(f"no model version with a {CARD_FILE} in {kind_dir}")
    return versions[-1]


@dataclass
class LoadedModels:
    """The models loaded from a store by name, and why the others could not be loaded."""

    by_name: dict[str, Model] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def notes(self) -> dict[str, list[str]]:
        return {n: m.notes for n, m in self.by_name.items() if m.notes}

    @property
    def teachable(self) -> PrototypeModel | None:
        """The model that answers taught classes, when it is loaded."""
        return next((m for m in self.by_name.values() if isinstance(m, PrototypeModel)), None)


def load_model(folder: Path, runtime: str = "auto", members: dict[str, Model] | None = None) -> Model:
    """Any kind's folder: a network, or a composite model over already loaded ``members``."""
    card = load_card(folder)
    if card.prototypes is not None:
        return PrototypeModel.from_card(card, folder, members or {})
    if KINDS[card.kind].composite:
        return Ensemble.from_card(card, members or {})
    return load_network(folder, runtime)


def load_store(store: Path, runtime: str = "auto", pinned: dict[str, str | None] | None = None) -> LoadedModels:
    """Load the newest (or pinned) version of every kind present in the store."""
    loaded = LoadedModels()
    pinned = pinned or {}
    store = Path(store)
    if not store.is_dir():
        loaded.errors["store"] = f"model store {store} does not exist"
        return loaded
    for kind in LOAD_ORDER:
        if not (store / kind).is_dir():
            continue
        try:
            loaded.by_name[kind] = load_model(latest_version(store / kind, pinned.get(kind)), runtime, loaded.by_name)
        except ModelStoreError as exc:
            log.error("%s", exc)
            loaded.errors[kind] = str(exc)
        except Exception as exc:  # a damage no check foresaw: this model is out, the others still serve
            log.exception("cannot load %s", kind)
            loaded.errors[kind] = f"cannot load {kind}: {type(exc).__name__}: {exc}"
    return loaded
