"""Run the API on several cores, supervised: ``python -m api.serve --workers 2 [--host H] [--port P]``.

``uvicorn --workers N`` shares one listening socket between the workers, and each worker's event
loop accepts every pending connection it sees at once, so a burst of keep-alive connections
often lands on a single worker while the others idle. By default each worker here binds its own
socket with ``SO_REUSEPORT`` and the kernel spreads new connections evenly across them
(``--socket shared`` gives the one-socket design, for comparison: bench/api_latency.py).

This process is the workers' supervisor:
- it imports the app once and forks the workers from it, so a worker starts in a fraction of a
  second (importing the app's libraries takes seconds on a busy machine); models are loaded in
  each worker, after the fork;
- one more worker is kept warm, models loaded but not listening (``--no-standby`` saves its
  memory): a worker that dies (crash, OOM kill, ``kill -9``) is replaced by it at once, and a new
  standby is forked; without a standby the replacement joins the port only once its models are
  warm (uvicorn listens after the lifespan), so meanwhile the surviving workers take every new
  connection;
- a worker whose event loop stops (a hang, ``kill -STOP``) is killed and replaced like a dead one:
  each worker's loop writes a heartbeat to a pipe every ``HEARTBEAT_S``, and one silent for
  ``LIVENESS_S`` is no longer answering anything (its socket would still take connections);
- workers die with it (``PR_SET_PDEATHSIG``: even a ``kill -9`` of this process leaves no orphan);
- a second instance on the same port is refused with a message, not silently run beside it;
- with several workers, Prometheus metrics are collected across processes
  (``PROMETHEUS_MULTIPROC_DIR``, a fresh folder per run unless set).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
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

from api.settings import Settings, get_settings

log = logging.getLogger("api.serve")

STARTUP_FAILURE = 3  # uvicorn's exit code when the app or the socket cannot start: restarting will not help
_PR_SET_PDEATHSIG = 1
_MIN_LIFETIME_S = 1.0  # a worker that dies younger than this is restarted after a pause, not in a tight loop
HEARTBEAT_S = 1.0
# A serving worker's loop silent this long is hung: killed and replaced (well within the
# Kubernetes liveness probe's window, which restarts the whole pod).
LIVENESS_S = 5.0


class PortTaken(SystemExit):
    pass


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the supervisor goes, however it goes (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before the request above
        os._exit(0)


def _listen_socket(host: str, port: int, reuseport: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _uvicorn_options(settings: Settings, log_level: str) -> dict:
    from api.protocol import DeadlineHttpToolsProtocol

    return {
        "log_level": log_level,
        "access_log": False,  # api.access writes one JSON line per request instead
        "http": DeadlineHttpToolsProtocol,
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "timeout_graceful_shutdown": settings.timeout_graceful_shutdown_s,
    }


def _standby(lifespan: type, go: int) -> type:
    """A lifespan that, once the app is warm, waits for the supervisor's word before uvicorn listens."""

    class Standby(lifespan):  # type: ignore[misc, valid-type]
        async def startup(self) -> None:
            await super().startup()
            if not self.should_exit and not await asyncio.get_running_loop().run_in_executor(None, os.read, go, 1):
                os._exit(0)  # end of file: the supervisor is gone or stopping; this worker never served

    return Standby


def _beating(lifespan: type, beat: int) -> type:
    """A lifespan whose event loop writes a byte to ``beat`` every HEARTBEAT_S while it runs."""

    class Beating(lifespan):  # type: ignore[misc, valid-type]
        async def startup(self) -> None:
            await super().startup()  # the models load first: a worker is watched once it beats
            os.set_blocking(beat, False)  # a slow reader never blocks the loop
            self._heart = asyncio.get_running_loop().create_task(self._beat())

        async def _beat(self) -> None:
            while True:
                try:
                    os.write(beat, b".")
                except BlockingIOError:
                    pass  # the pipe is full: the supervisor has beats enough to read
                except OSError:
                    return  # the supervisor is gone
                await asyncio.sleep(HEARTBEAT_S)

    return Beating


def _worker(
    parent: int,
    host: str,
    port: int,
    sock: socket.socket | None,
    log_level: str,
    go: int | None,
    beat: int,
    inherited: list[int],
) -> None:
    _die_with_parent(parent)
    # Forked from the supervisor: drop its signal handlers (uvicorn installs its own), its port lock
    # and its ends of the standby pipes (else a standby would never see its pipe close).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if _port_lock is not None:
        _port_lock.close()
    for fd in inherited:
        with contextlib.suppress(OSError):  # a dead worker's, closed already
            os.close(fd)
    import uvicorn

    if sock is None:
        try:
            sock = _listen_socket(host, port, reuseport=True)
        except OSError as exc:
            print(f"api.serve worker: cannot bind {host}:{port}: {exc}", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config("api.main:app", **_uvicorn_options(get_settings(), log_level))
    config.load()
    config.lifespan_class = _beating(config.lifespan_class, beat)
    if go is not None:
        config.lifespan_class = _standby(config.lifespan_class, go)
    uvicorn.Server(config).run(sockets=[sock])


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
        _listen_socket(host, port, reuseport=False).close()
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
        self.sock = _listen_socket(host, port, reuseport=False) if shared_socket else None
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
        inherited += [w.heart for w in self._everyone()] + [heart]
        args = (os.getpid(), self.host, self.port, self.sock, self.log_level, read, beat, inherited)
        proc = self.ctx.Process(target=_worker, args=args)
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
