"""Run the API on several cores, supervised: ``python -m api.serve --workers 2 [--host H] [--port P]``.

``uvicorn --workers N`` shares one listening socket between the workers, and each worker's event
loop accepts every pending connection it sees at once, so a burst of keep-alive connections
often lands on a single worker while the others idle. By default each worker here binds its own
socket with ``SO_REUSEPORT`` and the kernel spreads new connections evenly across them
(``--socket shared`` gives the one-socket design, for comparison: bench/api_latency.py).

This process is the workers' supervisor:
- it imports the app once and forks the workers from it (what runs in one: ``api.worker``), so a
  worker starts in a fraction of a second (importing the app's libraries takes seconds on a busy
  machine); models are loaded in each worker, after the fork;
- one more worker is kept warm, models loaded but not listening (``--no-standby`` saves its
  memory): a worker that dies (crash, OOM kill, ``kill -9``) is replaced by it at once, and a new
  standby is forked; without a standby the replacement joins the port only once its models are
  warm (uvicorn listens after the lifespan), so meanwhile the surviving workers take every new
  connection;
- a worker whose event loop stops (a hang, ``kill -STOP``) is killed and replaced like a dead one:
  each worker's loop writes a heartbeat to a pipe every ``api.worker.HEARTBEAT_S``, and one silent for
  ``LIVENESS_S`` is no longer answering anything (its socket would still take connections);
- workers die with it (``PR_SET_PDEATHSIG``: even a ``kill -9`` of this process leaves no orphan);
- a second instance on the same port is refused with a message, not silently run beside it;
- with several workers, Prometheus metrics are collected across processes
  (``PROMETHEUS_MULTIPROC_DIR``, a fresh folder per run unless set).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from api.settings import get_settings
from api.worker import STARTUP_FAILURE, listen_socket, run_worker

log = logging.getLogger("api.serve")

_MIN_LIFETIME_S = 1.0  # a worker that dies younger than this is restarted after a pause, not in a tight loop
# A serving worker's loop silent this long is hung: killed and replaced (well within the
# Kubernetes liveness probe's window, which restarts the whole pod).
LIVENESS_S = 5.0


class PortTaken(SystemExit):
    pass


_port_lock: socket.socket | None = None


def claim_port(host: str, port: int) -> socket.socket:
    """Refuse to start beside another server on this port; the returned lock lives as long as we do.

    Two checks: an abstract Unix socket named after the port serialises api.serve instances (it
    vanishes with its process, so no stale lock file), and a plain bind (no SO_REUSEPORT) fails
    while anything else listens there.
    """
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0deep-draw-api.serve:{port}")
    except OSError:
        lock.close()
        raise PortTaken(f"api.serve: another api.serve already serves port {port}; refusing to share it") from None
    try:
        listen_socket(host, port, reuseport=False).close()
    except OSError as exc:
        lock.close()
        raise PortTaken(f"api.serve: {host}:{port} is already in use ({exc.strerror}); refusing to share it") from None
    return lock


@dataclass(eq=False)
class _Worker:
    proc: BaseProcess
    started: float
    heart: int  # the read end of its heartbeat pipe
    go: int | None = None  # a standby's pipe: one byte and it serves; None once it serves
    beat: float = 0.0  # when its loop was last heard from (or it began to serve); 0: not yet

    def serving(self) -> None:
        self.go, self.beat = None, time.monotonic()


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, log_level: str, shared_socket: bool, standby: bool):
        self.host, self.port, self.log_level, self.want_standby = host, port, log_level, standby
        import api.main  # noqa: F401  (preloaded once: every forked worker starts with it imported)

        self.ctx = mp.get_context("fork")
        # Shared: one socket bound and listening here, inherited by every worker. Otherwise each
        # worker binds its own SO_REUSEPORT socket.
        self.sock = listen_socket(host, port, reuseport=False) if shared_socket else None
        if self.sock is not None:
            self.sock.listen(2048)
        self.active: list[_Worker | None] = [None] * workers
        self.standby: _Worker | None = None
        self.stopping = False
        from api import metrics  # after PROMETHEUS_MULTIPROC_DIR is set: the client reads it on import

        self.metrics = metrics

    def _everyone(self) -> list[_Worker]:
        return [w for w in [*self.active, self.standby] if w is not None]

    def _fork(self, standby: bool) -> _Worker:
        read, write = os.pipe() if standby else (None, None)
        heart, beat = os.pipe()
        # The supervisor's ends of every pipe: a worker closes those it inherits.
        inherited = [w.go for w in self._everyone() if w.go is not None] + ([write] if write is not None else [])
        inherited += [w.heart for w in self._everyone()] + [heart] + ([_port_lock.fileno()] if _port_lock else [])
        args = (os.getpid(), self.host, self.port, self.sock, self.log_level, read, beat, inherited)
        proc = self.ctx.Process(target=run_worker, args=args)
        proc.start()
        for fd in (read, beat):
            if fd is not None:
                os.close(fd)
        log.info("%s started (pid %s)", "standby worker" if standby else "worker", proc.pid)
        return _Worker(proc, time.monotonic(), heart, write)

    def _replacement(self) -> _Worker:
        """The warm standby if there is one (it serves at once), else a new worker."""
        spare, self.standby = self.standby, None
        if spare is not None and spare.go is not None:
            try:
                os.write(spare.go, b"g")
                os.close(spare.go)
                spare.serving()
                return spare
            except OSError:  # it died meanwhile: its exit is reaped in the loop
                os.close(spare.go)
        return self._fork(standby=False)

    def run(self) -> int:
        for slot in range(len(self.active)):
            self.active[slot] = self._fork(standby=False)
        while not self.stopping:
            if self.want_standby and self.standby is None:
                self.standby = self._fork(standby=True)
            workers = {w.proc.sentinel: w for w in self._everyone()}
            hearts = {w.heart: w for w in self._everyone()}
            for ready in wait([*workers, *hearts], timeout=0.5):
                if ready in hearts:
                    self._heard(hearts[ready])
                    continue
                if self._reap(workers[ready]) is not None:
                    self._shutdown()
                    return STARTUP_FAILURE
                if self.stopping:
                    break
            self._kill_the_silent()
            self.metrics.set_workers_alive(sum(1 for w in self.active if w is not None and w.proc.is_alive()))
        self._shutdown()
        return 0

    def _heard(self, worker: _Worker) -> None:
        try:
            if os.read(worker.heart, 4096):
                worker.beat = max(worker.beat, time.monotonic())
        except OSError:
            pass

    def _kill_the_silent(self) -> None:
        """Kill a serving worker whose loop has not beaten for LIVENESS_S; its exit is then reaped."""
        now = time.monotonic()
        for slot, w in enumerate(self.active):
            if w is not None and w.go is None and 0 < w.beat < now - LIVENESS_S and w.proc.is_alive():
                log.error("worker %d (pid %s) has not answered for %.0f s: killing it", slot, w.proc.pid, now - w.beat)
                w.proc.kill()  # SIGKILL ends a stopped process too
                w.beat = float("inf")  # once

    def _reap(self, dead: _Worker) -> int | None:
        """Replace a worker that exited; STARTUP_FAILURE when it could not start (restarting would not help)."""
        dead.proc.join()
        os.close(dead.heart)
        self.metrics.worker_exited(dead.proc.pid)
        if self.stopping:
            return None
        if dead.proc.exitcode == STARTUP_FAILURE:
            log.error("worker (pid %s) could not start; stopping", dead.proc.pid)
            return STARTUP_FAILURE
        if time.monotonic() - dead.started < _MIN_LIFETIME_S:
            time.sleep(_MIN_LIFETIME_S)  # dying young again and again: do not spin
        if dead is self.standby:
            log.warning("standby worker (pid %s) died (exit code %s)", dead.proc.pid, dead.proc.exitcode)
            if dead.go is not None:
                os.close(dead.go)
            self.standby = None  # a new one is forked at the top of the loop
            return None
        slot = next(i for i, w in enumerate(self.active) if w is dead)
        self.metrics.worker_restarted()
        self.active[slot] = new = self._replacement()
        log.warning(
            "worker %d (pid %s) died (exit code %s); pid %s serves in its place",
            slot,
            dead.proc.pid,
            dead.proc.exitcode,
            new.proc.pid,
        )
        return None

    def stop(self, *_: object) -> None:
        """Signal handler: the loop notices within half a second and shuts down."""
        self.stopping = True

    def _shutdown(self) -> None:
        self.stopping = True
        if self.standby is not None and self.standby.go is not None:
            os.close(self.standby.go)  # end of file: the standby exits without ever serving
            self.standby.go = None
        for w in self._everyone():
            if w.proc.is_alive():
                w.proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + get_settings().timeout_graceful_shutdown_s + 5
        for w in self._everyone():
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()


def _metrics_dir() -> Path | None:
    """One folder of per-process metric files for this run; the caller removes it if it made it."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # counters of a previous run would add up with ours
            stale.unlink()
        return None
    try:
        made = Path(tempfile.mkdtemp(prefix="deep-draw-metrics-"))
    except OSError as exc:  # e.g. a read-only file system without a writable /tmp
        log.warning("no folder for metrics across workers (%s): each worker's /metrics shows its own", exc)
        return None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(made)
    return made


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=settings.workers or mp.cpu_count())
    parser.add_argument("--socket", choices=["reuseport", "shared"], default="reuseport")
    parser.add_argument(
        "--standby",
        action=argparse.BooleanOptionalAction,
        default=settings.standby_worker,
        help="keep one extra worker warm (models loaded, not listening) to replace a dead one at once",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s api.serve %(levelname)s %(message)s")

    global _port_lock
    lock = _port_lock = claim_port(args.host, args.port)
    made = _metrics_dir()
    try:
        supervisor = Supervisor(
            args.host, args.port, args.workers, args.log_level, args.socket == "shared", args.standby
        )
        signal.signal(signal.SIGTERM, supervisor.stop)
        signal.signal(signal.SIGINT, supervisor.stop)
        code = supervisor.run()
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        lock.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
