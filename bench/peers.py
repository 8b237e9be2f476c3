"""Deep Draw against the ways a user would otherwise serve the shipped CNN, side by side in one run.

    make bench-peers            (or: .venv/bin/python bench/peers.py [--seconds 10] [--runs 3] [--only NAME ...])

Each server gets the same cores, the same real bitmap (a cat from tests/fixtures/pairs/cat.npy) and
the same client (wrk: 16 keep-alive connections, one thread), one server after another. A server
must answer "cat" before it is timed. For each: a warm-up, then ``--runs`` timed runs of
``--seconds``; the median run by req/s is shown with every run's req/s. Cold start is process start
to the first 200 from POST /predict; RSS is summed over the server's process tree after the runs.

The servers are started as bench/peer_servers.py says: BentoML and Ray from throwaway virtualenvs
under data/bench-peers/ with the versions pinned there; the seed's TensorFlow app, the plain
onnxruntime app and the ceiling (a bare ASGI app) from the project's own venv. A peer whose install
fails is skipped with its reason. Deep Draw is compared with the best peer running as many serving
processes. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    NotReady,
    cat_body,
    cpu_seconds,
    free_port,
    rss_mb,
    running,
    tree,
    wrk,
    wrk_script,
)
from bench.peer_servers import WORK, Server, Skip, servers

CONNECTIONS = 16
COLUMNS = ["server", "processes", "req/s (median run)", "req/s of each run", "p50 ms", "p99 ms", "errors"]
COLUMNS += ["CPU ms/req", "RSS MB", "cold start s", "load"]


@dataclass
class Result:
    server: Server
    runs: list[dict]
    rss_mb: float
    cold_s: float
    load: float
    cpu_ms: float  # server CPU time per request, over its process tree: what a busy machine distorts least

    @property
    def median(self) -> dict:
        return sorted(self.runs, key=lambda r: r["rps"])[len(self.runs) // 2]


# --- timing -------------------------------------------------------------------------------------


def measure(key: str, server: Server, port: int, body: bytes, script: Path, args: argparse.Namespace) -> Result:
    log = WORK / f"{key}.log"
    run = running(
        server.command,
        port,
        log,
        cwd=server.cwd,
        env=server.env,
        probe=server.path,
        body=body,
        timeout=args.start_timeout,
    )
    with run as started:
        label = started.answer["predictions"][0]["label"]
        if label != "cat":
            raise Skip(f"answered {label!r} for the cat bitmap, not timed")
        url = f"{started.url}{server.path}"
        load = os.getloadavg()[0]
        wrk(url, script, args.warmup, CONNECTIONS)
        procs = tree(started.proc)
        cpu_before = cpu_seconds(procs)
        runs = [wrk(url, script, args.seconds, CONNECTIONS) for _ in range(args.runs)]
        cpu_ms = (cpu_seconds(procs) - cpu_before) * 1000 / sum(r["requests"] for r in runs)
        return Result(server, runs, rss_mb(tree(started.proc)), started.ready_s, load, cpu_ms)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def row(r: Result) -> str:
    m = r.median
    each = " / ".join(f"{run['rps']:.0f}" for run in r.runs)
    errors = sum(run["non2xx"] for run in r.runs), sum(run["socket_errors"] for run in r.runs)
    return (
        f"| {r.server.name} | {r.server.processes} | **{m['rps']:,.0f}** | {each} | {m['p50_us'] / 1000:.1f} "
        f"| {m['p99_us'] / 1000:.1f} | {errors[0]} / {errors[1]} | {r.cpu_ms:.2f} | {r.rss_mb:,.0f} | {r.cold_s:.1f} "
        f"| {r.load:.2f} |"
    )


def summary(results: dict[str, Result]) -> str:
    """Deep Draw against the best peer with as many serving processes, and against the ceiling."""
    lines = []
    for ours_key, ceiling_key in (("deepdraw", "ceiling-one"), ("deepdraw-serve", "ceiling")):
        ours = results.get(ours_key)
        if ours is None:
            continue
        peers = [
            r
            for key, r in results.items()
            if not key.startswith(("deepdraw", "ceiling")) and r.server.processes.rstrip("+") == ours.server.processes
        ]
        if not peers:
            lines.append(f"{ours.server.name}: no peer with {ours.server.processes} serving processes in this run.")
            continue
        best = max(peers, key=lambda r: r.median["rps"])
        rps = ours.median["rps"] / best.median["rps"]
        p99 = ours.median["p99_us"] / best.median["p99_us"]
        line = (
            f"{ours.server.name} / best peer ({best.server.name}): throughput {rps:.2f}x "
            f"({ours.median['rps']:,.0f} / {best.median['rps']:,.0f} req/s), p99 {p99:.2f}x "
            f"({ours.median['p99_us'] / 1000:.1f} / {best.median['p99_us'] / 1000:.1f} ms), "
            f"CPU per request {ours.cpu_ms / best.cpu_ms:.2f}x ({ours.cpu_ms:.2f} / {best.cpu_ms:.2f} ms). "
            f"Goal: throughput >= 2x at p99 <= 1x -> {'met' if rps >= 2 and p99 <= 1 else 'not met'}."
        )
        top = results.get(ceiling_key)
        if top is not None:
            line += (
                f" The ceiling (bare ASGI) / that peer: {top.median['rps'] / best.median['rps']:.2f}x; Deep Draw"
                f" reaches {ours.median['rps'] / top.median['rps']:.0%} of the ceiling's req/s."
            )
        lines.append(line)
    return "\n\n".join(lines) or "Ratio: needs `deepdraw` or `deepdraw-serve` and a peer."


def main() -> None:
    cores = os.cpu_count() or 1
    choices = list(servers(cores))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each timed run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per server; the median run is shown")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds of load before the runs")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for a first 200")
    parser.add_argument("--only", nargs="+", choices=choices, default=choices, help="servers to run, in order")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (Debian)")
    WORK.mkdir(parents=True, exist_ok=True)
    body = cat_body()
    script = wrk_script(WORK / "post.lua", body)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()

    started = dt.datetime.now(dt.UTC)
    print(f"# Deep Draw vs peers, {started:%Y-%m-%d %H:%M} UTC, {cpu_model()}, {cores} cores\n")
    print(
        f"Client: {wrk_version}, 1 thread, {CONNECTIONS} keep-alive connections, POST of the cat bitmap "
        f"({len(body)} bytes JSON); {args.warmup:.0f} s warm-up, then {args.runs} x {args.seconds:.0f} s per server, "
        "median run shown. Client and servers share the machine.\n",
        flush=True,
    )
    results: dict[str, Result] = {}
    skipped: list[str] = []
    for key in args.only:
        port = free_port()
        print(f"{key}: load average before start {os.getloadavg()[0]:.2f}", flush=True)
        try:
            server = servers(cores)[key](port)
            results[key] = measure(key, server, port, body, script, args)
            print(f"  {row(results[key])}", flush=True)
        except (Skip, NotReady) as exc:
            skipped.append(f"- {key}: skipped, {exc}")
            print(f"  skipped: {exc}", flush=True)

    print(f"\n{started:%Y-%m-%d}, {cpu_model()}, {cores} cores. Load average (1 min) before each timed run in the")
    print("last column. Errors: non-2xx responses / socket errors over all runs. CPU ms/req: the server's")
    print("process tree's CPU time over the timed runs per request answered.\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * 2 + "---|" + "---:|" * (len(COLUMNS) - 4))
    for r in results.values():
        print(row(r))
    print("\n".join(["", *skipped]) if skipped else "")
    print(summary(results))


if __name__ == "__main__":
    main()
