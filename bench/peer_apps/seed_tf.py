"""The seed's way: FastAPI + TensorFlow, the Keras model loaded once, ``model.predict`` per request.

uvicorn seed_tf:app
"""

from __future__ import annotations

import keras
from common import MODEL_DIR, as_batch, top5
from fastapi import FastAPI
from pydantic import BaseModel

import training.embedding  # noqa: F401  registers the CNN's custom layers (FlipHorizontal) for loading

model = keras.saving.load_model(MODEL_DIR / "model.keras")
app = FastAPI()


class Drawing(BaseModel):
    bitmap: list[list[int]]


@app.post("/predict")
def predict(drawing: Drawing) -> dict:
    outputs = model.predict(as_batch(drawing.bitmap), verbose=0)
    # The shipped CNN also outputs an embedding; the answer is its "probabilities" output.
    probabilities = outputs["probabilities"] if isinstance(outputs, dict) else outputs
    return top5(probabilities[0])
