"""A real ``python -m api.serve`` for tests: started on a free loopback port, its output in a file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int | str) -> list[str]:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]; [] once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def children(pid: int) -> set[int]:
    """Direct children of a process (scanning /proc: not every kernel has /proc/PID/task/TID/children)."""
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _stat(p.name)[1:2] == [str(pid)]}


def alive(pid: int) -> bool:
    return _stat(pid)[:1] not in ([], ["Z"])  # a zombie has exited and only waits to be reaped


class ApiServer:
    """``python -m api.serve`` with the shipped models and a throwaway database."""

    def __init__(self, tmp: Path, workers: int = 2, env: dict[str, str] | None = None, port: int | None = None):
        self.tmp = tmp
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"api-serve-{self.port}.log"
        self.env = {
            **os.environ,
            "MODEL_STORE": str(REPO / "model_store"),
            "DATABASE_URL": f"sqlite:///{tmp}/submissions.db",
            **(env or {}),
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        return [sys.executable, "-m", "api.serve", *where]

    def start(self, timeout: float = 120) -> ApiServer:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()  # never leave a half-started server (and its workers) behind
            raise
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log_path.read_text()[-3000:]
                raise RuntimeError(f"api.serve exited with {self.proc.returncode}:\n{tail}")
            try:
                ready = httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
                if ready and len(self.workers_pids()) == self.workers:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"api.serve not ready within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def workers_pids(self) -> set[int]:
        """The supervisor's live children: its uvicorn workers."""
        assert self.proc is not None
        return {pid for pid in children(self.proc.pid) if alive(pid)}

    def log_lines(self) -> list[dict]:
        """The JSON lines of the server's output (uvicorn's own start-up lines are plain text)."""
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
