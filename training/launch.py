"""Run a training command on several local worker processes, as a cluster would (``TF_CONFIG`` on 127.0.0.1).

    python -m training.launch --workers 2 -- cnn --data-dir ../shared/quickdraw   # = make train-distributed

The launcher prepares the shards once, then starts the workers (``python -m training.train`` each,
with its own ``TF_CONFIG``: ``training.distributed``), waits for all of them, stops the others when
one fails, and leaves one log per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from training.train import prepare_for


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(workers: int, train_argv: list[str], log_dir: Path, timeout: float | None = None) -> list[int]:
    """Run ``python -m training.train <train_argv>`` as ``workers`` local processes; their exit codes.

    Each worker's output goes to ``log_dir/worker-<i>.log``. A worker that fails stops the others
    (the survivors would wait for it in the next all-reduce).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    addresses = [f"127.0.0.1:{p}" for p in _free_ports(workers)]
    procs = []
    for i in range(workers):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}}),
        }
        log = open(log_dir / f"worker-{i}.log", "w")  # noqa: SIM115 - closed when the process ends
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "training.train", *train_argv], env=env, stdout=log, stderr=subprocess.STDOUT
                ),
                log,
            )
        )
    deadline = None if timeout is None else time.monotonic() + timeout
    codes: list[int | None] = [None] * workers
    while None in codes:
        for i, (proc, _) in enumerate(procs):
            if codes[i] is None:
                codes[i] = proc.poll()
        failed = any(c not in (None, 0) for c in codes)
        if failed or (deadline is not None and time.monotonic() > deadline):
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.terminate()
            codes = [proc.wait() for proc, _ in procs]
        time.sleep(0.2)
    for _, log in procs:
        log.close()
    return [int(c) for c in codes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.launch", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=Path("runs/distributed"))
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the training.train arguments")
    args = parser.parse_args(argv)
    train_argv = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if not train_argv:
        parser.error("give the training arguments after --, e.g. -- cnn --data-dir ../shared/quickdraw")
    prepare_for(train_argv)  # once, before the workers start
    started = time.monotonic()
    codes = launch(args.workers, train_argv, args.log_dir)
    for i, code in enumerate(codes):
        print(f"worker {i}: exit {code}, log {args.log_dir / f'worker-{i}.log'}")
    print(f"{args.workers} workers finished in {time.monotonic() - started:.0f} s")
    if any(codes):
        sys.exit(1)


if __name__ == "__main__":
    main()
