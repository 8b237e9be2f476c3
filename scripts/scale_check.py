"""Load and failover check of the scale-out Compose setup (deploy/compose.scale.yml), re-runnable.

    python scripts/scale_check.py [--replicas 3] [--duration 60] [--connections 64] [--keep]

1. ``up -d --scale api=N`` of docker-compose.yml + deploy/compose.scale.yml (PostgreSQL, N API
   replicas, nginx), waits until every replica is healthy and the balancer answers.
2. Run "steady": ``wrk`` POSTs a real Quick, Draw! cat to /predict through the balancer for
   DURATION s at CONNECTIONS connections while a second client stores submissions through it.
3. Run "failover": the same, and a quarter of the way in one replica is killed: SIGKILL to its
   main process (what ``docker kill`` sends, but sent from the host, because Docker counts a
   ``docker kill`` as a manual stop and its restart policy then leaves the container down). The
   restart policy brings it back, and the run records when it is healthy again.
4. Every submission acknowledged (201) in either run is looked up in PostgreSQL by id.

Prints req/s, p50/p99 latency, every non-2xx status and socket error of each run, the submission
counts, and exits non-zero when an acknowledged submission is missing. ``down -v`` at the end
unless --keep. Needs a Docker engine (scripts/docker_engine.sh), Compose and wrk; talks to
127.0.0.1 only. Machines without Docker Hub: --offline.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import FIXTURES, REPO, http, wrk_command, wrk_figures, wrk_script

FIXTURE = FIXTURES / "pairs" / "cat.simplified.ndjson.gz"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cat_strokes() -> list:
    with gzip.open(FIXTURE, "rt") as f:
        return json.loads(f.readline())["drawing"]


class Compose:
    """docker compose (v2) or docker-compose (v1) on the two files, in its own project."""

    def __init__(self, project: str, env: dict[str, str], profiles: list[str]):
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            base = ["docker", "compose"]
        elif shutil.which("docker-compose"):
            base = ["docker-compose"]
        else:
            sys.exit("neither 'docker compose' nor 'docker-compose' is installed")
        self.cmd = [*base, "-p", project, "-f", "docker-compose.yml", "-f", "deploy/compose.scale.yml"]
        for profile in profiles:
            self.cmd += ["--profile", profile]
        self.env = env

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        out = subprocess.run(
            [*self.cmd, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def ids(self, service: str) -> list[str]:
        return [line for line in self.run("ps", "-q", service).split() if line]


def inspect(container: str, fmt: str) -> str:
    out = subprocess.run(["docker", "inspect", "-f", fmt, container], capture_output=True, text=True)
    return out.stdout.strip()


def health(container: str) -> str:
    return inspect(container, "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}")


def wait_for(what: str, ready, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if ready():
            return time.monotonic() - start
        time.sleep(1)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


@dataclass
class Submitter:
    """Stores submissions through the balancer, one at a time, at a bounded rate, during a run."""

    url: str
    strokes: list
    interval: float = 0.1
    acked: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {"label": "cat", "strokes": self.strokes, "canvas": {"width": 256, "height": 256}}
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, raw = http("POST", f"{self.url}/submissions", body)
                self.statuses[status] += 1
                if status == 201:
                    self.acked.append(int(json.loads(raw)["id"]))
            except OSError as e:  # no answer at all: counted, never taken as stored
                self.failures[type(e).__name__] += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()


def run_load(name: str, lb: str, args, lua: Path, strokes: list, during=None) -> dict:
    submitter = Submitter(lb, strokes)
    thread = threading.Thread(target=submitter.run, daemon=True)
    thread.start()
    cmd = wrk_command(f"{lb}/predict", lua, args.duration, args.connections, threads=2)
    log(f"run {name}: {' '.join(cmd)}")
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events = during() if during else {}
    output, _ = wrk.communicate(timeout=args.duration + 120)
    submitter.stop()
    thread.join(timeout=30)
    result = wrk_figures(output, wrk.returncode)
    result.update(name=name, events=events, submissions=submitter)
    return result


def report(result: dict) -> None:
    seconds = result["duration_us"] / 1e6
    statuses = result["statuses"]
    non2xx = {k: v for k, v in sorted(statuses.items()) if not k.startswith("2")}
    errors = {k: v for k, v in result["errors"].items() if v}
    sub: Submitter = result["submissions"]
    print(f"== {result['name']}")
    rate = result["requests"] / seconds
    print(f"  /predict via nginx: {result['requests']} requests in {seconds:.1f}s = {rate:.1f} req/s")
    print(
        f"  latency p50 {result['p50_us'] / 1000:.1f} ms, p90 {result['p90_us'] / 1000:.1f} ms, "
        f"p99 {result['p99_us'] / 1000:.1f} ms, max {result['max_us'] / 1000:.1f} ms"
    )
    print(f"  statuses {dict(sorted(statuses.items()))}; non-2xx: {non2xx or 'none'}")
    print(f"  socket errors: {errors or 'none'}")
    print(
        f"  POST /submissions: {sum(sub.statuses.values())} answered {dict(sorted(sub.statuses.items()))}, "
        f"{len(sub.acked)} acknowledged (201), no answer: {dict(sub.failures) or 'none'}"
    )
    for key, value in result["events"].items():
        print(f"  {key}: {value}")


def stored_ids(compose: Compose, ids: list[int]) -> set[int]:
    """The acknowledged ids that PostgreSQL holds, asked of the server itself (psql in the db container)."""
    sql = f"SELECT id FROM submissions WHERE id IN ({','.join(map(str, ids))})" if ids else "SELECT 1 WHERE false"
    return {int(line) for line in psql(compose, sql).split()}


def psql(compose: Compose, sql: str) -> str:
    """``sql``'s rows as psql prints them unaligned, from inside the db container."""
    command = ["docker", "exec", compose.ids("db")[0], "psql", "-U", "deepdraw", "-d", "deepdraw", "-tAc", sql]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def upstream_counts(compose: Compose) -> Counter:
    """Requests per API replica address, from the balancer's JSON access log."""
    time.sleep(6)  # nginx flushes its log buffer every 5 s
    out = subprocess.run(["docker", "logs", compose.ids("lb")[0]], capture_output=True, text=True).stdout
    counts: Counter = Counter()
    for line in out.splitlines():
        if line.startswith("{"):
            counts[json.loads(line)["upstream"]] += 1
    return counts


def check_prometheus(port: int, replicas: int) -> None:
    """Prometheus found every replica through Docker's DNS and scraped its /metrics."""
    base = f"http://127.0.0.1:{port}/api/v1"
    time.sleep(20)  # one scrape interval (15 s) after the load, so the counters include it

    def query(expr: str) -> list:
        status, raw = http("GET", f"{base}/query?query={urllib.parse.quote(expr)}")
        if status != 200:
            raise RuntimeError(f"Prometheus query {expr!r}: {status} {raw[:200]!r}")
        return json.loads(raw)["data"]["result"]

    status, raw = http("GET", f"{base}/targets")
    targets = json.loads(raw)["data"]["activeTargets"] if status == 200 else []
    up = [t["labels"]["instance"] for t in targets if t["health"] == "up"]
    print(f"== Prometheus: {len(up)} of {replicas} replicas scraped and up: {', '.join(sorted(up))}")
    for expr in (
        'sum by (instance) (deepdraw_http_requests_total{route="/predict"})',
        "sum by (instance) (deepdraw_submissions_stored_total)",
    ):
        values = {r["metric"].get("instance", "?"): float(r["value"][1]) for r in query(expr)}
        print(f"  {expr}: {values} (since each replica's last start)")
    if len(up) != replicas:
        raise RuntimeError(f"Prometheus scrapes {len(up)} replicas, not {replicas}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--duration", type=int, default=60, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--lb-port", type=int, default=int(os.environ.get("LB_PORT", "18080")))
    parser.add_argument("--project", default="deepdrawscale")
    parser.add_argument("--no-build", action="store_true", help="use the images already built")
    parser.add_argument(
        "--offline", action="store_true", help="machines without Docker Hub: build the local base and stand-ins first"
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running (no down -v)")
    parser.add_argument("--metrics", action="store_true", help="also run Prometheus and check it scrapes every replica")
    parser.add_argument("--prometheus-port", type=int, default=19090)
    return parser.parse_args(argv)


def compose_for(args: argparse.Namespace) -> Compose:
    """The stack's Compose project, once docker, wrk and an engine are there (and, offline, the local images)."""
    for tool in ("docker", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (wrk: apt-get install wrk)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        sys.exit("no Docker engine answers (start one: scripts/docker_engine.sh)")

    # API_PORT empty: each replica gets a free host port instead of all wanting 8000.
    env = {**os.environ, "API_PORT": "", "LB_PORT": str(args.lb_port), "DEEPDRAW_BIND": "127.0.0.1"}
    env.setdefault("FRONTEND_PORT", "18501")
    if args.offline:  # no Docker Hub: local base image, wheelhouse and stand-in images first
        for script in ("scripts/docker_local_base.sh", "scripts/docker_standins.sh"):
            subprocess.run(["bash", script], cwd=REPO, check=True)
        env["WHEELHOUSE"] = "wheelhouse"
    env["PROMETHEUS_PORT"] = str(args.prometheus_port)
    return Compose(args.project, env, ["metrics"] if args.metrics else [])


def bring_up(compose: Compose, args: argparse.Namespace, lb: str, strokes: list) -> list[str]:
    """``up``, until every replica is healthy and the balancer answers; the replicas' container ids."""
    up = ["up", "-d", "--scale", f"api={args.replicas}"]
    if not args.no_build:
        up.append("--build")
    log(f"{' '.join(compose.cmd)} {' '.join(up)}")
    compose.run(*up, timeout=1800)
    took = wait_for(
        f"{args.replicas} healthy api replicas",
        lambda: len(ids := compose.ids("api")) == args.replicas and all(health(c) == "healthy" for c in ids),
        300,
    )
    replicas = compose.ids("api")
    log(f"{len(replicas)} api replicas healthy after {took:.0f}s: {', '.join(c[:12] for c in replicas)}")
    wait_for("the balancer", lambda: http("GET", f"{lb}/ready")[0] == 200, 60)
    status, raw = http("POST", f"{lb}/predict", {"strokes": strokes})
    top = [p["label"] for p in json.loads(raw)["predictions"][:5]] if status == 200 else raw[:200]
    log(f"POST {lb}/predict -> {status}, top 5 {top}")
    return replicas


def kill_one(victim: str, after: float) -> dict:
    """SIGKILL to ``victim``'s main process ``after`` seconds in; when its restart policy brings it back."""
    time.sleep(after)
    before = int(inspect(victim, "{{.RestartCount}}") or 0)
    pid = int(inspect(victim, "{{.State.Pid}}"))
    os.kill(pid, signal.SIGKILL)  # a crash, as far as Docker can tell
    killed = time.monotonic()
    events = {"killed": f"{victim[:12]} (SIGKILL to its pid {pid}) at t={after:.0f}s"}
    try:
        restarted = wait_for("restart", lambda: int(inspect(victim, "{{.RestartCount}}") or 0) > before, 60)
        events["restarted by policy after"] = f"{restarted:.1f}s (restart count {inspect(victim, '{{.RestartCount}}')})"
        wait_for("healthy again", lambda: health(victim) == "healthy", 120)
        events["healthy again after"] = f"{time.monotonic() - killed:.1f}s from the kill"
    except TimeoutError as e:
        events["not back"] = str(e)
    return events


def check_after(compose: Compose, args: argparse.Namespace, acked: list[int]) -> bool:
    """Prints what the stack holds after both runs; whether every acknowledged submission and replica is there."""
    found = stored_ids(compose, acked)
    missing = sorted(set(acked) - found)
    total = psql(compose, "SELECT count(*) FROM submissions").strip()
    print("== submissions")
    print(f"  acknowledged (201) during both runs: {len(acked)}; found in PostgreSQL by id: {len(found)}")
    print(f"  rows in PostgreSQL's submissions table: {total}; missing: {missing or 'none'}")
    print("== requests per replica (nginx access log, upstream address; retries list several)")
    for upstream, count in upstream_counts(compose).most_common():
        print(f"  {upstream}: {count}")
    if args.metrics:
        check_prometheus(args.prometheus_port, args.replicas)
    back = [c for c in compose.ids("api") if health(c) == "healthy"]
    print(f"== replicas healthy at the end: {len(back)} of {args.replicas}")
    return not missing and len(back) == args.replicas


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    compose = compose_for(args)
    lb = f"http://127.0.0.1:{args.lb_port}"
    strokes = cat_strokes()
    failed = False
    try:
        victim = bring_up(compose, args, lb, strokes)[0]
        with tempfile.TemporaryDirectory() as tmp:
            lua = wrk_script(Path(tmp) / "predict.lua", json.dumps({"strokes": strokes}).encode(), statuses=True)
            steady = run_load("steady: 3 replicas" if args.replicas == 3 else "steady", lb, args, lua, strokes)
            kill = functools.partial(kill_one, victim, args.duration / 4)
            failover = run_load("failover: one replica killed", lb, args, lua, strokes, during=kill)
        for result in (steady, failover):
            report(result)
        failed = not check_after(compose, args, steady["submissions"].acked + failover["submissions"].acked)
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as e:
        print(f"FAILED: {e}")
        print(compose.run("logs", "--no-color", "--tail=40", check=False, timeout=120))
        failed = True
    finally:
        if not args.keep:
            log("down -v")
            compose.run("down", "-v", "--remove-orphans", check=False, timeout=300)
    print("scale check:", "FAILED" if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
