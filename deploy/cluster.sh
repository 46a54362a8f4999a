#!/bin/sh
# `make cluster` and `make cluster-down`: deploy/compose.yaml on this machine.
#
#   deploy/cluster.sh up     build what is missing, start the cluster, wait for every service, say where
#   deploy/cluster.sh down   stop it and remove its containers and network (volumes and keys are kept)
#
# Base images (build arguments of the Dockerfiles, overridable here):
#   PYTHON_BASE    default kizuki-base/python:3.11-bookworm, e.g. python:3.11-slim
#   POSTGRES_BASE  default kizuki-base/postgres:15-bookworm, e.g. postgres:15-bookworm
#   NATS_BASE      default scratch
# The kizuki-base/* ones are built here from Debian's packages when missing (no registry is needed):
# a Debian root filesystem made with debootstrap (kept in var/images/debian-bookworm.tar) and
# imported, then deploy/base/python and deploy/base/postgres on it.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${VENV_PYTHON:-.venv/bin/python}
IMAGES=var/images
CLUSTER_DIR=${KIZUKI_CLUSTER_DIR:-$PWD/var/cluster}
TAG=${KIZUKI_IMAGE_TAG:-local}
DEBIAN_IMAGE=kizuki-base/debian:bookworm
PYTHON_BASE=${PYTHON_BASE:-kizuki-base/python:3.11-bookworm}
POSTGRES_BASE=${POSTGRES_BASE:-kizuki-base/postgres:15-bookworm}
NATS_BASE=${NATS_BASE:-scratch}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export KIZUKI_CLUSTER_DIR="$CLUSTER_DIR" KIZUKI_IMAGE_TAG="$TAG"

if docker compose version >/dev/null 2>&1; then
    compose() { docker compose -p kizuki -f deploy/compose.yaml "$@"; }
else
    compose() { docker-compose -p kizuki -f deploy/compose.yaml "$@"; }
fi
say() { echo "cluster: $*"; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
build() {  # build TAG CONTEXT [docker build options]; quiet, but its output is shown if it fails
    tag=$1; shift
    log=$IMAGES/build-$(echo "$tag" | tr '/:' '--').log
    build_started=$(date +%s)
    if ! docker build -t "$tag" "$@" >"$log" 2>&1; then
        cat "$log"; say "building $tag failed (log: $log)"; exit 1
    fi
    say "$tag built in $(( $(date +%s) - build_started )) s"
}

debian_image() {
    have_image "$DEBIAN_IMAGE" && return
    tarball=$IMAGES/debian-bookworm.tar
    if [ ! -f "$tarball" ]; then
        if ! command -v debootstrap >/dev/null; then
            say "installing debootstrap from Debian's packages (apt-get), as make test installs chromium"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
                || { say "debootstrap is needed: apt-get install debootstrap"; exit 1; }
        fi
        say "a Debian bookworm root filesystem with debootstrap (about a minute; kept in $tarball)"
        rootfs=$IMAGES/rootfs
        rm -rf "$rootfs"
        debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$IMAGES/debootstrap.log" 2>&1 \
            || { tail -20 "$IMAGES/debootstrap.log"; exit 1; }
        # Security and point-release updates too, as in Debian's own images.
        printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
            "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" >"$rootfs/etc/apt/sources.list"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
        rm -rf "$rootfs"
    fi
    docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$tarball" "$DEBIAN_IMAGE" >/dev/null
    say "$DEBIAN_IMAGE imported from $tarball"
}

base_image() {  # base_image IMAGE DIRECTORY: a kizuki-base/* image, built on Debian when missing
    case "$1" in kizuki-base/*) ;; *) return ;; esac
    have_image "$1" && return
    debian_image
    build "$1" --build-arg BASE="$DEBIAN_IMAGE" "$2"
}

wheels() {  # the locked runtime dependencies as wheels, for an image build that reaches no index
    dir=$IMAGES/wheels
    if [ -f "$dir/requirements.txt" ] && [ "$dir/requirements.txt" -nt requirements.lock ] \
        && [ "$dir/requirements.txt" -nt pyproject.toml ]; then
        return
    fi
    say "the locked dependencies as wheels in $dir (pip, on this machine)"
    rm -rf "$dir" && mkdir -p "$dir"
    "$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        >"$dir/requirements.in"
    "$PYTHON" -m pip wheel --quiet -c requirements.lock -r "$dir/requirements.in" -w "$dir"
    mv "$dir/requirements.in" "$dir/requirements.txt"  # last: it says the wheels are complete
}

images() {
    mkdir -p "$IMAGES/nats"
    base_image "$PYTHON_BASE" deploy/base/python
    base_image "$POSTGRES_BASE" deploy/base/postgres
    wheels
    build "kizuki/services:$TAG" --build-arg BASE="$PYTHON_BASE" -f deploy/services/Dockerfile .
    build "kizuki/postgres:$TAG" --build-arg BASE="$POSTGRES_BASE" deploy/postgres
    cp deploy/nats/Dockerfile "$IMAGES/nats/Dockerfile"
    cp "$("$PYTHON" -c 'from kizuki.processes import nats_server_binary; print(nats_server_binary())')" "$IMAGES/nats/nats-server"
    build "kizuki/nats:$TAG" --build-arg BASE="$NATS_BASE" "$IMAGES/nats"
}

SERVICES="intake escalation notifier followup console"
PORTS="intake=8001 escalation=8002 notifier=8003 followup=8004 console=8005"

wait_healthy() {  # every replica's health check passes, or the cluster's state and logs are shown
    deadline=$(( $(date +%s) + ${KIZUKI_CLUSTER_WAIT:-300} ))
    while :; do
        waiting=""
        for service in $SERVICES; do
            for replica in 1 2; do
                id=$(compose ps -q "$service-$replica" 2>/dev/null || true)
                state=$( [ -n "$id" ] && docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || echo missing)
                [ "$state" = healthy ] || waiting="$waiting $service-$replica($state)"
            done
        done
        [ -z "$waiting" ] && return
        if [ "$(date +%s)" -ge "$deadline" ]; then
            compose ps; say "not healthy in time:$waiting"; exit 1
        fi
        sleep 3
    done
}

where() {
    say "up. Published on this machine's loopback only:"
    for entry in $PORTS; do
        service=${entry%=*}; port=${entry#*=}
        printf '  %-10s http://127.0.0.1:%s  http://127.0.0.1:%s  (replicas 1 and 2)\n' "$service" "$port" "$((port + 100))"
    done
    echo "  intake SMTP 127.0.0.1:8025 and 127.0.0.1:8125"
    echo "  NATS        nats://127.0.0.1:4222 nats://127.0.0.1:4223 nats://127.0.0.1:4224 (credentials: $CLUSTER_DIR/nats/credentials)"
    echo "  PostgreSQL  on the compose network only (postgres:5432)"
    say "secrets and credentials in $CLUSTER_DIR (owner-only); the kizuki command against the cluster:"
    echo "  docker-compose -p kizuki -f deploy/compose.yaml run --rm -T kizuki token n-001"
    echo "  docker-compose -p kizuki -f deploy/compose.yaml run --rm -T kizuki case REFERENCE"
    say "make cluster-down stops it (its volumes, the record and the stores, are kept)"
}

case "${1:-}" in
    up)
        started=$(date +%s)
        images
        mkdir -p "$CLUSTER_DIR"
        say "starting (keys, three NATS nodes, PostgreSQL, provisioning, two replicas of each service)"
        # The secret files must exist before compose reads the file: the keys step first, as the compose
        # service `keys` runs it (it keeps what it finds, so running it again under `up` changes nothing).
        docker run --rm --user 0:0 -v "$CLUSTER_DIR:/cluster" "kizuki/services:$TAG" python /app/deploy/cluster/keys.py
        compose up -d --remove-orphans
        wait_healthy
        say "every replica healthy $(( $(date +%s) - started )) s after make cluster began"
        where
        ;;
    down)
        compose --profile tools down --remove-orphans 2>/dev/null || compose down --remove-orphans
        say "stopped; containers and network removed. Kept: the volumes (NATS stores, PostgreSQL, service data)"
        say "and $CLUSTER_DIR. To remove the volumes too: docker-compose -p kizuki -f deploy/compose.yaml down -v"
        ;;
    *)
        echo "usage: deploy/cluster.sh up|down" >&2; exit 2 ;;
esac
