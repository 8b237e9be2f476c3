"""Run the API on several cores: ``python -m api.serve --workers 2 [--host H] [--port P]``.

``uvicorn --workers N`` shares one listening socket between the workers, and each worker's event
loop accepts every pending connection it sees at once, so a burst of keep-alive connections
often lands on a single worker while the others idle. Here each worker binds its own socket with
``SO_REUSEPORT`` and the kernel spreads new connections evenly across them. Same app, same
settings; plain ``uvicorn api.main:app`` still works for one process.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import socket

import uvicorn

from api.settings import get_settings


def _worker(host: str, port: int, log_level: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = uvicorn.Config("api.main:app", log_level=log_level, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=settings.workers or mp.cpu_count())
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(args.host, args.port, args.log_level)) for _ in range(args.workers)]
    for w in workers:
        w.start()

    def stop(*_):
        for w in workers:
            w.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
