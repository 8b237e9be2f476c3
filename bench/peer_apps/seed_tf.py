"""The seed's way: FastAPI + TensorFlow, the Keras model loaded once, ``model.predict`` per request.

uvicorn seed_tf:app
"""

from __future__ import annotations

import keras
from common import MODEL_DIR, as_batch, top5
from fastapi import FastAPI
from pydantic import BaseModel

model = keras.saving.load_model(MODEL_DIR / "model.keras")
app = FastAPI()


class Drawing(BaseModel):
    bitmap: list[list[int]]


@app.post("/predict")
def predict(drawing: Drawing) -> dict:
    return top5(model.predict(as_batch(drawing.bitmap), verbose=0)[0])
