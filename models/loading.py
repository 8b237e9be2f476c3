"""A model folder or a whole store -> models that predict class probabilities on prepared inputs.

A store holds ``<store>/<kind>/<version>/card.json`` (and the model files the card names); the
newest version of each kind is served unless one is pinned. Loading never raises for one broken
model: the store records why it could not be loaded, and the others still serve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from models.card import CARD_FILE, CardError, FromCard, ModelCard, read_card
from models.kinds import BITMAP, KINDS, LOAD_ORDER, SEQUENCE
from models.runtime import (
    RUNTIMES,
    Runner,
    onnx_runner,
    onnxruntime_installed,
    probabilities_output,
    tensorflow_runner,
)
from sketch.sequence import pad_batch

log = logging.getLogger(__name__)


class ModelStoreError(RuntimeError):
    """A store or a model in it cannot be served; the message says why."""


@dataclass
class Inputs:
    """A batch of prepared drawings: what each kind reads (``models.kinds``)."""

    bitmaps: np.ndarray | None = None  # float32 (n, 28, 28), 0-255, white ink on black
    sequences: list[np.ndarray] | None = None  # float32 (len_i, 3) rows from sketch.sequence


class Model(Protocol):
    card: ModelCard
    runtime: str

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def classes(self) -> list[str]: ...

    def predict(self, inputs: Inputs) -> np.ndarray:
        """Class probabilities, float32 (n, len(classes))."""
        ...


@dataclass
class Network(FromCard):
    """One exported network (cnn, rnn...), called through its runner."""

    card: ModelCard
    runtime: str
    run: Runner = field(repr=False)
    notes: list[str] = field(default_factory=list)  # what an operator should know (e.g. a missing ONNX copy)
    run_probabilities: Runner | None = field(default=None, repr=False)  # files.onnx_probabilities, when any

    @property
    def max_len(self) -> int | None:
        """Rows per stroke sequence the network was trained with (sequence readers only)."""
        return self.card.input.max_len if self.card.input else None

    def predict(self, inputs: Inputs) -> np.ndarray:
        """Class probabilities, float32 (n, len(classes))."""
        out = (self.run_probabilities or self.run)(self._input(inputs))
        return out[probabilities_output(list(out))]

    def embed(self, inputs: Inputs) -> np.ndarray:
        """The L2-normalised embedding the card describes, float32 (n, dim)."""
        if self.card.embedding is None:
            raise ValueError(f"{self.name} {self.version} exports no embedding")
        return self.outputs(inputs)[self.card.embedding.output]

    def outputs(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Every output of one network call by name (probabilities and, if exported, the embedding)."""
        return self.run(self._input(inputs))

    def _input(self, inputs: Inputs) -> np.ndarray:
        reads = self.card.input.name
        if reads == BITMAP:
            if inputs.bitmaps is None:
                raise ValueError(f"{self.name} reads bitmaps")
            x = np.asarray(inputs.bitmaps, dtype=np.float32)[..., None]
        elif reads == SEQUENCE:
            if inputs.sequences is None:
                raise ValueError(f"{self.name} reads stroke sequences")
            # Zero padding is exact for the RNN (see training.rnn_model): mixed lengths share one call.
            x = pad_batch(inputs.sequences)
        return x


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


def load_card(folder: Path) -> ModelCard:
    """Read and validate a card against the running code; ``ModelStoreError`` says why not."""
    try:
        card = read_card(folder)
        card.check_compatible()
    except (CardError, ValueError) as exc:
        raise ModelStoreError(str(exc)) from None
    if card.version != Path(folder).name:
        raise ModelStoreError(f"{folder}: the card says version {card.version}, the folder is {Path(folder).name}")
    return card


def _warm_up(model: Network) -> None:
    """One call on a blank input, so a file that loads but cannot run fails here, not on a request."""
    inputs = Inputs(bitmaps=np.zeros((1, 28, 28), np.float32), sequences=[np.array([[0.1, 0.1, 1.0]], np.float32)])
    probs = model.predict(inputs)
    if probs.shape != (1, len(model.classes)):
        raise ValueError(f"gives shape {list(probs.shape)}, expected [1, {len(model.classes)}]")
    if model.run_probabilities is not None:
        full = model.outputs(inputs)
        if not np.allclose(full[probabilities_output(list(full))], probs, atol=1e-5):
            raise ValueError(f"{model.card.files.onnx_probabilities} does not give the full graph's probabilities")
    if model.card.embedding is not None:
        emb = model.embed(inputs)
        if emb.shape != (1, model.card.embedding.dim):
            raise ValueError(f"embedding has shape {list(emb.shape)}, the card says [1, {model.card.embedding.dim}]")


def load_network(folder: Path, runtime: str = "auto") -> Network:
    """Load one exported network: the ONNX copy by default, the SavedModel when asked or when there is no copy."""
    folder = Path(folder)
    card = load_card(folder)
    if runtime not in ("auto", *RUNTIMES):
        raise ModelStoreError(f"unknown runtime {runtime!r}; use auto, {' or '.join(RUNTIMES)}")
    notes = []
    onnx_path = folder / card.files.onnx if card.files.onnx else None
    if runtime == "auto":
        if onnx_path is not None and onnx_path.is_file() and onnxruntime_installed():
            runtime = "onnx"
        else:
            runtime = "tensorflow"
            why = "onnxruntime is not installed" if onnx_path and onnx_path.is_file() else "there is no ONNX copy"
            notes.append(f"serving the SavedModel through TensorFlow: {why}")
    fast = None
    try:
        if runtime == "onnx":
            if onnx_path is None or not onnx_path.is_file():
                raise ModelStoreError(f"{folder}: no ONNX copy ({card.files.onnx or 'none in the card'})")
            if card.onnx_check is None:
                raise ModelStoreError(f"{folder}: the ONNX copy was never checked against the SavedModel")
            run = onnx_runner(onnx_path, len(card.input.shape), len(card.classes))
            if card.files.onnx_probabilities:
                fast = onnx_runner(folder / card.files.onnx_probabilities, len(card.input.shape), len(card.classes))
        else:
            run = tensorflow_runner(folder / (card.files.saved_model or "saved_model"))
        network = Network(card, runtime, run, notes, fast)
        _warm_up(network)
    except ModelStoreError:
        raise
    except ImportError as exc:
        raise ModelStoreError(f"runtime {runtime} is not installed: {exc}") from None
    except Exception as exc:  # a corrupt or mismatched model file: report it, keep the service up
        raise ModelStoreError(f"cannot load {folder} with {runtime}: {exc}") from None
    return network


@dataclass
class Store:
    """The loaded models by name, and why the others could not be loaded."""

    models: dict[str, Model] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def notes(self) -> dict[str, list[str]]:
        return {n: m.notes for n, m in self.models.items() if getattr(m, "notes", None)}


def load_model(folder: Path, runtime: str = "auto", members: dict[str, Model] | None = None) -> Model:
    """Any kind's folder: a network, or a composite model over already loaded ``members``."""
    card = load_card(folder)
    if card.prototypes is not None:
        from models.prototypes import PrototypeModel

        return PrototypeModel.from_card(card, folder, members or {})
    if KINDS[card.kind].composite:
        from models.ensemble import Ensemble

        return Ensemble.from_card(card, members or {})
    return load_network(folder, runtime)


def load_store(store: Path, runtime: str = "auto", pinned: dict[str, str | None] | None = None) -> Store:
    """Load the newest (or pinned) version of every kind present in the store."""
    loaded = Store()
    pinned = pinned or {}
    store = Path(store)
    if not store.is_dir():
        loaded.errors["store"] = f"model store {store} does not exist"
        return loaded
    for kind in LOAD_ORDER:
        if not (store / kind).is_dir():
            continue
        try:
            loaded.models[kind] = load_model(latest_version(store / kind, pinned.get(kind)), runtime, loaded.models)
        except ModelStoreError as exc:
            log.error("%s", exc)
            loaded.errors[kind] = str(exc)
    return loaded
