#!/usr/bin/env bash
# OFFLINE VERIFICATION ONLY: local stand-ins for the official postgres, nginx and prometheus images
# that deploy/compose.scale.yml uses, built from Debian packages (deploy/standins/) on the local base
# image, for machines that reach Debian's mirror but not Docker Hub. Each is tagged with the
# official name (so the Compose file runs unchanged) and labelled org.deepdraw.standin=true.
# Skipped when an image with that tag exists already (for instance the real one, pulled).
#
# Usage: bash scripts/docker_standins.sh [--force]   (needs a running engine and the local base:
#        scripts/docker_engine.sh, then scripts/docker_local_base.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1
log() { echo "docker_standins: $*"; }

docker info >/dev/null 2>&1 || { log "no Docker engine answers (run scripts/docker_engine.sh)" >&2; exit 1; }
docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 \
    || { log "no base image python:3.11-slim-bookworm (run scripts/docker_local_base.sh)" >&2; exit 1; }

build() {
    local tag=$1 dir=$2
    if [ "$FORCE" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
        log "$tag already present; skipping"
        return
    fi
    log "building the stand-in $tag from $dir"
    docker build -q -t "$tag" "$dir" >/dev/null
}
build "${POSTGRES_IMAGE:-postgres:15-bookworm}" deploy/standins/postgres
build "${NGINX_IMAGE:-nginx:stable}" deploy/standins/nginx
build "${PROMETHEUS_IMAGE:-prom/prometheus:v2.55.1}" deploy/standins/prometheus
