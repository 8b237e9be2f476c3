"""The 30-line endpoint: FastAPI, a sync route, a pydantic body, one onnxruntime session.

uvicorn plain_onnx:app [--workers 2]
"""

from __future__ import annotations

import onnxruntime as ort
from common import ONNX_FILE, as_batch, probabilities_output, top5
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(str(ONNX_FILE), providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output = probabilities_output(session)
app = FastAPI()


class Drawing(BaseModel):
    bitmap: list[list[int]]


@app.post("/predict")
def predict(drawing: Drawing) -> dict:
    return top5(session.run([output], {input_name: as_batch(drawing.bitmap)})[0][0])
