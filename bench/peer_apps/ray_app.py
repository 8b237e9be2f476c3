"""Ray Serve serving the shipped ONNX model: a local Ray on loopback, N replicas behind Serve's proxy.

python ray_app.py PORT
"""

from __future__ import annotations

import os
import sys
import time

import onnxruntime as ort
import ray
from common import ONNX_FILE, as_batch, probabilities_output, top5
from ray import serve
from starlette.requests import Request

REPLICAS = int(os.environ.get("PEER_WORKERS", "1"))


# Access logs off, as for every server in the bench.
@serve.deployment(num_replicas=REPLICAS, logging_config={"enable_access_log": False})
class Classifier:
    def __init__(self) -> None:
        self.session = ort.InferenceSession(str(ONNX_FILE), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output = probabilities_output(self.session)

    async def __call__(self, request: Request) -> dict:
        bitmap = (await request.json())["bitmap"]
        return top5(self.session.run([self.output], {self.input_name: as_batch(bitmap)})[0][0])


if __name__ == "__main__":
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=os.environ.get("PEER_RAY_TMP"),
    )
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    serve.run(Classifier.bind(), route_prefix="/predict")
    while True:
        time.sleep(3600)
