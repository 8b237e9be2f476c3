"""The docker compose demo end to end, against a real Docker engine (marked ``docker``).

Builds both images (one at a time), ``up -d``, waits for both healthchecks, then: a real Quick,
Draw! cat from the fixtures is in /predict's top 5 (answer checked against the API's own response
schema), the Streamlit page is served, frontend/app.py runs inside its container against the api
container, and a stored submission survives an api restart and a new api container (the named
volume). ``down -v`` at the end, also on failure. Talks to 127.0.0.1 only.

Runs where an engine answers and DEEPDRAW_DOCKER_TESTS=1 (scripts/compose_smoke.sh sets it):
building the images takes minutes, too long for every ``make test``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from api.routes.submissions import Submission
from api.schemas import PredictResponse
from tests.utils.fixtures import REPO, load_pairs
from tests.utils.servers import free_port

pytestmark = pytest.mark.docker

TIMEOUT = float(os.environ.get("SMOKE_TIMEOUT", "240"))  # seconds per wait


def _engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


if not _engine_answers():
    pytest.skip("no Docker engine answers `docker info` (start one: scripts/docker_engine.sh)", allow_module_level=True)
if os.environ.get("DEEPDRAW_DOCKER_TESTS") != "1":
    pytest.skip(
        "builds and runs the Compose demo (minutes): run scripts/compose_smoke.sh, or set DEEPDRAW_DOCKER_TESTS=1",
        allow_module_level=True,
    )


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither 'docker compose' nor 'docker-compose' is installed")


@dataclass
class Stack:
    command: list[str]
    env: dict[str, str]
    api: str
    app: str

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [*self.command, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def container(self, service: str) -> str:
        ids = self.run("ps", "-q", service).stdout.split()
        assert ids, f"no {service} container"
        return ids[0]

    def wait_healthy(self, service: str) -> float:
        start, status = time.monotonic(), ""
        while time.monotonic() - start < TIMEOUT:
            ids = self.run("ps", "-q", service, check=False).stdout.split()
            if ids:
                fmt = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
                status = subprocess.run(["docker", "inspect", "-f", fmt, ids[0]], capture_output=True, text=True).stdout
                if status.strip() == "healthy":
                    return time.monotonic() - start
            time.sleep(2)
        pytest.fail(f"{service} not healthy within {TIMEOUT:.0f}s (last status: {status.strip() or 'no container'})")


def offline_wheelhouse() -> str | None:
    """./wheelhouse when scripts/docker_local_base.sh filled it for the current requirements."""
    stamp = REPO / "wheelhouse" / ".requirements.sha256"
    if not stamp.exists():
        return None
    import hashlib

    files = ("requirements/core.txt", "requirements/api.txt", "requirements/frontend.txt")
    digest = hashlib.sha256(b"".join((REPO / f).read_bytes() for f in files)).hexdigest()
    if stamp.read_text().strip() == digest:
        return "wheelhouse"
    print("./wheelhouse is older than requirements/ (ignored): refresh it with scripts/compose_smoke.sh --offline")
    return None


@pytest.fixture(scope="module")
def stack(request) -> Iterator[Stack]:
    env = {
        **os.environ,
        "API_PORT": os.environ.get("API_PORT") or str(free_port()),
        "FRONTEND_PORT": os.environ.get("FRONTEND_PORT") or str(free_port()),
        "DEEPDRAW_BIND": "127.0.0.1",
        "COMPOSE_PROJECT_NAME": os.environ.get("COMPOSE_PROJECT_NAME", "deepdrawsmoke"),
    }
    if not env.get("WHEELHOUSE") and (wheelhouse := offline_wheelhouse()):
        env["WHEELHOUSE"] = wheelhouse  # offline: pip --no-index from ./wheelhouse
    stack = Stack(
        compose_command(), env, f"http://127.0.0.1:{env['API_PORT']}", f"http://127.0.0.1:{env['FRONTEND_PORT']}"
    )
    for service in ("api", "frontend"):  # one build at a time: a small machine
        started = time.monotonic()
        stack.run("build", service, timeout=1800)
        print(f"built {service} in {time.monotonic() - started:.0f}s (pip from {env.get('WHEELHOUSE') or 'PyPI'})")
    try:
        stack.run("up", "-d")
        for service in ("api", "frontend"):
            print(f"{service} healthy after {stack.wait_healthy(service):.0f}s")
        yield stack
    finally:
        if request.session.testsfailed:
            print(stack.run("logs", "--no-color", "--tail=60", check=False).stdout)
        stack.run("down", "-v", "--remove-orphans", check=False, timeout=120)


@pytest.fixture(scope="module")
def cat() -> list:
    """Line 0 of the real cat fixture (tests/fixtures/pairs, see ATTRIBUTION.md)."""
    _, simplified, _ = load_pairs("cat")
    assert simplified[0]["word"] == "cat"
    return simplified[0]["drawing"]


def test_predict_finds_the_cat(stack, cat):
    r = httpx.post(f"{stack.api}/predict", json={"strokes": cat}, timeout=30)
    assert r.status_code == 200, r.text
    answer = PredictResponse.model_validate(r.json())
    top5 = [p.label for p in answer.predictions[:5]]
    assert "cat" in top5, f"{top5} (model {answer.model.name} {answer.model.version})"


def test_streamlit_page_is_served(stack):
    r = httpx.get(f"{stack.app}/", timeout=30)
    assert r.status_code == 200
    assert "<html" in r.text.lower()


def test_app_script_runs_in_its_container_against_the_api(stack):
    """The page above is Streamlit's static shell: run frontend/app.py itself inside the frontend
    container, against the api container, with Streamlit's headless test runner."""
    script = """
import json
from streamlit.testing.v1 import AppTest

at = AppTest.from_file("frontend/app.py", default_timeout=60).run()
print(json.dumps({
    "problems": [f"exception: {e.value}" for e in at.exception] + [f"error: {e.value}" for e in at.error],
    "elements": len(at.main),
}))
"""
    out = stack.run("exec", "-T", "frontend", "python", "-c", script, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["problems"] == []
    assert result["elements"] > 0


def test_submission_survives_restart_and_a_new_container(stack, cat):
    body = {"label": "cat", "strokes": cat, "canvas": {"width": 256, "height": 256}}
    r = httpx.post(f"{stack.api}/submissions", json=body, timeout=30)
    assert r.status_code == 201, r.text
    stored = Submission.model_validate(r.json())

    def still_there(after: str) -> None:
        got = httpx.get(f"{stack.api}/submissions/{stored.id}", timeout=30)
        assert got.status_code == 200, f"submission {stored.id} after {after}: {got.status_code} {got.text[:200]}"
        assert Submission.model_validate(got.json()).strokes == stored.strokes

    stack.run("restart", "api", timeout=120)
    time.sleep(3)  # let the old health status clear
    stack.wait_healthy("api")
    still_there("an api restart")

    # A restart keeps the container; a new container proves the database is on the named volume.
    mounts = json.loads(
        subprocess.run(
            ["docker", "inspect", "-f", "{{json .Mounts}}", stack.container("api")], capture_output=True, text=True
        ).stdout
    )
    data = [m for m in mounts if m["Destination"] == "/app/data"]
    assert data and data[0]["Type"] == "volume" and data[0]["Name"], mounts
    stack.run("up", "-d", "--force-recreate", "--no-deps", "api", timeout=120)
    time.sleep(3)
    stack.wait_healthy("api")
    still_there("recreating the api container")
