"""Request and response bodies of the prediction routes (they are the OpenAPI contract)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

Stroke = list[list[float]]


class PredictRequest(BaseModel):
    """Exactly one of ``bitmap``, ``image`` or ``strokes``."""

    # NaN and infinity are refused here: Python's JSON parser would otherwise let them through.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    bitmap: list[list[float]] | list[float] | None = Field(
        None,
        description="28x28 nested or flat 784 list; ints 0-255 or floats 0-1 (all values <= 1); "
        "white ink on black as in numpy_bitmap",
    )
    image: str | None = Field(
        None, description="base64 PNG or JPEG of a canvas (a data: URL prefix is accepted); any ink colour"
    )
    strokes: list[Stroke] | None = Field(
        None, description="strokes [[x...], [y...]] or [[x...], [y...], [t...]] in any coordinate space"
    )
    top_k: int = Field(5, ge=1, description="how many guesses to return (at most MAX_TOP_K)")
    model: str = Field("cnn", description="cnn, rnn or ensemble (see GET /models)")
    return_bitmap: bool = Field(False, description="include the 28x28 bitmap the CNN saw")

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


class ModelRef(BaseModel):
    name: str
    version: str


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model: ModelRef
    timings_ms: dict[str, float]
    bitmap: list[list[int]] | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[PredictRequest] = Field(..., min_length=1, description="at most MAX_BATCH_ITEMS items")


class BatchResponse(BaseModel):
    results: list[PredictResponse]
