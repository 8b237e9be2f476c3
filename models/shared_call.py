"""One model call over many rows, shared by the caller and a helper thread while the rows are still
being prepared.

A player waits for an explanation, and the network runs outside the GIL: the helper starts on the
rows prepared first while the caller prepares the rest, then both take what is left, half of it at a
time, so neither waits long for the other whatever the rows cost. One helper, not one per core: a
server runs a worker per core. Rows the helper has not taken are run by the caller, so a busy
process is never slower than one call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from models.answer import Answer
from models.inputs import Inputs, joined, rows_of, size

Predict = Callable[[Inputs], Answer]
Rows = tuple[Sequence[int], Inputs]  # the rows' positions in the answer, and their inputs

SHARE = len(os.sched_getaffinity(0)) > 1
SHARE_FROM = 4  # rows ready: below this one call costs less than handing part of it over
# Rows per call, at least, once shared: a call has a fixed cost of a fraction of a row's.
MIN_CHUNK = 2

_helper = ThreadPoolExecutor(1, thread_name_prefix="helper")
_helping = threading.Event()  # the helper thread is at work on some call's rows


def helper() -> ThreadPoolExecutor:
    """This process's helper thread (a forked worker gets its own: a parent's threads are not copied)."""
    return _helper


def _new_helper() -> None:
    global _helper, _helping
    _helper = ThreadPoolExecutor(1, thread_name_prefix="helper")
    _helping = threading.Event()  # the parent's may have been held by its helper


os.register_at_fork(after_in_child=_new_helper)


class _Queue:
    """Rows in the order they were prepared; the caller and the helper take them from the front."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.positions: list[int] = []
        self.batches: list[Inputs] = []
        self.taken = 0
        self.answers: list[tuple[int, Answer]] = []  # (first row in queue order, its chunk's answer)
        self.running = threading.Event()  # the helper has taken rows and is running them

    def add(self, positions: Sequence[int], inputs: Inputs) -> None:
        with self.lock:
            self.positions.extend(positions)
            self.batches.append(inputs)

    def ready(self) -> int:
        return len(self.positions) - self.taken

    def take(self, everything: bool) -> tuple[int, Inputs] | None:
        """The next rows: all that are ready, or half of them (at least MIN_CHUNK)."""
        with self.lock:
            ready = self.ready()
            if not ready:
                return None
            count = ready if everything else min(ready, max(MIN_CHUNK, -(-ready // 2)))
            start, self.taken = self.taken, self.taken + count
            return start, self._rows(start, self.taken)

    def _rows(self, start: int, stop: int) -> Inputs:
        parts, first = [], 0
        for batch in self.batches:
            last = first + size(batch)
            if first < stop and start < last:
                parts.append(rows_of(batch, max(start, first) - first, min(stop, last) - first))
            first = last
        return joined(parts)

    def work(self, predict: Predict, everything: bool = False) -> None:
        while (chunk := self.take(everything)) is not None:
            self.running.set()
            answer = predict(chunk[1])
            with self.lock:
                self.answers.append((chunk[0], answer))

    def answer(self, predict: Predict) -> Answer:
        """Every row's answer, in the order of their positions."""
        chunks = sorted(self.answers, key=lambda a: a[0])
        first = chunks[0][1]
        if any(a.classes != first.classes for _, a in chunks):  # a category was taught in between
            first = predict(self._rows(0, len(self.positions)))
            chunks = [(0, first)]
        probabilities = np.concatenate([a.probabilities for _, a in chunks])
        ordered = np.empty_like(probabilities)
        ordered[self.positions] = probabilities
        return Answer(ordered, first.classes, first.origins)


def _help(queue: _Queue, predict: Predict) -> None:
    _helping.set()
    try:
        queue.work(predict)
    finally:
        _helping.clear()


def predict_rows(predict: Predict, batches: Iterable[Rows]) -> Answer | None:
    """``predict`` on every row of ``batches`` (positions 0..n-1 between them, in any order), the
    answer's rows in the order of their positions; None when there are none. Batches are prepared
    as they are drawn from ``batches``: once enough rows are ready, the helper thread starts on them."""
    queue, handed = _Queue(), None
    for positions, inputs in batches:
        queue.add(positions, inputs)
        if handed is None and SHARE and queue.ready() >= SHARE_FROM:
            idle = not _helping.is_set()
            handed = helper().submit(_help, queue, predict)
            if idle:  # until it runs (outside the GIL), it would wait for the GIL behind the preparation
                queue.running.wait(0.001)
    if not queue.positions:
        return None
    queue.work(predict, everything=handed is None)
    if handed is not None and not handed.cancel():
        handed.result()
    return queue.answer(predict)
