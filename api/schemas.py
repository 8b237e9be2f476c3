"""Request bodies of every route, with their rules, and the prediction routes' responses: the OpenAPI contract."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from api.text_rules import CATEGORY_NAME_PATTERN, PLAYER_NAME_PATTERN, Label, valid_category_name, valid_name
from models.explain import GRID, MAX_STROKES, MAX_VARIANT_POINTS, PAIR_CANDIDATES, PATCH
from models.kinds import KINDS, SEQUENCE
from store.tables import (
    MAX_CATEGORY_NAME_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_ROUNDS,
    MAX_SECONDS_PER_ROUND,
    MIN_SECONDS_PER_ROUND,
    LabelSource,
)

# Input limits: part of the contract (published by GET /limits), checked while the body is parsed,
# so an oversized list is refused before any work is done on it.
MAX_POINTS = 20_000  # points in one drawing (all strokes); the largest official drawings have ~1,200
MAX_TOP_K = 400  # the Probabilities page asks for every class
MAX_BATCH_ITEMS = 64
MAX_BATCH_POINTS = 2 * MAX_POINTS  # all items of a batch together (64 median official drawings: ~15,000)
# Commas and opening brackets a body within the limits may hold: at most 7 per point (a stroke of one
# point with its times, [[x],[y],[t]], and the comma after it), plus slack for a bitmap and the other
# fields. A body with more is refused by a byte count before it is parsed.
VALUES_PER_POINT = 7
MAX_VALUES = VALUES_PER_POINT * MAX_POINTS + 1_024
MAX_BATCH_VALUES = VALUES_PER_POINT * MAX_BATCH_POINTS + MAX_BATCH_ITEMS * 1_024

Axis = Annotated[list[float], Field(max_length=MAX_POINTS)]
Stroke = Annotated[list[Axis], Field(min_length=2, max_length=3)]
ModelName = Literal[tuple(KINDS)]
INPUTS = ("bitmap", "image", "strokes")

_PIXEL = {"type": "number", "minimum": 0, "maximum": 255}
# A drawing has a point: some stroke's x list is not empty (an empty drawing is a 422).
INKED = {"contains": {"type": "array", "prefixItems": [{"minItems": 1}]}}
_INK = {"type": "number", "exclusiveMinimum": 0}


def _whole(value: object) -> object:
    """5.0 is the integer 5 in JSON Schema: taken as such; 5.5 and "5" stay refused (strict)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _state_the_rules(schema: dict) -> None:
    """Rules the validators below enforce with their own messages, stated in the schema as well, so
    a client generated from it sends nothing the API refuses for shape: exactly one input, a bitmap
    of 28x28 or 784 values in 0-255 with some ink, at least one point, strokes for a model that
    reads them."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}, "title": f"{name} input"}
        for name in INPUTS
    ]
    schema["properties"]["bitmap"]["anyOf"] = [
        {"type": "array", "items": {"type": "array", "items": _PIXEL, "minItems": 28, "maxItems": 28},
         "minItems": 28, "maxItems": 28, "contains": {"type": "array", "contains": _INK}},
        {"type": "array", "items": _PIXEL, "minItems": 784, "maxItems": 784, "contains": _INK},
        {"type": "null"},
    ]  # fmt: skip
    stroke_readers = [name for name, kind in KINDS.items() if SEQUENCE in kind.reads]
    schema["if"] = {"required": ["model"], "properties": {"model": {"enum": stroke_readers}}}
    schema["then"] = {"required": ["strokes"], "properties": {"strokes": {"type": "array"}}}


class PredictRequest(BaseModel):
    """Exactly one of ``bitmap``, ``image`` or ``strokes``."""

    # NaN and infinity are refused here: Python's JSON parser would otherwise let them through.
    # Strict: true/false or "1" are not numbers, as the schema says (JSON integers still are floats).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, json_schema_extra=_state_the_rules)

    # Left to right: a body matches at most one of the two shapes, and trying them in order skips the
    # smart union's second pass (a third of a bitmap's validation).
    bitmap: list[list[float]] | list[float] | None = Field(
        None,
        union_mode="left_to_right",
        description="28x28 nested or flat 784 list; ints 0-255 or floats 0-1 (all values <= 1); "
        "white ink on black as in numpy_bitmap",
    )
    image: str | None = Field(
        None, description="base64 PNG or JPEG of a canvas (a data: URL prefix is accepted); any ink colour"
    )
    strokes: list[Stroke] | None = Field(
        None,
        max_length=MAX_POINTS,
        json_schema_extra=INKED,
        description=f"strokes [[x...], [y...]] or [[x...], [y...], [t...]] in any coordinate space; "
        f"at most {MAX_POINTS} points in all",
    )
    top_k: Annotated[int, BeforeValidator(_whole)] = Field(
        5, ge=1, le=MAX_TOP_K, description="how many guesses to return"
    )
    model: ModelName | None = Field(
        None,
        description="which model answers (GET /models lists those loaded); default: the ensemble for strokes "
        "when it is loaded, else the CNN",
    )
    return_bitmap: bool = Field(False, description="include the 28x28 bitmap the CNN saw")
    explain: bool = Field(
        False,
        description="also say why: what the model answers with each stroke left out (strokes), or each "
        f"{PATCH}x{PATCH} patch of the bitmap blanked (bitmap, image); /predict only, not in a batch",
    )

    @model_validator(mode="after")
    def _exactly_one_input(self) -> PredictRequest:
        given = [k for k in ("bitmap", "image", "strokes") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"send exactly one of bitmap, image or strokes (got {found})")
        return self

    @property
    def input_kind(self) -> str:
        return next(k for k in ("bitmap", "image", "strokes") if getattr(self, k) is not None)


class Prediction(BaseModel):
    label: str
    probability: float


class RankedPrediction(Prediction):
    """A guess of /predict, with the kind of class it is."""

    kind: Literal["trained", "prototype", "taught"] = Field(
        "trained",
        description="trained: a class the network was trained on; prototype: answered by similarity to stored "
        "example drawings; taught: a category players taught (POST /categories)",
    )


class ModelRef(BaseModel):
    name: str
    version: str


class ExplainedPart(BaseModel):
    """One stroke or patch of the drawing, and what the model answers without it."""

    index: int = Field(
        ...,
        description="the stroke's position in the drawing (0: the first drawn), or the "
        f"patch's: row x {GRID} + column of the {GRID}x{GRID} grid over the 28x28 bitmap",
    )
    drop: float = Field(..., description="how much the top guess's probability falls without it (negative: it rises)")
    label_without: str | None = Field(..., description="the top guess without it; null when nothing is left")


class Counterfactual(BaseModel):
    remove: list[int] = Field(..., description="the strokes (or patches) to leave out, by index")
    label: str = Field(..., description="what /predict answers for the drawing without them")


class Explanation(BaseModel):
    """Why the model made its top guess. For strokes, each variant is the drawing as if those strokes
    had never been drawn (normalised again), so it is exactly what /predict answers for it."""

    label: str = Field(..., description="the top guess explained")
    probability: float
    strokes: list[ExplainedPart] | None = Field(
        None,
        description=f"strokes input: the explained strokes in drawing order; at most {MAX_STROKES}, and no "
        f"more than keep the variants within {MAX_VARIANT_POINTS:,} points in all (the longest pen paths when "
        "there are more)",
    )
    strokes_total: int | None = Field(None, description="strokes input: how many strokes the drawing has")
    patches: list[ExplainedPart] | None = Field(
        None,
        description=f"bitmap or image input: all {GRID * GRID} patches of {PATCH}x{PATCH} pixels, row by "
        "row; a patch without ink has drop 0",
    )
    counterfactual: Counterfactual | None = Field(
        ...,
        description="the fewest strokes (one, else two) or the one patch whose removal changes the top "
        f"guess, the one that lowers it most; pairs are tried among the {PAIR_CANDIDATES} strokes that matter "
        "most (fewer past the points limit above). null: no such removal",
    )


class PredictResponse(BaseModel):
    predictions: list[RankedPrediction]
    model: ModelRef
    timings_ms: dict[str, float] = Field(
        ...,
        description="milliseconds spent on 'preprocess' and 'inference'; with explain, the inference includes the "
        "explanation: making the drawing's variants and the model calls (the answer is computed alongside them, "
        "and for strokes the drawing is drawn with its variants)",
    )
    bitmap: list[list[int]] | None = None
    explanation: Explanation | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[PredictRequest] = Field(
        ...,
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description=f"at most {MAX_BATCH_POINTS} stroke points in all the items together; explain is for /predict only",
        json_schema_extra={
            "items": {
                "allOf": [
                    {"$ref": "#/components/schemas/PredictRequest"},
                    {"properties": {"explain": {"const": False}}},
                ]
            }
        },
    )


class BatchResponse(BaseModel):
    results: list[PredictResponse]


# ---- Submissions, scores and taught categories

# The same bound as the largest image /predict accepts (MAX_IMAGE_PIXELS is 4096x4096).
MAX_CANVAS_SIDE = 4096
MAX_PREDICTIONS = 50
MIN_DRAWINGS, MAX_DRAWINGS = 3, 50


class Canvas(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(..., ge=1, le=MAX_CANVAS_SIDE, description="canvas width in pixels")
    height: int = Field(..., ge=1, le=MAX_CANVAS_SIDE, description="canvas height in pixels")


class SubmittedPrediction(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    label: Label
    probability: float = Field(..., ge=0.0, le=1.0)


class SubmissionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    label: Label = Field(
        ...,
        description=(
            f"what the drawing shows (1-{MAX_LABEL_LENGTH} characters; "
            "no control, line-break or text-direction characters)"
        ),
    )
    label_source: LabelSource = Field(
        "player",
        description="who gave the label: 'player' (typed or chose it), 'prompt' (the game's prompt, not "
        "confirmed) or 'confirmed' (the player confirmed the prompt). Only 'player' and 'confirmed' "
        "drawings are exported for training.",
    )
    strokes: list[Stroke] = Field(
        ...,
        max_length=MAX_POINTS,
        json_schema_extra=INKED,
        description=f"strokes [[x...], [y...]] (or with [t...]) in canvas pixels; at most {MAX_POINTS} points in all",
    )
    canvas: Canvas
    predictions: list[SubmittedPrediction] | None = Field(
        None, max_length=MAX_PREDICTIONS, description="what the model guessed, kept for later analysis"
    )


class ScoreRequest(BaseModel):
    # Strict: true or "3" is not a number of rounds (5.0 is 5, as JSON Schema says).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    name: Annotated[str, AfterValidator(valid_name)] = Field(
        ...,
        description=f"1-{MAX_NAME_LENGTH} letters, digits, spaces, '_', '-', '.' and apostrophes",
        json_schema_extra={"pattern": PLAYER_NAME_PATTERN},
    )
    rounds_won: Annotated[int, BeforeValidator(_whole)] = Field(..., ge=0, le=MAX_ROUNDS)
    rounds_played: Annotated[int, BeforeValidator(_whole)] = Field(..., ge=1, le=MAX_ROUNDS)
    total_seconds: float = Field(
        ...,
        ge=MIN_SECONDS_PER_ROUND,
        description=f"at least {MIN_SECONDS_PER_ROUND} s and at most {MAX_SECONDS_PER_ROUND} s per round played",
    )

    @model_validator(mode="after")
    def _possible(self) -> ScoreRequest:
        if self.rounds_won > self.rounds_played:
            raise ValueError(f"rounds_won ({self.rounds_won}) > rounds_played ({self.rounds_played})")
        if self.total_seconds < MIN_SECONDS_PER_ROUND * self.rounds_played:
            raise ValueError(
                f"total_seconds ({self.total_seconds:g}) < {MIN_SECONDS_PER_ROUND} s x {self.rounds_played} rounds: "
                "no round ends that soon"
            )
        if self.total_seconds > MAX_SECONDS_PER_ROUND * self.rounds_played:
            raise ValueError(
                f"total_seconds ({self.total_seconds:g}) > {MAX_SECONDS_PER_ROUND} s x {self.rounds_played} rounds"
            )
        return self


class CategoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Annotated[str, AfterValidator(valid_category_name)] = Field(
        ...,
        description=f"the new category's name (1-{MAX_CATEGORY_NAME_LENGTH} characters, spaces collapsed)",
        json_schema_extra={"pattern": CATEGORY_NAME_PATTERN},
    )
    drawings: list[Annotated[list[Stroke], Field(max_length=MAX_POINTS, json_schema_extra=INKED)]] = Field(
        ...,
        min_length=MIN_DRAWINGS,
        max_length=MAX_DRAWINGS,
        description=f"{MIN_DRAWINGS} to {MAX_DRAWINGS} drawings, each a list of strokes [[x...], [y...]]",
    )
