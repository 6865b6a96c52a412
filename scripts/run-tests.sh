#!/usr/bin/env bash
# Runs pytest (all of tests/ unless paths are given) against the real local stack.
# Starts Kafka and Redis if they are not running, and on exit - pass, fail or Ctrl-C -
# stops exactly the services this run started; a stack that was already up stays up.
# The exit code is pytest's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

session="$(mktemp -t touchpoint-stack.XXXXXX)"
teardown() {
    deploy/local/stack down --session-file "$session" || true
    rm -f "$session"
}
trap teardown EXIT
trap 'exit 130' INT TERM

deploy/local/stack up --session-file "$session"

status=0
.venv/bin/pytest "$@" || status=$?
exit "$status"
