"""The servers bench/peers.py runs: each the way a user would serve the shipped CNN, one function each.

The peer apps live in bench/peer_apps/; BentoML and Ray run from throwaway virtualenvs under
data/bench-peers/ with the versions pinned here, the others from the project's own venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import REPO, api_command

APPS = REPO / "bench" / "peer_apps"
WORK = REPO / "data" / "bench-peers"
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
