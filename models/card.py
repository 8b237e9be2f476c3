"""The model card: everything known about one exported model, in one typed definition.

``training.export`` writes it once, complete, as ``card.json`` next to the model files; nothing
patches it afterwards (a comparison that chooses an ensemble weight writes an ensemble card of its
own). Loading validates it against the running code (``check_compatible``): a card whose
preprocessing version or input spec this code cannot honour is refused with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import sketch
from models.kinds import BITMAP, SEQUENCE, get_kind

CARD_FILE = "card.json"
BITMAP_SHAPE = [None, 28, 28, 1]
SEQUENCE_SHAPE = [None, None, 3]


class CardError(ValueError):
    """A card that is missing, unreadable or does not match the running code; the message says why."""


class ModelStoreError(RuntimeError):
    """A store or a model in it cannot be served; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    name: Literal["bitmap", "sequence"]
    shape: list[int | None]
    dtype: Literal["float32"] = "float32"
    description: str
    max_len: int | None = Field(None, ge=2, description="sequence inputs: longer drawings are simplified to fit")


class Metrics(_Strict):
    split: str
    n: int = Field(..., ge=0)
    top1: float
    top3: float | None = None
    top5: float
    macro_f1: float | None = None
    worst5_f1: list[dict[str, Any]] = []


class PriorCorrection(_Strict):
    """Post-hoc logit adjustment folded into the softmax bias (``training.prior``)."""

    tau: float = Field(..., ge=0.0)
    log_prior: list[float] = Field(..., description="log of each class's share of the training drawings")
    chosen_on: str
    val_balanced_top1: dict[str, float] = Field(..., description="tau -> class-balanced val top-1")


class Training(_Strict):
    params: dict[str, Any]
    epochs_run: int
    minutes: float
    parameters_count: int
    history: dict[str, list[float]]
    prior_correction: PriorCorrection | None = None


class ExtraData(_Strict):
    """Drawings added with ``--extra-data`` (players' kept drawings, from ``training.export_submissions``).

    Their train and val drawings are trained and validated on; their test drawings are held out,
    so the card's test figures are on the main data's test split alone."""

    sources: list[str]
    manifest_hash: str
    counts: dict[str, dict[str, int]] = Field(..., description="per class: drawings per split (test: held out)")
    ignored: dict[str, int] = Field(default_factory=dict, description="categories the model lacks: drawings unused")


class DataInfo(_Strict):
    format: str
    manifest_hash: str
    split: str
    counts: dict[str, dict[str, int]] = Field(..., description="per class: drawings per split")
    sources_per_class: dict[str, dict[str, int]] | None = None
    source_files: dict[str, list[str]] | None = Field(
        None, description="per class: the official files its drawings came from (folder/file)"
    )
    duplicates_dropped: dict[str, int] | None = None
    extra: ExtraData | None = None


class OnnxCheck(_Strict):
    """The ONNX copy against the SavedModel on real inputs, at export."""

    split: str
    n: int
    max_abs_diff: float
    tolerance: float


class Quantization(_Strict):
    """``files.onnx_probabilities`` holds the network with int8 weights and activations (averaged with
    the mirrored drawing when ``mirrored``): every probability the model answers comes from it. The
    embedding comes from ``files.onnx_embedding`` when there is one (the same int8 network, the same
    probabilities to the bit, and the embedding), else from ``model.onnx`` (float)."""

    method: str
    calibration: str = Field(..., description="the drawings the activation ranges were measured on")
    sha256: str = Field(..., description="of the int8 file: the loader refuses any other file")
    split: str
    n: int
    top1_agreement: float = Field(..., description="share of the split whose top guess is the float graph's")
    top1_float: float
    top1_int8: float
    mirrored: bool = Field(False, description="the file averages each drawing's probabilities with its mirror image's")
    top1_served: float | None = Field(None, description="top-1 of the file as served (int8, mirrored if so)")
    embedding_sha256: str | None = Field(None, description="of files.onnx_embedding, when there is one")
    embedding_cosine_median: float | None = Field(None, description="int8 against float embedding, on the split")
    embedding_cosine_min: float | None = None


class Files(_Strict):
    saved_model: str | None = "saved_model"
    onnx: str | None = "model.onnx"
    # The network without its embedding branch (a CNN with an embedding only): what every
    # probabilities call runs, since onnxruntime computes every node whatever outputs are asked.
    # The same float graph, or its int8 copy when the card has a ``quantization``.
    onnx_probabilities: str | None = None
    # The int8 network with the embedding as a second output (a CNN with an embedding and a
    # ``quantization`` only): what runs when both are needed, in one call.
    onnx_embedding: str | None = None
    keras: str | None = "model.keras"
    report: str | None = "report"


class EnsembleSpec(_Strict):
    members: dict[str, str] = Field(..., description="kind -> the exact version combined")
    rnn_weight: float = Field(..., ge=0.0, le=1.0)
    unknown_scale: float = Field(1.0, gt=0.0, description="for classes the RNN does not know (models.ensemble)")
    rule: str = Field(..., description="how the two opinions combine, including classes one model does not know")
    chosen_on: str


class EmbeddingSpec(_Strict):
    """A second output of the network: a fixed-length vector per drawing, for similarity."""

    output: str = Field(..., description="name of the output (ONNX and SavedModel) that holds it")
    dim: int = Field(..., ge=2)
    source: str = Field(..., description="the layer it is taken from")
    normalisation: str = Field(..., description="how it is normalised (unit L2 norm: dot product = cosine)")


class PrototypeSpec(_Strict):
    """How a prototype model ranks the CNN's classes and its prototype classes together."""

    members: dict[str, str] = Field(..., description="kind -> the exact version whose embedding made the bank")
    trained_classes: int = Field(..., ge=1, description="the first classes are the CNN's, in its order")
    method: Literal["mean", "knn"] = Field(..., description="similarity to the class mean, or mean of the k nearest")
    knn_k: int | None = Field(None, ge=1)
    temperature: float = Field(..., gt=0.0)
    offset: float
    file: str = "prototypes.npz"
    rule: str
    chosen_on: str


class ChallengeSpec(_Strict):
    """The Challenge game's settings for this model, chosen on validation drawings (``training.threshold``)."""

    threshold: float = Field(..., gt=0.0, le=1.0, description="the prompt's probability at which it says 'I know'")
    false_i_know_rate: float = Field(..., description="validation drawings whose hardest wrong prompt reaches it")
    false_i_know_rate_random_prompt: float
    recognised_rate: float = Field(..., description="validation drawings whose own prompt reaches it")
    prompts: list[str] = Field(..., description="every category, the most recognisable first")
    recall: list[float] = Field(..., description="each prompt's validation top-1 recall, in the order of prompts")
    chosen_on: str


class MlflowRun(_Strict):
    run_id: str
    experiment: str
    tracking_uri: str | None = None
    registered_model: str | None = None
    registered_version: str | None = None


class ModelCard(_Strict):
    kind: str
    version: str
    created: str
    architecture: str
    classes: list[str] = Field(..., min_length=2, description="output order")
    input: InputSpec | None = Field(None, description="networks only; a composite model reads its members' inputs")
    preprocessing_version: str
    framework_versions: dict[str, str] = {}
    metrics: Metrics | None = None
    training: Training | None = None
    data: DataInfo | None = None
    files: Files = Files()
    onnx_check: OnnxCheck | None = None
    quantization: Quantization | None = None
    embedding: EmbeddingSpec | None = None
    ensemble: EnsembleSpec | None = None
    prototypes: PrototypeSpec | None = None
    challenge: ChallengeSpec | None = None
    mlflow_run: MlflowRun | None = None
    notes: list[str] = []

    @field_validator("classes")
    @classmethod
    def _unique(cls, classes: list[str]) -> list[str]:
        if len(set(classes)) != len(classes):
            raise ValueError("classes must be unique")
        return classes

    def check_compatible(self) -> None:
        """Raise ``CardError`` when this code cannot serve the model as it was trained."""
        kind = get_kind(self.kind)
        if self.preprocessing_version not in sketch.COMPATIBLE_PREPROCESSING_VERSIONS:
            raise CardError(
                f"{self.kind} {self.version} was made with preprocessing version {self.preprocessing_version}, "
                f"this code runs {sketch.PREPROCESSING_VERSION} "
                f"(compatible: {', '.join(sorted(sketch.COMPATIBLE_PREPROCESSING_VERSIONS))})"
            )
        if kind.composite:
            spec = self.ensemble or self.prototypes
            if spec is None or set(spec.members) != set(kind.members):
                raise CardError(f"{self.kind} {self.version}: the card must name its members {', '.join(kind.members)}")
            return
        if self.input is None:
            raise CardError(f"{self.kind} {self.version}: the card has no input spec")
        (reads,) = kind.reads
        expected = {BITMAP: BITMAP_SHAPE, SEQUENCE: SEQUENCE_SHAPE}[reads]
        if self.input.name != reads or self.input.shape != expected:
            raise CardError(
                f"{self.kind} {self.version}: input {self.input.name} {self.input.shape} does not match "
                f"what kind {self.kind} reads ({reads} {expected})"
            )
        if reads == SEQUENCE and self.input.max_len is None:
            raise CardError(f"{self.kind} {self.version}: a sequence input needs max_len")

    def write(self, folder: Path) -> Path:
        """Write ``card.json`` once; an existing card is never overwritten."""
        path = Path(folder) / CARD_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2, exclude_none=True) + "\n")
        try:
            os.link(tmp, path)  # fails if a card is already there: cards are written once
        except FileExistsError:
            raise CardError(f"{path} exists: a card is written once, export a new version instead") from None
        finally:
            tmp.unlink()
        return path


def read_card(folder: Path) -> ModelCard:
    path = Path(folder) / CARD_FILE
    try:
        return ModelCard.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise CardError(f"{path} not found") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CardError(f"{path} is not a valid model card: {where}: {first['msg']}") from None
        raise CardError(f"{path} is unreadable: {exc}") from None


class FromCard:
    """What every loaded model reads off its card: its name (the kind), version and classes."""

    card: ModelCard

    @property
    def name(self) -> str:
        return self.card.kind

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def classes(self) -> list[str]:
        return self.card.classes
