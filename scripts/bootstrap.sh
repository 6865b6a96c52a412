#!/usr/bin/env bash
# Installs the system packages the test command needs on a fresh Debian machine:
# a JDK and Maven (to resolve and run the local Kafka), redis-server, and prometheus
# (its promtool checks the alert rules; it is never started as a service here), and
# docker-compose to validate docker-compose.yml.
#
#   scripts/bootstrap.sh          everything above, plus the Python that makes .venv
#   scripts/bootstrap.sh python   only $PYTHON (default python3.11) with venv/ensurepip
#
# Idempotent and quick when everything is present: apt is touched only for what is
# missing. Never interactive (DEBIAN_FRONTEND=noninteractive, also through sudo, and
# existing config files kept); waits for a dpkg lock held by another apt (e.g.
# unattended-upgrades on a fresh VM) instead of failing; refreshes the package lists
# first when there are none, and again before retrying a failed install (stale lists,
# a network blip).
set -euo pipefail

mode="${1:-all}"
python="${PYTHON:-python3.11}"

missing=()
if [ "$mode" != "python" ]; then
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    # Only to validate docker-compose.yml (`docker-compose config`): no Docker engine runs here.
    if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
        missing+=(docker-compose)
    fi
fi
# Debian splits venv/ensurepip out of python3.X into python3.X-venv: without it
# `python3.X -m venv` fails half-way and leaves a .venv without pip behind.
if ! command -v "$python" >/dev/null 2>&1; then
    missing+=("$python" "$python-venv")
elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=("$python-venv")
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
case "$python" in
    python3.*) ;;
    *)  # a path or another interpreter: not something apt can name
        if [[ " ${missing[*]} " == *" $python"* ]]; then
            echo "bootstrap: $python is missing or has no venv module; install it or set PYTHON" >&2
            exit 1
        fi ;;
esac

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
# `env` inside sudo: sudo resets the environment, which would drop DEBIAN_FRONTEND.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
apt_update() {
    "${APT[@]}" update </dev/null
}
apt_install() {
    "${APT[@]}" install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null
}

# A fresh image often has no package lists at all: an install could only fail.
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    apt_update || true
fi
attempt=1
until apt_install; do
    if [ "$attempt" -ge 3 ]; then
        echo "bootstrap: apt-get install ${missing[*]} failed 3 times; see the apt output above" >&2
        exit 1
    fi
    echo "bootstrap: apt-get install failed (attempt $attempt); refreshing the package lists" >&2
    sleep $((attempt * 10))
    apt_update || true
    attempt=$((attempt + 1))
done

# The packages must really provide what the test command runs.
for tool in "$python"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bootstrap: $tool still missing" >&2; exit 1; }
done
if [ "$mode" != "python" ]; then
    for tool in java mvn redis-server promtool; do
        command -v "$tool" >/dev/null 2>&1 || { echo "bootstrap: $tool still missing" >&2; exit 1; }
    done
fi
