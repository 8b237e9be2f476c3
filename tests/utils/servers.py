"""Start the real API (or any server) on a free loopback port, wait until it is ready, stop it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
MODEL_STORE = REPO / "model_store"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float, name: str) -> None:
    """Until ``url`` answers 200; fails at once if ``proc`` exits, and after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} was not ready within {timeout:.0f} s ({url})")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def api_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an API process under test: the shipped models, a throwaway database that
    the API migrates itself (PostgreSQL included: tests/test_migrations.py covers the deploy step)."""
    env = {"MODEL_STORE": str(MODEL_STORE), "DATABASE_URL": database_url, "MIGRATE_ON_START": "true"}
    return {**os.environ, **env, **extra}


def start_api(port: int, env: dict[str, str], log: Path, workers: int | None = None) -> subprocess.Popen:
    """``uvicorn api.main:app`` (one process), or ``python -m api.serve --workers N``, on 127.0.0.1:port."""
    if workers is None:
        cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", str(workers)]
    with open(log, "a") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def running_api(
    database_url: str, log: Path, workers: int | None = None, timeout: float = 180, **extra_env: str
) -> Iterator[str]:
    """A real API server until the block ends; yields its base URL once /ready answers 200."""
    port = free_port()
    proc = start_api(port, api_env(database_url, **extra_env), log, workers)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", proc, timeout, "the API")
        yield url
    finally:
        stop(proc)
