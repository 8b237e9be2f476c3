"""The ceiling, not a peer: the least a Python server can do per bitmap with this network.

uvicorn ceiling_asgi:app [--workers 2]

A bare ASGI callable: read the body, ``json.loads``, the onnxruntime call (one intra-op thread), the
top 5, ``json.dumps``. No framework, no validation, no error answers, no limits, metrics or logs: no
server that keeps an API's contract can do less, so its req/s bounds what any of them can reach
against the peers on the same network.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
from common import ONNX_FILE, probabilities_output, top5

options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(str(ONNX_FILE), options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output = probabilities_output(session)


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    x = np.asarray(json.loads(body)["bitmap"], dtype=np.float32).reshape(1, 28, 28, 1)
    answer = json.dumps(top5(session.run([output], {input_name: x})[0][0])).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
