#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info` on this machine.
#
# - installs Debian's docker.io (engine) and docker-compose (Compose v1) when they are missing;
# - starts dockerd in the background when no engine answers, with its data under
#   $DOCKER_DATA_ROOT (default /var/lib/docker-deepdraw) and its log in $DOCKER_LOG;
# - waits (bounded) until `docker info` works.
#
# Idempotent: does nothing when an engine already answers. Needs root for the install and the
# daemon; a machine with Docker Desktop or a system service already running is left alone.
set -euo pipefail

DOCKER_DATA_ROOT="${DOCKER_DATA_ROOT:-/var/lib/docker-deepdraw}"
DOCKER_LOG="${DOCKER_LOG:-/tmp/dockerd.log}"
DOCKER_PIDFILE="${DOCKER_PIDFILE:-/run/docker-deepdraw.pid}"
WAIT_SECONDS="${DOCKER_WAIT_SECONDS:-60}"

log() { echo "docker_engine: $*"; }

engine_up() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
    log "engine already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "no engine answers and this is not root: start Docker yourself (or run this as root)" >&2
    exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    missing+=(docker-compose)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/docker_engine_apt.log 2>&1; then
        apt-get update -q >>/tmp/docker_engine_apt.log 2>&1
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/docker_engine_apt.log 2>&1 \
            || { log "apt-get install failed, see /tmp/docker_engine_apt.log" >&2; exit 1; }
    fi
fi

# A stale pid file or socket from a dead daemon would stop a new one from starting.
if [ -f "$DOCKER_PIDFILE" ] && ! kill -0 "$(cat "$DOCKER_PIDFILE")" 2>/dev/null; then
    rm -f "$DOCKER_PIDFILE"
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
    rm -f /var/run/docker.sock
    # containerd is started by dockerd itself when no system containerd runs.
    mkdir -p "$DOCKER_DATA_ROOT"
    log "starting dockerd (data root $DOCKER_DATA_ROOT, log $DOCKER_LOG)"
    nohup dockerd --data-root "$DOCKER_DATA_ROOT" --pidfile "$DOCKER_PIDFILE" \
        >>"$DOCKER_LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
    if engine_up; then
        log "engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        exit 0
    fi
    sleep 1
done
log "engine did not answer within ${WAIT_SECONDS}s; last lines of $DOCKER_LOG:" >&2
tail -n 20 "$DOCKER_LOG" >&2 || true
exit 1
