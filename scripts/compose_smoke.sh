#!/usr/bin/env bash
# End-to-end check of the docker compose demo, against a real Docker engine:
#   build both images (one at a time), `up -d`, wait for both healthchecks, POST a real
#   Quick, Draw! cat to /predict ("cat" must be in the top 5), GET the Streamlit page, run
#   frontend/app.py inside its container against the api (Streamlit AppTest), POST a submission,
#   restart the api and check the submission survived, recreate the api container and check again
#   (the named volume), print the image sizes, then `down -v` (also on failure).
#
# Usage: bash scripts/compose_smoke.sh [--offline]
#   --offline   first run scripts/docker_local_base.sh (local python base image + ./wheelhouse)
#               for machines that cannot pull from Docker Hub.
# Env: API_PORT (8000), FRONTEND_PORT (8501), SMOKE_TIMEOUT (seconds per wait, 240),
#      WHEELHOUSE (set automatically to `wheelhouse` when ./wheelhouse is complete).
# Prints PASS/FAIL lines; exits non-zero on the first failure. Talks to 127.0.0.1 only.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
export API_PORT="${API_PORT:-8000}"
export FRONTEND_PORT="${FRONTEND_PORT:-8501}"
export DEEPDRAW_BIND=127.0.0.1
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-deepdrawsmoke}"
TIMEOUT="${SMOKE_TIMEOUT:-240}"
API="http://127.0.0.1:${API_PORT}"
APP="http://127.0.0.1:${FRONTEND_PORT}"
FAILED=0
STARTED=0

pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    FAILED=1
    exit 1
}
info() { echo "---- $*"; }

cleanup() {
    local rc=$?
    if [ "$STARTED" = 1 ]; then
        if [ "$FAILED" = 1 ] || [ "$rc" != 0 ]; then
            info "container logs (last 60 lines each)"
            "${COMPOSE[@]}" logs --no-color --tail=60 2>&1 || true
        fi
        info "docker compose down -v"
        timeout 120 "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || echo "WARN: down -v failed"
    fi
    if [ "$rc" = 0 ] && [ "$FAILED" = 0 ]; then
        echo "compose smoke: all checks passed"
    else
        echo "compose smoke: FAILED"
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- engine, compose, base
docker info >/dev/null 2>&1 || fail "no Docker engine answers (start one, e.g. scripts/docker_engine.sh)"
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
else
    fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
pass "engine $(docker version --format '{{.Server.Version}}' 2>/dev/null), compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null | head -n1))"

if [ "${1:-}" = "--offline" ]; then
    bash scripts/docker_local_base.sh || fail "scripts/docker_local_base.sh"
fi
if [ -z "${WHEELHOUSE:-}" ] && [ -f wheelhouse/.requirements.sha256 ]; then
    # Same digest as scripts/docker_local_base.sh writes: a stale wheelhouse would fail `pip --no-index`.
    digest=$(cat requirements/core.txt requirements/api.txt requirements/frontend.txt | sha256sum | cut -d' ' -f1)
    if [ "$(cat wheelhouse/.requirements.sha256)" = "$digest" ]; then
        export WHEELHOUSE=wheelhouse
    else
        info "./wheelhouse is older than requirements/ (ignored): refresh it with --offline or scripts/docker_local_base.sh"
    fi
fi
if [ -n "${WHEELHOUSE:-}" ]; then info "pip source for the images: ./$WHEELHOUSE (offline)"; else info "pip source for the images: PyPI"; fi

for port in "$API_PORT" "$FRONTEND_PORT"; do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(0 if s.connect_ex(('127.0.0.1', $port)) == 0 else 1)"; then
        fail "port $port on 127.0.0.1 is already in use (set API_PORT / FRONTEND_PORT)"
    fi
done

# ---------------------------------------------------------------- build and start
for svc in api frontend; do   # one build at a time: a small machine
    info "building $svc"
    start=$(date +%s)
    if ! timeout 1800 "${COMPOSE[@]}" build "$svc" >"/tmp/compose_smoke_build_$svc.log" 2>&1; then
        tail -n 40 "/tmp/compose_smoke_build_$svc.log"
        fail "build $svc (full log: /tmp/compose_smoke_build_$svc.log)"
    fi
    pass "build $svc ($(($(date +%s) - start))s)"
done

STARTED=1
timeout 300 "${COMPOSE[@]}" up -d >/tmp/compose_smoke_up.log 2>&1 || { cat /tmp/compose_smoke_up.log; fail "compose up -d"; }
pass "compose up -d"

wait_healthy() {
    local svc=$1 cid status="" t=0
    while [ "$t" -lt "$TIMEOUT" ]; do
        cid=$("${COMPOSE[@]}" ps -q "$svc" 2>/dev/null | head -n1)
        if [ -n "$cid" ]; then
            status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$cid" 2>/dev/null)
            [ "$status" = healthy ] && { pass "$svc healthy after ${t}s"; return 0; }
        fi
        sleep 2
        t=$((t + 2))
    done
    fail "$svc not healthy within ${TIMEOUT}s (last status: ${status:-no container})"
}
wait_healthy api
wait_healthy frontend

# ---------------------------------------------------------------- HTTP checks (python3 stdlib)
# One real Quick, Draw! cat: tests/fixtures/pairs/cat.simplified.ndjson.gz line 0 (the same drawing
# is embedded below in case the fixture is missing).
export SMOKE_API="$API" SMOKE_APP="$APP"
http_check() {
    python3 - "$@" <<'PY'
import gzip, json, os, sys, urllib.error, urllib.request

API, APP = os.environ["SMOKE_API"], os.environ["SMOKE_APP"]
CAT = [[[130,113,99,109,76,64,55,48,48,51,59,86,133,154,170,203,214,217,215,208,186,176,162,157,132],
        [72,40,27,79,82,88,100,120,134,152,165,184,189,186,179,152,131,114,100,89,76,0,31,65,70]],
       [[76,28,7],[136,128,128]], [[76,23,0],[160,164,175]], [[87,52,37],[175,191,204]],
       [[174,220,246,251],[134,132,136,139]], [[175,255],[147,168]], [[171,208,215],[164,198,210]],
       [[130,110,108,111,130,139,139,119],[129,134,137,144,148,144,136,130]], [[107,106],[96,113]]]


def cat_strokes():
    """Line 0 of the real Quick, Draw! fixture (same drawing as the embedded copy)."""
    path = "tests/fixtures/pairs/cat.simplified.ndjson.gz"
    try:
        with gzip.open(path, "rt") as f:
            row = json.loads(f.readline())
        if row.get("word") == "cat" and row.get("drawing"):
            return row["drawing"], f"{path} line 0"
    except (OSError, ValueError):
        pass
    return CAT, "embedded cat (cat.simplified.ndjson.gz line 0)"


def call(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def labels(preds):
    out = []
    for p in preds:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, dict):
            out.append(next((p[k] for k in ("label", "category", "name", "class") if k in p), None))
        elif isinstance(p, (list, tuple)) and p:
            out.append(p[0])
    return out


def holds_id(obj, wanted):
    if isinstance(obj, dict):
        return obj.get("id") == wanted or any(holds_id(v, wanted) for v in obj.values())
    if isinstance(obj, list):
        return any(holds_id(v, wanted) for v in obj)
    return False


def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        sys.exit(1)


step = sys.argv[1]
strokes, source = cat_strokes()
if step == "predict":
    status, raw = call("POST", f"{API}/predict", {"strokes": strokes})
    check(status == 200, f"POST /predict -> {status} ({source})")
    body = json.loads(raw)
    preds = body.get("predictions") if isinstance(body, dict) else None
    ok = isinstance(preds, list) and bool(preds)
    check(ok, "/predict answer has a predictions list" + ("" if ok else f": {str(body)[:300]}"))
    top5 = labels(preds)[:5]
    model = body.get("model") if isinstance(body.get("model"), dict) else {}
    check("cat" in top5, f"'cat' in the top 5 of {len(preds)} predictions: {top5} (model {model.get('name', '?')} {model.get('version', '')})")
elif step == "page":
    status, raw = call("GET", f"{APP}/")
    check(status == 200 and b"<html" in raw.lower(), f"GET Streamlit page {APP}/ -> {status}, {len(raw)} bytes")
elif step == "submit":
    body = {"label": "cat", "strokes": strokes, "canvas": {"width": 400, "height": 400}}
    status, raw = call("POST", f"{API}/submissions", body)
    answer = json.loads(raw) if raw else {}
    ok = status == 201 and isinstance(answer, dict) and "id" in answer
    shown = f"id {answer['id']!r}" if ok else str(answer)[:300]
    check(ok, f"POST /submissions -> {status}, {shown}")
    with open(sys.argv[2], "w") as f:
        json.dump(answer["id"], f)
elif step == "persisted":
    with open(sys.argv[2]) as f:
        wanted = json.load(f)
    status, raw = call("GET", f"{API}/submissions?label=cat")
    check(status == 200, f"GET /submissions?label=cat -> {status}")
    after = sys.argv[3] if len(sys.argv) > 3 else "the api restart"
    check(holds_id(json.loads(raw), wanted), f"submission id {wanted!r} still there after {after}")
PY
}

ID_FILE=$(mktemp)
http_check predict || fail "predict"
http_check page || fail "frontend page"
# The page above is Streamlit's static shell; run the app script itself inside the frontend
# container, against the api container, with Streamlit's own headless test runner.
apptest=$(timeout 120 "${COMPOSE[@]}" exec -T frontend python - <<'PY' 2>/dev/null
from streamlit.testing.v1 import AppTest

at = AppTest.from_file("frontend/app.py", default_timeout=60).run()
problems = [f"exception: {e.value}" for e in at.exception] + [f"error: {e.value}" for e in at.error]
print("; ".join(problems) if problems else f"OK ({len(at.main)} elements, api {at.sidebar.caption[0].value if at.sidebar.caption else '?'})")
PY
)
case "$apptest" in
    OK*) pass "frontend/app.py runs in the container: $apptest" ;;
    *) fail "frontend/app.py in the container (Streamlit AppTest): ${apptest:-no output}" ;;
esac
http_check submit "$ID_FILE" || fail "submission"

info "docker compose restart api"
timeout 120 "${COMPOSE[@]}" restart api >/dev/null 2>&1 || fail "compose restart api"
sleep 3   # let the old health status clear
wait_healthy api
http_check persisted "$ID_FILE" || fail "submission persisted"

# A restart keeps the container; a new container proves the database is on the named volume.
mount=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/app/data"}}{{.Type}}:{{.Name}}{{end}}{{end}}' \
    "$("${COMPOSE[@]}" ps -q api | head -n1)")
case "$mount" in volume:?*) pass "/app/data is the named volume ${mount#volume:}" ;; *) fail "/app/data is not a named volume ($mount)" ;; esac
info "docker compose up -d --force-recreate --no-deps api"
timeout 120 "${COMPOSE[@]}" up -d --force-recreate --no-deps api >/dev/null 2>&1 || fail "recreate api"
sleep 3
wait_healthy api
http_check persisted "$ID_FILE" "recreating the api container" || fail "submission persisted in a new api container"
rm -f "$ID_FILE"

# Earlier builds of the two images, left untagged by this one (the builder stages stay as cache).
for title in deep-draw-api deep-draw-frontend; do
    docker image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null 2>&1 || true
done
info "image sizes"
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E 'REPOSITORY|deepdraw-|python'
