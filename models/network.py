"""One exported network (cnn, rnn...): its card, its runner, and the checks made when it is loaded.

Loading never lets a broken file reach a request: the card is validated against the running code,
and one call on a blank input must give the card's shape, or ``ModelStoreError`` says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.answer import TRAINED, Answer
from models.card import CardError, FromCard, ModelCard, ModelStoreError, read_card
from models.inputs import Inputs
from models.kinds import BITMAP, SEQUENCE
from models.runtime import (
    RUNTIMES,
    Runner,
    onnx_runner,
    onnxruntime_installed,
    probabilities_output,
    tensorflow_runner,
)
from sketch.sequence import pad_batch


@dataclass
class Network(FromCard):
    """One exported network (cnn, rnn...), called through its runner."""

    card: ModelCard
    runtime: str
    run: Runner = field(repr=False)
    notes: list[str] = field(default_factory=list)  # what an operator should know (e.g. a missing ONNX copy)
    run_probabilities: Runner | None = field(default=None, repr=False)  # files.onnx_probabilities, when any
    run_embedding: Runner | None = field(default=None, repr=False)  # files.onnx_embedding, when any

    @property
    def max_len(self) -> int | None:
        """Rows per stroke sequence the network was trained with (sequence readers only)."""
        return self.card.input.max_len if self.card.input else None

    @property
    def origins(self) -> list[str]:
        return [TRAINED] * len(self.card.classes)

    @property
    def uses(self) -> frozenset[str]:
        return frozenset({self.card.input.name})

    def probabilities(self, inputs: Inputs) -> np.ndarray:
        """Class probabilities, float32 (n, len(classes)): the cheapest graph that gives them."""
        out = (self.run_probabilities or self.run)(self._input(inputs))
        return out[probabilities_output(list(out))]

    def predict(self, inputs: Inputs) -> Answer:
        return Answer(self.probabilities(inputs), self.classes, self.origins)

    def embed(self, inputs: Inputs) -> np.ndarray:
        """The L2-normalised embedding the card describes, float32 (n, dim): from the int8 file that
        gives it when there is one, else from the float graph."""
        if self.card.embedding is None:
            raise ValueError(f"{self.name} {self.version} exports no embedding")
        out = (self.run_embedding or self.run)(self._input(inputs))
        return out[self.card.embedding.output]

    def probabilities_and_embedding(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """Both at once: ``probabilities`` exactly as ``probabilities()`` gives them, and the embedding."""
        if self.card.embedding is None:
            raise ValueError(f"{self.name} {self.version} exports no embedding")
        if self.run_embedding is not None:  # the int8 network with both outputs: one call
            out = self.run_embedding(self._input(inputs))
        elif self.card.quantization is not None:  # the int8 graph answers every probability
            return self.probabilities(inputs), self.outputs(inputs)[self.card.embedding.output]
        else:
            out = self.outputs(inputs)
        return out[probabilities_output(list(out))], out[self.card.embedding.output]

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
            # Zero padding is exact for the RNN (see training.rnn): mixed lengths share one call.
            x = pad_batch(inputs.sequences)
        return x


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
    probs = model.probabilities(inputs)
    if probs.shape != (1, len(model.classes)):
        raise ValueError(f"gives shape {list(probs.shape)}, expected [1, {len(model.classes)}]")
    if model.run_probabilities is not None and model.card.quantization is None:
        full = model.outputs(inputs)
        if not np.allclose(full[probabilities_output(list(full))], probs, atol=1e-5):
            raise ValueError(f"{model.card.files.onnx_probabilities} does not give the full graph's probabilities")
    if model.card.embedding is not None:
        both, emb = model.probabilities_and_embedding(inputs)
        if emb.shape != (1, model.card.embedding.dim):
            raise ValueError(f"embedding has shape {list(emb.shape)}, the card says [1, {model.card.embedding.dim}]")
        if model.run_embedding is not None and not np.array_equal(both, probs):
            raise ValueError(f"{model.card.files.onnx_embedding} does not give the probabilities of the served file")


def _check_quantized(folder: Path, card: ModelCard) -> None:
    """An int8 file cannot be compared with the float graph at load (they differ a little by
    design): it must be the very file the card was exported and checked with."""
    if card.quantization is None:
        return
    files = {card.files.onnx_probabilities: card.quantization.sha256}
    if card.files.onnx_embedding:
        files[card.files.onnx_embedding] = card.quantization.embedding_sha256
    for name, sha256 in files.items():
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != sha256:
            raise ModelStoreError(f"{folder / name}: not the int8 file the card was exported with (its sha256 differs)")


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
    fast = with_embedding = None
    try:
        if runtime == "onnx":
            if onnx_path is None or not onnx_path.is_file():
                raise ModelStoreError(f"{folder}: no ONNX copy ({card.files.onnx or 'none in the card'})")
            if card.onnx_check is None:
                raise ModelStoreError(f"{folder}: the ONNX copy was never checked against the SavedModel")
            rank, n_classes = len(card.input.shape), len(card.classes)
            run = onnx_runner(onnx_path, rank, n_classes)
            if card.files.onnx_probabilities:
                _check_quantized(folder, card)
                fast = onnx_runner(folder / card.files.onnx_probabilities, rank, n_classes)
            if card.files.onnx_embedding:
                with_embedding = onnx_runner(folder / card.files.onnx_embedding, rank, n_classes)
        else:
            run = tensorflow_runner(folder / (card.files.saved_model or "saved_model"))
        network = Network(card, runtime, run, notes, fast, with_embedding)
        _warm_up(network)
    except ModelStoreError:
        raise
    except ImportError as exc:
        raise ModelStoreError(f"runtime {runtime} is not installed: {exc}") from None
    except Exception as exc:  # a corrupt or mismatched model file: report it, keep the service up
        raise ModelStoreError(f"cannot load {folder} with {runtime}: {exc}") from None
    return network
