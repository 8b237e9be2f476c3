"""The 30-line endpoint: FastAPI, a sync route, a pydantic body, one onnxruntime session.

uvicorn plain_onnx:app [--workers 2]      (or granian --interface asgi plain_onnx:app --workers 2)

``PEER_ORT_THREADS=1`` gives the session one intra-op thread, as a user who read onnxruntime's
tuning notes does for a tiny model with a process per core (unset: onnxruntime's default pool).
"""

from __future__ import annotations

import os

import onnxruntime as ort
from common import ONNX_FILE, as_batch, probabilities_output, top5
from fastapi import FastAPI
from pydantic import BaseModel

options = ort.SessionOptions()
if os.environ.get("PEER_ORT_THREADS"):
    options.intra_op_num_threads = int(os.environ["PEER_ORT_THREADS"])
session = ort.InferenceSession(str(ONNX_FILE), options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output = probabilities_output(session)
app = FastAPI()


class Drawing(BaseModel):
    bitmap: list[list[int]]


@app.post("/predict")
def predict(drawing: Drawing) -> dict:
    return top5(session.run([output], {input_name: as_batch(drawing.bitmap)})[0][0])
