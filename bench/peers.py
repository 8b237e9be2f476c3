"""Deep Draw against the ways a user would otherwise serve the shipped CNN, side by side in one run.

    make bench-peers            (or: .venv/bin/python bench/peers.py [--seconds 10] [--runs 3] [--only NAME ...])

Each server gets the same cores, the same real bitmap (a cat from tests/fixtures/pairs/cat.npy) and
the same client (wrk: 16 keep-alive connections, one thread), one server after another. A server
must answer "cat" before it is timed. For each: a warm-up, then ``--runs`` timed runs of
``--seconds``; the median run by req/s is shown with every run's req/s. Cold start is process start
to the first 200 from POST /predict; RSS is summed over the server's process tree after the runs.

The peers (bench/peer_apps/) run from throwaway virtualenvs under data/bench-peers/ with the
versions pinned below; the seed's TensorFlow app and the plain onnxruntime app use the project's
own venv (both already carry those libraries). A peer whose install fails is skipped with its
reason. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    REPO,
    NotReady,
    api_command,
    cat_body,
    cpu_seconds,
    free_port,
    rss_mb,
    running,
    tree,
    wrk,
    wrk_script,
)

APPS = REPO / "bench" / "peer_apps"
WORK = REPO / "data" / "bench-peers"
CONNECTIONS = 16
COLUMNS = ["server", "processes", "req/s (median run)", "req/s of each run", "p50 ms", "p99 ms", "errors"]
COLUMNS += ["CPU ms/req", "RSS MB", "cold start s", "load"]
BENTOML = "bentoml==1.4.40"
RAY = "ray[serve]==2.60.0"


class Skip(Exception):
    """A peer that cannot run here; the message says why."""


@dataclass
class Server:
    name: str
    processes: str
    command: list[str]
    cwd: Path = APPS
    env: dict[str, str] = field(default_factory=dict)
    path: str = "/predict"


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


# --- installs -----------------------------------------------------------------------------------


def project_pin(name: str) -> str:
    """The project's own pin of ``name`` (requirements/*.txt), so peers run the same onnxruntime/numpy."""
    for req in sorted((REPO / "requirements").glob("*.txt")):
        for line in req.read_text().splitlines():
            if line.split("==")[0].strip().lower() == name:
                return line.strip()
    raise SystemExit(f"{name} is not pinned in requirements/")


def venv(name: str, packages: list[str]) -> Path:
    """A throwaway virtualenv under data/bench-peers/ with ``packages``; reused while the pins match."""
    root = WORK / f"venv-{name}"
    stamp = root / "installed.txt"
    wanted = "\n".join(packages)
    if stamp.exists() and stamp.read_text() == wanted:
        return root / "bin"
    log = WORK / f"{name}-install.log"
    print(f"installing {' '.join(packages)} into {root.relative_to(REPO)} (log: {log.relative_to(REPO)})", flush=True)
    with log.open("w") as out:
        pip = str(root / "bin" / "pip")
        steps = [[sys.executable, "-m", "venv", "--clear", str(root)], [pip, "install", *packages]]
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                tail = [line for line in log.read_text().splitlines() if line.strip()][-1:]
                raise Skip(f"`{' '.join(step[-len(packages) :])}` failed: {' '.join(tail)}")
    stamp.write_text(wanted)
    return root / "bin"


def model_dir() -> Path:
    """The shipped CNN: the newest version under model_store/cnn/."""
    return sorted(p for p in (REPO / "model_store" / "cnn").iterdir() if (p / "card.json").exists())[-1]


def peer_env() -> dict[str, str]:
    return {"PEER_MODEL_DIR": str(model_dir()), "PYTHONPATH": str(APPS)}


# --- the servers: one function each ---------------------------------------------------------------


def seed_tensorflow(port: int) -> Server:
    """The seed's way: FastAPI + TensorFlow, ``model.predict`` per request (project venv: TensorFlow)."""
    uvicorn = [sys.executable, "-m", "uvicorn", "seed_tf:app", "--host", "127.0.0.1", "--port", str(port)]
    env = {**peer_env(), "PYTHONPATH": f"{APPS}{os.pathsep}{REPO}"}  # the Keras file needs training/'s layers
    return Server("FastAPI + TensorFlow `model.predict` (the seed)", "1", [*uvicorn, "--no-access-log"], env=env)


def plain_onnx(port: int, workers: int, tuned: bool = False) -> Server:
    """FastAPI, a sync route, a pydantic body, one onnxruntime session (project venv); ``tuned``: one
    intra-op thread per process, as onnxruntime advises for a tiny model with a process per core."""
    uvicorn = [sys.executable, "-m", "uvicorn", "plain_onnx:app", "--host", "127.0.0.1", "--port", str(port)]
    name = "FastAPI + onnxruntime" + (", 1 intra-op thread" if tuned else "")
    name += f", `uvicorn --workers {workers}`" if workers > 1 else ""
    env = peer_env() | ({"PEER_ORT_THREADS": "1"} if tuned else {})
    return Server(name, str(workers), [*uvicorn, "--workers", str(workers), "--no-access-log"], env=env)


def ceiling(port: int, workers: int) -> Server:
    """The ceiling (``ceiling_asgi.py``): a bare ASGI callable under uvicorn, nothing but the model call."""
    uvicorn = [sys.executable, "-m", "uvicorn", "ceiling_asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    name = "the ceiling: bare ASGI, `json`, onnxruntime (1 intra-op thread), no framework"
    name += f", `uvicorn --workers {workers}`" if workers > 1 else ""
    return Server(name, str(workers), [*uvicorn, "--workers", str(workers), "--no-access-log"], env=peer_env())


def granian_app(port: int, workers: int, app: str, name: str, env: dict[str, str], cwd: Path = APPS) -> Server:
    """An ASGI app under granian (Rust HTTP core, its own supervised workers), from the project venv."""
    command = [sys.executable, "-m", "granian", "--interface", "asgi", app, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    return Server(f"{name}, `granian --workers {workers}`", str(workers), command, cwd=cwd, env=env)


def gunicorn_app(port: int, workers: int, app: str, name: str, env: dict[str, str], cwd: Path = APPS) -> Server:
    """An ASGI app under gunicorn's supervisor with uvicorn workers, from the project venv."""
    command = [sys.executable, "-m", "gunicorn", app, "-k", "uvicorn.workers.UvicornWorker"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"]
    return Server(
        f"{name}, `gunicorn -k uvicorn.workers.UvicornWorker --workers {workers}`",
        str(workers),
        command,
        cwd=cwd,
        env=env,
    )


def bentoml(port: int, workers: int) -> Server:
    """BentoML (its own venv), the ONNX model in a minimal service, one worker per core."""
    bin_dir = venv("bentoml", [BENTOML, project_pin("onnxruntime"), project_pin("numpy")])
    where = ["--host", "127.0.0.1", "--port", str(port)]
    command = [str(bin_dir / "bentoml"), "serve", "bento_service:Classifier", *where]
    env = {**peer_env(), "PEER_WORKERS": str(workers), "BENTOML_HOME": str(WORK / "bentoml-home")}
    env["BENTOML_DO_NOT_TRACK"] = "true"  # no usage reports leave the machine
    return Server(f"BentoML {BENTOML.split('==')[1]} (ONNX), {workers} workers", f"{workers}+", command, env=env)


def ray_serve(port: int, workers: int) -> Server:
    """Ray Serve (its own venv): a local Ray on loopback, one replica per core behind Serve's proxy."""
    bin_dir = venv("ray", [RAY, project_pin("onnxruntime"), project_pin("numpy")])
    tmp = Path("/tmp") / f"ray-bench-peers-{os.getpid()}"  # Ray's socket paths must stay short
    env = {**peer_env(), "PEER_WORKERS": str(workers), "PEER_RAY_TMP": str(tmp), "RAY_USAGE_STATS_ENABLED": "0"}
    command = [str(bin_dir / "python"), str(APPS / "ray_app.py"), str(port)]
    return Server(f"Ray Serve {RAY.split('==')[1]} (ONNX), {workers} replicas", f"{workers}+", command, env=env)


def deep_draw(port: int, workers: int | None) -> Server:
    """Deep Draw itself: ``uvicorn api.main:app`` (one process) or ``python -m api.serve`` (workers)."""
    if workers is None:
        name, procs = "**Deep Draw**, `uvicorn api.main:app`", "1"
        command = api_command(port, None, "--no-access-log")
    else:
        name, procs = f"**Deep Draw**, `python -m api.serve --workers {workers}`", str(workers)
        command = api_command(port, workers, "--log-level", "warning")
    return Server(name, procs, command, cwd=REPO, env=deep_draw_env())


def deep_draw_env() -> dict[str, str]:
    store = WORK / "model_store"  # the CNN alone, as the peers serve it
    store.mkdir(parents=True, exist_ok=True)
    if not (store / "cnn").exists():
        (store / "cnn").symlink_to(REPO / "model_store" / "cnn")
    # Access logs off, as for every server in the bench.
    return {"MODEL_STORE": str(store), "DATABASE_URL": f"sqlite:///{WORK / 'submissions.db'}", "ACCESS_LOG": "false"}


def servers(cores: int) -> dict[str, Callable[[int], Server]]:
    return {
        "seed": seed_tensorflow,
        "plain": lambda port: plain_onnx(port, 1),
        "plain-workers": lambda port: plain_onnx(port, cores),
        "plain-tuned-one": lambda port: plain_onnx(port, 1, tuned=True),
        "plain-tuned": lambda port: plain_onnx(port, cores, tuned=True),
        "plain-granian": lambda port: granian_app(
            port,
            cores,
            "plain_onnx:app",
            "FastAPI + onnxruntime, 1 intra-op thread",
            peer_env() | {"PEER_ORT_THREADS": "1"},
        ),
        "ceiling-one": lambda port: ceiling(port, 1),
        "ceiling": lambda port: ceiling(port, cores),
        "bentoml": lambda port: bentoml(port, cores),
        "ray": lambda port: ray_serve(port, cores),
        "deepdraw": lambda port: deep_draw(port, None),
        "deepdraw-serve": lambda port: deep_draw(port, cores),
        "deepdraw-granian": lambda port: granian_app(
            port, cores, "api.main:app", "**Deep Draw**", deep_draw_env(), cwd=REPO
        ),
        "deepdraw-gunicorn": lambda port: gunicorn_app(
            port, cores, "api.main:app", "**Deep Draw**", deep_draw_env(), cwd=REPO
        ),
    }


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
    ours = results.get("deepdraw-serve")
    peers = [r for key, r in results.items() if not key.startswith(("deepdraw", "ceiling"))]
    if ours is None or not peers:
        return "Ratio: needs `deepdraw-serve` and at least one peer."
    best = max(peers, key=lambda r: r.median["rps"])
    rps = ours.median["rps"] / best.median["rps"]
    p99 = ours.median["p99_us"] / best.median["p99_us"]
    lines = [
        f"Deep Draw (api.serve) / best peer ({best.server.name}): throughput {rps:.2f}x "
        f"({ours.median['rps']:,.0f} / {best.median['rps']:,.0f} req/s), p99 {p99:.2f}x "
        f"({ours.median['p99_us'] / 1000:.1f} / {best.median['p99_us'] / 1000:.1f} ms), "
        f"CPU per request {ours.cpu_ms / best.cpu_ms:.2f}x ({ours.cpu_ms:.2f} / {best.cpu_ms:.2f} ms). "
        f"Goal: throughput >= 2x at p99 <= 1x -> {'met' if rps >= 2 and p99 <= 1 else 'not met'}."
    ]
    top = results.get("ceiling")
    if top is not None:
        lines.append(
            f"The ceiling (bare ASGI, {top.server.processes} processes) / best peer: "
            f"{top.median['rps'] / best.median['rps']:.2f}x; Deep Draw reaches "
            f"{ours.median['rps'] / top.median['rps']:.0%} of the ceiling's req/s."
        )
    return "\n\n".join(lines)


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
