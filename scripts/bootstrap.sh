#!/usr/bin/env bash
# Installs the system packages the test command needs on a fresh Debian machine:
# a JDK and Maven (to resolve and run the local Kafka), redis-server, and prometheus
# (its promtool checks the alert rules; it is never started as a service here), and
# docker-compose to validate docker-compose.yml.
# Idempotent and quick when everything is present: apt is touched only for what is missing,
# and `apt-get update` runs at most once, only if an install needs it.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Only to validate docker-compose.yml (`docker-compose config`): no Docker engine runs here.
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    missing+=(docker-compose)
fi
if ! command -v python3.11 >/dev/null 2>&1; then
    missing+=(python3.11 python3.11-venv)
elif ! python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3.11-venv)  # Debian splits venv/ensurepip out of python3.11
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "bootstrap: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
        exit 1
    fi
else
    SUDO=()
fi

echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_install() {
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}
if ! apt_install; then
    # A fresh machine may have stale or no package lists: refresh once and retry.
    "${SUDO[@]}" apt-get update -q </dev/null
    apt_install
fi
