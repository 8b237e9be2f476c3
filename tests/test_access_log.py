"""api.access.BatchedLines: access lines written a few at a time, whole, never lost on a clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import select
import time

import pytest

from api.access import FLUSH_S, BatchedLines, JsonFormatter, _whole_lines


@pytest.fixture
def pipe():
    read, write = os.pipe()
    os.set_blocking(read, False)
    yield read, write
    os.close(read)
    os.close(write)


def _logger(fd: int, name: str) -> logging.Logger:
    logger = logging.getLogger(f"test.access.{name}")
    logger.handlers = [BatchedLines(fd)]
    logger.handlers[0].setFormatter(JsonFormatter())
    logger.propagate, logger.level = False, logging.INFO
    return logger


def _read(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_lines_logged_on_an_event_loop_wait_then_go_out_together_in_order(pipe):
    read, write = pipe
    logger = _logger(write, "loop")

    async def requests() -> tuple[bytes, bytes]:
        for i in range(100):
            logger.info("request", extra={"n": i})
        at_once = _read(read)
        await asyncio.sleep(FLUSH_S + 0.2)
        return at_once, _read(read)

    at_once, later = asyncio.run(requests())
    assert at_once == b""
    assert [json.loads(line)["n"] for line in later.splitlines()] == list(range(100))


def test_a_line_logged_off_an_event_loop_is_written_at_once(pipe):
    read, write = pipe
    _logger(write, "thread").info("request", extra={"n": 1})
    assert json.loads(_read(read))["n"] == 1


def test_chunks_hold_whole_lines_within_the_atomic_write_size():
    lines = [(b"x" * n) + b"\n" for n in (10, 3000, 2000, 5000, 1, 4095, 4096)]
    chunks = _whole_lines(lines, 4096)
    assert b"".join(chunks) == b"".join(lines)
    assert all(len(c) <= 4096 or c.count(b"\n") == 1 for c in chunks)
    assert all(c.endswith(b"\n") for c in chunks)


def _worker(fd: int, who: int) -> None:
    logger = _logger(fd, f"worker{who}")

    async def many() -> None:
        for i in range(3000):
            logger.info("request", extra={"who": who, "n": i, "path": "/predict" + "x" * 200})
            if i % 500 == 0:
                await asyncio.sleep(0)

    asyncio.run(many())
    logger.handlers[0].flush()


def test_workers_sharing_a_pipe_never_interleave_inside_a_line():
    read, write = os.pipe()
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(write, who)) for who in (1, 2)]
    for w in workers:
        w.start()
    os.close(write)
    time.sleep(0.5)  # both fill the pipe and wait in the middle of their writes
    out = b""
    while chunk := os.read(read, 1 << 16):  # until both workers have closed their ends
        out += chunk
    os.close(read)
    for w in workers:
        w.join(10)
    lines = [json.loads(line) for line in out.splitlines()]  # a torn line would not parse
    for who in (1, 2):
        assert [line["n"] for line in lines if line["who"] == who] == list(range(3000))


def test_a_forked_worker_does_not_write_its_parents_waiting_lines(pipe):
    read, write = pipe
    logger = _logger(write, "parent")
    handler = logger.handlers[0]
    handler.waiting.append(b'{"from": "parent"}\n')  # as if logged on the parent's loop, not yet written
    pid = os.fork()
    if pid == 0:  # the child flushes at once: none of it is its own
        handler.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    assert select.select([read], [], [], 0.2)[0] == [] or _read(read) == b""
    handler.flush()
    assert _read(read) == b'{"from": "parent"}\n'
