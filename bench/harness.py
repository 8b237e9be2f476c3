"""What the benches share: a server on a free loopback port, waited for and stopped with its whole
process tree; what it costs (CPU seconds, RSS over that tree); wrk driving it with one POST.

Standard library, numpy, psutil and the wrk binary only: nothing from api/, training/ or tests/ is imported, so
a bench sees the server from outside, as a client does, and runs without the test tree's helpers.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"  # real drawings, read as data; the test tree's code is not imported


class NotReady(RuntimeError):
    """A server that exited, or gave no 200, before it was ready; the message says which."""


# --- what the benches send -------------------------------------------------------------------------


def read_ndjson(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def cat_body() -> bytes:
    """The request every server is timed with: the fixtures' first cat as a 28x28 bitmap, JSON."""
    bitmap = np.load(FIXTURES / "pairs" / "cat.npy")[0].reshape(28, 28)
    return json.dumps({"bitmap": bitmap.tolist()}).encode()


def http(method: str, url: str, body: bytes | dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of one request; an HTTP error status is an answer, not an exception."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- a server process --------------------------------------------------------------------------------


def request_bytes(method: str, path: str, body: dict | None) -> bytes:
    """One keep-alive HTTP/1.1 request as bytes, for clients that write them on a raw socket."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode() + payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_command(port: int, workers: int | None = None, *extra: str) -> list[str]:
    """``uvicorn api.main:app`` (one process), or ``python -m api.serve --workers N``, on 127.0.0.1:port."""
    where = ["--host", "127.0.0.1", "--port", str(port)]
    if workers is None:
        return [sys.executable, "-m", "uvicorn", "api.main:app", *where, *extra]
    return [sys.executable, "-m", "api.serve", *where, "--workers", str(workers), *extra]


@dataclass(frozen=True)
class Started:
    port: int
    proc: subprocess.Popen
    answer: dict  # the first 200's JSON body
    ready_s: float  # process start to that answer: the cold start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running(
    command: list[str],
    port: int,
    log: Path,
    *,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    probe: str = "/ready",
    body: bytes | None = None,
    timeout: float = 180.0,
) -> Iterator[Started]:
    """``command`` (serving on ``port``) until the block ends, from its first 200 on ``probe``
    (a POST of ``body`` when given). Its own session, so that `stop` reaches every process it forks;
    its output goes to ``log``, not between a bench's figures."""
    with log.open("w") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        answer = first_answer(proc, f"http://127.0.0.1:{port}{probe}", body, timeout, log)
        yield Started(port, proc, answer, time.monotonic() - start)
    finally:
        stop(proc)


def first_answer(proc: subprocess.Popen, url: str, body: bytes | None, timeout: float, log: Path) -> dict:
    """Polls ``url`` until a 200; fails at once if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            where = log.relative_to(REPO) if log.is_relative_to(REPO) else log
            raise NotReady(f"exited with {proc.returncode} before answering (log: {where})")
        with contextlib.suppress(OSError, ValueError):
            status, raw = http("GET" if body is None else "POST", url, body)
            if status == 200:
                return json.loads(raw)
        time.sleep(0.1)
    raise NotReady(f"no 200 from {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running_api(
    database_url: str, log: Path, workers: int | None = None, timeout: float = 180.0, **extra_env: str
) -> Iterator[Started]:
    """The real API on the shipped models and a throwaway database that it migrates itself."""
    port = free_port()
    env = {"MODEL_STORE": str(REPO / "model_store"), "DATABASE_URL": database_url, "MIGRATE_ON_START": "true"}
    with running(api_command(port, workers), port, log, env=env | extra_env, timeout=timeout) as api:
        yield api


def tree(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        root = psutil.Process(proc.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU time of ``procs``. Throughput on a machine shared with other jobs moves with
    their load; a server's CPU time per request does not, so it compares two server designs fairly."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def stop(proc: subprocess.Popen) -> None:
    """Ends the server's process group, then whatever of its tree left the group (Ray's daemons)."""
    procs = tree(proc)
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
        _, alive = psutil.wait_procs(procs, timeout=wait)
        if not alive:
            break
    proc.wait(10)


# --- wrk ------------------------------------------------------------------------------------------------

# done() prints the figures as one JSON line (latency in microseconds). Status counts need a Lua call
# per response, which costs the client CPU, so only a script that asks for them counts them.
WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]
local threads = {}
function setup(thread) table.insert(threads, thread) end
statuses = {}
%(response)s
function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do counts[k] = (counts[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(counts) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p90_us": %%.1f, "p99_us": %%.1f, ' ..
    '"max_us": %%d, "non2xx": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}, ' ..
    '"statuses": {%%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""
COUNT_STATUSES = """
function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end
"""


def wrk_script(path: Path, body: bytes, statuses: bool = False) -> Path:
    """A wrk script at ``path`` that POSTs ``body`` as JSON; ``statuses``: count every status code."""
    path.write_text(WRK_LUA % {"body": body.decode(), "response": COUNT_STATUSES if statuses else ""})
    return path


def wrk_command(url: str, script: Path, seconds: float, connections: int, threads: int = 1) -> list[str]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(script)]
    return [*cmd, url]


def wrk_figures(output: str, returncode: int) -> dict:
    """The JSON line of a `wrk_script`, with req/s and the socket errors summed."""
    line = next((ln for ln in output.splitlines() if ln.startswith("WRK_JSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({returncode}):\n{output}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["socket_errors"] = sum(figures["errors"].values())
    return figures


def wrk(url: str, script: Path, seconds: float, connections: int, threads: int = 1) -> dict:
    """One wrk run to its end."""
    cmd = wrk_command(url, script, seconds, connections, threads)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=seconds + 60)
    return wrk_figures(out.stdout, out.returncode)
