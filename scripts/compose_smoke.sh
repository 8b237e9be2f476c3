#!/usr/bin/env bash
# End-to-end check of the docker compose demo against a real Docker engine: runs the `docker`
# tests (tests/test_compose.py: build both images, up, /predict finds a real cat, the Streamlit
# page and app script, a submission surviving restart and recreate, down -v), then prints the
# image sizes.
#
# Usage: bash scripts/compose_smoke.sh [--offline]
#   --offline   first run scripts/docker_local_base.sh (local python base image + ./wheelhouse)
#               for machines that cannot pull from Docker Hub.
# Env: API_PORT, FRONTEND_PORT (free ports by default), SMOKE_TIMEOUT (seconds per wait, 240),
#      WHEELHOUSE (set automatically to `wheelhouse` when ./wheelhouse is complete).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=$(command -v python3)

docker info >/dev/null 2>&1 || { echo "FAIL: no Docker engine answers (start one, e.g. scripts/docker_engine.sh)"; exit 1; }
if [ "${1:-}" = "--offline" ]; then
    bash scripts/docker_local_base.sh
fi

DEEPDRAW_DOCKER_TESTS=1 "$PY" -m pytest tests/test_compose.py -m docker -v -s -rs -p no:cacheprovider

# Earlier builds of the two images, left untagged by this one (the builder stages stay as cache).
for title in deep-draw-api deep-draw-frontend; do
    docker image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null 2>&1 || true
done
echo "---- image sizes"
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E 'REPOSITORY|deepdraw-|python'
