"""BentoML serving the shipped ONNX model, as its docs show for a custom runtime.

bentoml serve bento_service:Classifier --host 127.0.0.1 --port P
"""

from __future__ import annotations

import os

import bentoml
import onnxruntime as ort
from common import ONNX_FILE, as_batch, probabilities_output, top5


# Access logs off, as for every server in the bench.
@bentoml.service(workers=int(os.environ.get("PEER_WORKERS", "1")), logging={"access": {"enabled": False}})
class Classifier:
    def __init__(self) -> None:
        self.session = ort.InferenceSession(str(ONNX_FILE), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output = probabilities_output(self.session)

    @bentoml.api
    def predict(self, bitmap: list[list[int]]) -> dict:
        return top5(self.session.run([self.output], {self.input_name: as_batch(bitmap)})[0][0])
