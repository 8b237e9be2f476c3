#!/usr/bin/env bash
# Offline stand-ins for what `docker compose build` normally downloads, for machines that reach
# Debian's mirror and PyPI but not Docker Hub (such as this project's CI and dev machines).
#
# 1. A local image tagged python:3.11-slim-bookworm, built with debootstrap (Debian bookworm from
#    the mirror apt already uses) + `docker import`: Debian's python3.11 with venv and pip, and
#    /usr/local/bin/python{,3} and pip{,3} linked to it, so Dockerfile.api and Dockerfile.frontend
#    build unchanged. It is labelled org.deepdraw.standin=true. Skipped when any image with that
#    tag already exists (for instance the real one, pulled from Docker Hub).
# 2. A wheelhouse (./wheelhouse, git-ignored) of every wheel that requirements/api.txt and
#    requirements/frontend.txt need, for CPython 3.11 on manylinux x86_64. Build with
#    WHEELHOUSE=wheelhouse (a compose build arg) to install from it with `pip --no-index`.
#    Skipped when it is already complete for the current requirements files.
#
# Usage: bash scripts/docker_local_base.sh [--force]   (run as root; needs a running engine)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
BASE_TAG="${BASE_TAG:-python:3.11-slim-bookworm}"
WHEELHOUSE_DIR="${WHEELHOUSE_DIR:-$ROOT/wheelhouse}"
ROOTFS_DIR="${ROOTFS_DIR:-/tmp/deepdraw-rootfs}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { echo "docker_local_base: $*"; }

# ---------------------------------------------------------------- 1. the base image
debian_mirror() {
    # The mirror apt already uses for bookworm (deb822 .sources or one-line .list files).
    local m
    m=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    if [ -z "$m" ]; then
        m=$(grep -hE '^deb +(\[[^]]*\] +)?(https?|file)://[^ ]+ +bookworm +' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -n1 || true)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
    if [ "$FORCE" = 0 ] && docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
        local standin
        standin=$(docker image inspect -f '{{index .Config.Labels "org.deepdraw.standin"}}' "$BASE_TAG" 2>/dev/null || true)
        log "$BASE_TAG already present${standin:+ (local stand-in)}; skipping the base image"
        return
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
    fi
    local mirror
    mirror=$(debian_mirror)
    log "debootstrap bookworm from $mirror into $ROOTFS_DIR (a few minutes)"
    rm -rf "$ROOTFS_DIR"
    mkdir -p "$ROOTFS_DIR"
    debootstrap --variant=minbase \
        --include=python3.11,python3.11-venv,python3-pip,python3-venv,ca-certificates,netbase,tzdata \
        bookworm "$ROOTFS_DIR" "$mirror" >/tmp/deepdraw-debootstrap.log 2>&1 \
        || { log "debootstrap failed, see /tmp/deepdraw-debootstrap.log" >&2; tail -n 20 /tmp/deepdraw-debootstrap.log >&2; exit 1; }

    # Make it look like the official image where the Dockerfiles care: python/pip in /usr/local/bin,
    # pip allowed outside a venv (no PEP 668 marker), no apt lists or docs.
    ln -sf /usr/bin/python3.11 "$ROOTFS_DIR/usr/local/bin/python"
    ln -sf /usr/bin/python3.11 "$ROOTFS_DIR/usr/local/bin/python3"
    ln -sf /usr/bin/pip3 "$ROOTFS_DIR/usr/local/bin/pip"
    ln -sf /usr/bin/pip3 "$ROOTFS_DIR/usr/local/bin/pip3"
    rm -f "$ROOTFS_DIR"/usr/lib/python3.11/EXTERNALLY-MANAGED
    rm -rf "$ROOTFS_DIR"/var/lib/apt/lists/* "$ROOTFS_DIR"/var/cache/apt/*.bin \
        "$ROOTFS_DIR"/var/cache/apt/archives/*.deb "$ROOTFS_DIR"/usr/share/doc/* \
        "$ROOTFS_DIR"/usr/share/man/* "$ROOTFS_DIR"/usr/share/info/* "$ROOTFS_DIR"/var/log/*.log \
        "$ROOTFS_DIR"/debootstrap
    # The mirror for apt inside the image (as in the official debian image).
    printf 'deb %s bookworm main\n' "$mirror" >"$ROOTFS_DIR/etc/apt/sources.list"

    log "importing as $BASE_TAG"
    tar -C "$ROOTFS_DIR" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL org.deepdraw.standin=true' \
        --change 'CMD ["python3"]' \
        - "$BASE_TAG" >/dev/null
    rm -rf "$ROOTFS_DIR"
    docker run --rm "$BASE_TAG" python -c 'import sys, venv, ensurepip; print("base python", sys.version.split()[0])'
}

# ---------------------------------------------------------------- 2. the wheelhouse
req_digest() {
    cat requirements/core.txt requirements/api.txt requirements/frontend.txt | sha256sum | cut -d' ' -f1
}

build_wheelhouse() {
    local digest stamp="$WHEELHOUSE_DIR/.requirements.sha256"
    digest=$(req_digest)
    if [ "$FORCE" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        log "wheelhouse $WHEELHOUSE_DIR is up to date ($(find "$WHEELHOUSE_DIR" -name '*.whl' | wc -l) wheels); skipping"
        return
    fi
    local py
    py=$(command -v python3.11 || command -v python3)
    mkdir -p "$WHEELHOUSE_DIR"
    rm -f "$stamp"
    # Resolve each image's requirements on its own, as each Dockerfile does; both land in one folder.
    # pip expands only the legacy manylinux2014/2010 tags by itself, so name every glibc up to
    # bookworm's 2.36.
    local platforms=(--platform manylinux2014_x86_64)
    for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    for req in requirements/api.txt requirements/frontend.txt; do
        log "downloading wheels for $req (cp311, manylinux x86_64)"
        "$py" -m pip download --quiet --disable-pip-version-check \
            --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
            "${platforms[@]}" \
            --dest "$WHEELHOUSE_DIR" -r "$req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    done
    echo "$digest" >"$stamp"
    log "wheelhouse ready: $(find "$WHEELHOUSE_DIR" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE_DIR" | cut -f1)"
}

docker info >/dev/null 2>&1 || { log "no Docker engine answers (run scripts/docker_engine.sh)" >&2; exit 1; }
build_base
build_wheelhouse
