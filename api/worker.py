"""What runs in a worker process that ``api.serve`` forks: the app under uvicorn on its socket, a
heartbeat from its event loop, and, for a standby, a wait for the supervisor's word before it serves."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys

from api.settings import Settings, get_settings

STARTUP_FAILURE = 3  # uvicorn's exit code when the app or the socket cannot start: restarting will not help
HEARTBEAT_S = 1.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the supervisor goes, however it goes (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before the request above
        os._exit(0)


def listen_socket(host: str, port: int, reuseport: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def uvicorn_options(settings: Settings, log_level: str) -> dict:
    from api.protocol import DeadlineHttpToolsProtocol

    return {
        "log_level": log_level,
        "access_log": False,  # api.access writes one JSON line per request instead
        "http": DeadlineHttpToolsProtocol,
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "timeout_graceful_shutdown": settings.timeout_graceful_shutdown_s,
    }


def standby(lifespan: type, go: int) -> type:
    """A lifespan that, once the app is warm, waits for the supervisor's word before uvicorn listens."""

    class Standby(lifespan):  # type: ignore[misc, valid-type]
        async def startup(self) -> None:
            await super().startup()
            if not self.should_exit and not await asyncio.get_running_loop().run_in_executor(None, os.read, go, 1):
                os._exit(0)  # end of file: the supervisor is gone or stopping; this worker never served

    return Standby


def beating(lifespan: type, beat: int) -> type:
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


def run_worker(
    parent: int,
    host: str,
    port: int,
    sock: socket.socket | None,
    log_level: str,
    go: int | None,
    beat: int,
    inherited: list[int],
) -> None:
    die_with_parent(parent)
    # Forked from the supervisor: drop its signal handlers (uvicorn installs its own) and the file
    # descriptors it keeps (``inherited``: its port lock, its ends of the standby and heartbeat pipes;
    # else a standby would never see its pipe close).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in inherited:
        with contextlib.suppress(OSError):  # a dead worker's, closed already
            os.close(fd)
    import uvicorn

    if sock is None:
        try:
            sock = listen_socket(host, port, reuseport=True)
        except OSError as exc:
            print(f"api.serve worker: cannot bind {host}:{port}: {exc}", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config("api.main:app", **uvicorn_options(get_settings(), log_level))
    config.load()
    config.lifespan_class = beating(config.lifespan_class, beat)
    if go is not None:
        config.lifespan_class = standby(config.lifespan_class, go)
    uvicorn.Server(config).run(sockets=[sock])
