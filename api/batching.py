"""One inference thread per worker; requests that arrive while it is busy share its next call.

Handing every request to the generic thread pool costs more CPU here than the model itself
(thread wake-ups and GIL hand-offs on 2 cores). One dedicated thread that drains a queue pays
that price once per batch instead, keeps the event loop free (onnxruntime releases the GIL), and
turns concurrent requests into one batched model call per model.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from api.inference import Prepared, predict
from api.schemas import PredictResponse

MAX_BATCH = 64


class InferenceQueue:
    def __init__(self, max_batch: int = MAX_BATCH):
        self._max_batch = max_batch
        self._pending: deque[tuple[Prepared, asyncio.Future]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    async def predict(self, item: Prepared) -> PredictResponse:
        future = asyncio.get_running_loop().create_future()
        with self._cond:
            self._pending.append((item, future))
            self._cond.notify()
        return await future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))]
            try:
                outcome: list[PredictResponse] | BaseException = predict([item for item, _ in batch])
            except Exception as exc:  # reaches each waiting request as its own exception
                outcome = exc
            # All futures of a worker belong to its one event loop.
            batch[0][1].get_loop().call_soon_threadsafe(_resolve, batch, outcome)


def _resolve(batch: list[tuple[Prepared, asyncio.Future]], outcome: list[PredictResponse] | BaseException) -> None:
    for i, (_, future) in enumerate(batch):
        if future.done():  # the client went away
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[i])
