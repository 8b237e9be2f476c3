"""deploy/: the Kubernetes manifests render and validate against the Kubernetes schemas, and say
what they must (probes, limits, non-root, read-only root with writable emptyDirs, the database
Secret, TF_CONFIG per training worker); the Cloud Run specs hold valid pod specs; the scale
Compose file and its nginx config are consistent."""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.utils.fixtures import REPO
from tests.utils.k8s_render import render

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# GKE's stable channel and most managed clusters are at least here; every object must validate.
K8S_VERSION = "1.33.0"
KUSTOMIZATIONS = ["base", "overlays/example", "training"]
KUBECTL = shutil.which("kubectl")


def kubectl_kustomize(folder: Path) -> list[dict]:
    out = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=60)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def rendered(name: str) -> list[dict]:
    """kubectl's rendering where kubectl is installed, the Python one (tests/utils/k8s_render.py) elsewhere."""
    return kubectl_kustomize(K8S / name) if KUBECTL else render(K8S / name)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, name: str) -> dict:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_object_validates_against_the_kubernetes_schemas(name):
    objects = rendered(name)
    assert objects, f"{name} renders nothing"
    for obj in objects:
        # strict: a misspelt or misplaced field is an error, not silently ignored
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.skipif(not KUBECTL, reason="kubectl is not installed: only the Python rendering is checked")
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_python_rendering_equals_kubectl_kustomize(name):
    ours = sorted(render(K8S / name), key=key)
    theirs = sorted(kubectl_kustomize(K8S / name), key=key)
    assert [key(o) for o in ours] == [key(o) for o in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a == b, key(a)


def test_example_overlay_namespaces_images_and_scales():
    objects = rendered("overlays/example")
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"deepdraw"}
    assert one(objects, "Namespace", "deepdraw")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    images = {c["image"] for d in by_kind(objects, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {
        "europe-west1-docker.pkg.dev/my-project/deepdraw/deepdraw-api:0.1.0",
        "europe-west1-docker.pkg.dev/my-project/deepdraw/deepdraw-frontend:0.1.0",
    }
    assert one(objects, "Deployment", "deepdraw-api")["spec"]["replicas"] == 3
    hpa = one(objects, "HorizontalPodAutoscaler", "deepdraw-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    ingress = one(objects, "Ingress", "deepdraw")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert {r["host"] for r in ingress["rules"]} == set(ingress["tls"][0]["hosts"])


def pod_of(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def test_api_deployment_probes_resources_and_database_secret():
    objects = rendered("base")
    api = one(objects, "Deployment", "deepdraw-api")
    (container,) = pod_of(api)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "deepdraw-db", "key": "database-url"}
    # No credentials in the repository: the Secret is created by hand (deploy/README.md).
    for name in KUSTOMIZATIONS:
        assert not by_kind(rendered(name), "Secret"), name


@pytest.mark.parametrize("name", ["deepdraw-api", "deepdraw-frontend"])
def test_pods_run_non_root_on_a_read_only_root_with_emptydirs_for_writes(name):
    deployment = one(rendered("base"), "Deployment", name)
    pod = pod_of(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the `app` user the Dockerfiles create
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts
    assert all("emptyDir" in volumes[v] for v in mounts.values())
    # Every directory the process is told to write to is one of the emptyDirs.
    env = {e["name"]: e.get("value") for e in container["env"]}
    for var in ("PROMETHEUS_MULTIPROC_DIR", "TMPDIR", "HOME"):
        if var in env:
            assert env[var] in mounts, f"{var}={env[var]} is not writable"
    # Labels select this Deployment's own pods and nothing else.
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_services_hpa_ingress_and_frontend_point_at_what_exists():
    objects = rendered("base")
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    for name, service in services.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        (container,) = pod_of(deployments[name])["containers"]
        port_names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, name
    hpa = one(objects, "HorizontalPodAutoscaler", "deepdraw-api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "deepdraw-api"}
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "replicas" not in hpa  # sanity: the Deployment's replicas are only the starting point
    backends = {
        path["backend"]["service"]["name"]
        for rule in one(objects, "Ingress", "deepdraw")["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == set(services)
    (frontend,) = pod_of(deployments["deepdraw-frontend"])["containers"]
    api_url = {e["name"]: e.get("value") for e in frontend["env"]}["API_URL"]
    assert api_url == "http://deepdraw-api"  # the Service's port 80
    assert services["deepdraw-api"]["spec"]["ports"][0]["port"] == 80
    pdb = one(objects, "PodDisruptionBudget", "deepdraw-api")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels(deployments["deepdraw-api"]).items()


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


# ---------------------------------------------------------------- multi-worker training Job


def test_training_job_is_indexed_with_a_headless_service_for_worker_names():
    objects = rendered("training")
    job = one(objects, "Job", "deepdraw-train")
    service = one(objects, "Service", "deepdraw-train")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (worker,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(env["WORKERS"])
    assert env["JOB_NAME"] == job["metadata"]["name"]
    # Pod DNS names <job>-<index>.<subdomain> exist only through a headless Service of that name.
    assert pod["subdomain"] == env["WORKERS_SERVICE"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]}
    assert {p["containerPort"] for p in worker["ports"]} == {int(env["WORKER_PORT"])}
    assert env["DATA_DIR"].startswith("gs://")
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount", "deepdraw-train")["metadata"]["name"]
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert env["HOME"] in {m["mountPath"] for m in worker["volumeMounts"]}


def test_training_job_gives_each_worker_its_tf_config(tmp_path):
    """Runs the Job's own shell script for each index, with `python` on PATH standing in for the
    training entry point (it records its environment and arguments instead of training)."""
    job = one(rendered("training"), "Job", "deepdraw-train")
    (worker,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in worker["env"] if "value" in e}
    record = tmp_path / "python"
    record.write_text('#!/bin/sh\nprintf \'{"tf_config": %s, "argv": "%s"}\\n\' "$TF_CONFIG" "$*" > "$RECORD"\n')
    record.chmod(0o755)
    workers = int(env["WORKERS"])
    names = [f"deepdraw-train-{i}.deepdraw-train:2222" for i in range(workers)]
    for index in range(workers):
        out = tmp_path / f"worker{index}.json"
        run_env = {**env, "JOB_COMPLETION_INDEX": str(index), "PATH": f"{tmp_path}:/usr/bin:/bin", "RECORD": str(out)}
        subprocess.run([*worker["command"], *worker["args"]], env=run_env, check=True, capture_output=True, timeout=30)
        seen = json.loads(out.read_text())
        assert seen["tf_config"] == {"cluster": {"worker": names}, "task": {"type": "worker", "index": index}}
        command = f"-m training.train cnn --data-dir {env['DATA_DIR']} --output-dir {env['OUTPUT_DIR']}"
        assert seen["argv"] == f"{command} --epochs {env['EPOCHS']}"


# ---------------------------------------------------------------- Cloud Run

CLOUD_RUN_VALUES = {
    "PROJECT_ID": "my-project",
    "REGION": "europe-west1",
    "TAG": "0.1.0",
    "API_URL": "https://deepdraw-api-abc123-ew.a.run.app",
}


def cloud_run(name: str) -> tuple[dict, set[str]]:
    """The spec with its ${...} placeholders filled as envsubst would, and the placeholders it has."""
    text = (DEPLOY / "cloudrun" / f"{name}.yaml").read_text()
    placeholders = {m["braced"] for m in string.Template.pattern.finditer(text) if m["braced"]}
    assert not [m for m in string.Template.pattern.finditer(text) if m["named"]], "use ${NAME} placeholders"
    return yaml.safe_load(string.Template(text).substitute(CLOUD_RUN_VALUES)), placeholders


@pytest.mark.parametrize(
    ("name", "port", "needs"),
    [("api", 8000, {"PROJECT_ID", "REGION", "TAG"}), ("frontend", 8501, {"PROJECT_ID", "REGION", "TAG", "API_URL"})],
)
def test_cloud_run_services_hold_valid_pod_specs(name, port, needs):
    service, placeholders = cloud_run(name)
    assert placeholders == needs
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")
    assert service["metadata"]["name"] == f"deepdraw-{name}"
    template = service["spec"]["template"]
    assert all(isinstance(v, str) for v in template["metadata"]["annotations"].values())
    spec = dict(template["spec"])
    # The two Knative fields a pod spec lacks, within Cloud Run's documented ranges.
    assert 1 <= spec.pop("containerConcurrency") <= 1000
    assert 1 <= spec.pop("timeoutSeconds") <= 3600
    # The rest is a Kubernetes PodSpec (Knative's RevisionSpec inlines it): validate it as one.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"deepdraw-{name}"}, "spec": spec}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    (container,) = spec["containers"]
    assert container["image"] == f"europe-west1-docker.pkg.dev/my-project/deepdraw/deepdraw-{name}:0.1.0"
    assert container["ports"] == [{"name": "http1", "containerPort": port}]
    assert service["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_cloud_run_api_reads_the_database_from_secret_manager_and_cloud_sql():
    service, _ = cloud_run("api")
    template = service["spec"]["template"]
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "deepdraw-database-url", "key": "latest"}
    assert template["metadata"]["annotations"]["run.googleapis.com/cloudsql-instances"] == (
        "my-project:europe-west1:deepdraw-db"
    )
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    frontend, _ = cloud_run("frontend")
    (app,) = frontend["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e["value"] for e in app["env"]}["API_URL"] == CLOUD_RUN_VALUES["API_URL"]


# ---------------------------------------------------------------- scale Compose file


def test_scale_compose_file_fits_the_main_one():
    main = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    scale = yaml.safe_load((DEPLOY / "compose.scale.yml").read_text())
    assert set(scale["services"]) >= {"db", "api", "lb", "frontend"}
    assert set(main["services"]) <= set(scale["services"])  # overrides, adds: never a second api
    api = scale["services"]["api"]
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://deepdraw:")
    assert api["environment"]["DATABASE_URL"].endswith("@db:5432/deepdraw")
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["restart"] == "always"
    assert scale["services"]["frontend"]["environment"]["API_URL"] == "http://lb:80"
    # With API_PORT empty each replica gets its own free host port; the default stays 8000.
    assert main["services"]["api"]["ports"] == ["${DEEPDRAW_BIND:-127.0.0.1}:${API_PORT-8000}:8000"]
    for service in scale["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).is_file(), source  # paths are relative to the main file's folder
    assert "metrics" in scale["services"]["prometheus"]["profiles"]


def test_nginx_config_balances_the_api_with_timeouts():
    conf = (DEPLOY / "nginx" / "deepdraw.conf").read_text()
    directives = {}
    for line in conf.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            directives.setdefault(name, []).append(value.strip())
    assert directives["server"] == ["api:8000 max_fails=1 fail_timeout=3s"]
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        assert directives[timeout] == ["10s"] or directives[timeout] == ["15s"], timeout
    assert set(directives["proxy_pass"]) == {"http://deepdraw_api"}
    # Retrying a request already sent is allowed only where nothing is stored.
    retries = [v for v in directives["proxy_next_upstream"] if "non_idempotent" in v]
    assert len(retries) == 1
    assert "location ~ ^/predict(/batch)?$ {" in conf


def compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_compose_merges_the_two_files():
    """Compose's own reading of the two files together (needs no engine, only the Compose CLI)."""
    base = compose_cli()
    if base is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    out = subprocess.run(
        [*base, "-f", "docker-compose.yml", "-f", "deploy/compose.scale.yml", "config"],
        cwd=REPO,
        env={**os.environ, "API_PORT": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    merged = yaml.safe_load(out.stdout)
    api = merged["services"]["api"]
    assert api["environment"]["WORKERS"] == "1"
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    # Published on a free port per replica, never a fixed one that only one replica could take.
    (port,) = api["ports"]
    published = port.get("published") if isinstance(port, dict) else port.split(":")[-2]
    assert published in (None, "", 0)
    assert merged["services"]["frontend"]["environment"]["API_URL"] == "http://lb:80"


def _make_plan(target: str, **variables: str) -> str:
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(["make", "-n", target, *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(("variables", "address"), [({}, "127.0.0.1"), ({"FRONTEND_HOST": "0.0.0.0"}, "0.0.0.0")])
def test_make_demo_serves_the_app_on_this_machine_only_unless_opened(variables, address):
    # The app relays teach, delete and submit: it listens where the API does, unless FRONTEND_HOST says otherwise.
    for target in ("demo", "frontend"):
        plan = _make_plan(target, **variables)
        assert f"--server.address {address} " in plan, plan


@pytest.mark.parametrize(
    ("variables", "listen", "app", "api"),
    [
        ({}, "127.0.0.1", "http://127.0.0.1:8501", "http://127.0.0.1:8000"),
        ({"FRONTEND_PORT": "8611", "API_PORT": "8610"}, "127.0.0.1", "http://127.0.0.1:8611", "http://127.0.0.1:8610"),
        ({"PUBLIC_HOST": "192.168.1.20"}, "0.0.0.0", "http://192.168.1.20:8501", "http://192.168.1.20:8000"),
    ],
)
def test_make_demo_lets_the_players_browser_ask_the_api_on_any_port_or_address(variables, listen, app, api):
    """The live guesses go from the browser to the API: the API must allow the app's origin, and
    the browser must be given an address it can reach."""
    plan = _make_plan("demo", **variables)
    origins = json.loads(re.search(r"CORS_ORIGINS='(\[.*?\])'", plan).group(1))
    assert app in origins, plan
    assert f"PUBLIC_API_URL={api} " in plan, plan
    assert f"--host {listen} " in plan and f"--server.address {listen} " in plan, plan
