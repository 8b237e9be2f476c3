"""A real ``python -m api.serve`` for tests, with its processes and its JSON log lines at hand."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.utils.servers import api_env, free_port, start_api, stop


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
    """``python -m api.serve --workers N`` with the shipped models and a throwaway database."""

    def __init__(self, tmp: Path, workers: int = 2, env: dict[str, str] | None = None, standby: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"api-serve-{self.port}.log"
        self.env = api_env(f"sqlite:///{tmp}/submissions.db", **(env or {}))
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # api.serve makes its own
        self.env["STANDBY_WORKER"] = str(standby).lower()
        self.workers = workers
        self.processes = workers + standby  # the supervisor's children once it is ready
        self.proc = None

    def start(self, timeout: float = 180) -> ApiServer:
        self.proc = start_api(self.port, self.env, self.log_path, self.workers)
        try:
            self.wait_ready(timeout)
        except BaseException:
            stop(self.proc)  # never leave a half-started server (and its workers) behind
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until /ready answers 200 and every worker (and the standby) runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api.serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                ready = httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and len(self.workers_pids()) == self.processes:
                return
            time.sleep(0.2)
        raise RuntimeError(f"api.serve not ready within {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def workers_pids(self) -> set[int]:
        """The supervisor's live children: its uvicorn workers and the warm standby."""
        return {pid for pid in children(self.proc.pid) if alive(pid)}

    def log_lines(self) -> list[dict]:
        """The JSON lines of the server's output (uvicorn's own start-up lines are plain text)."""
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            stop(self.proc)
