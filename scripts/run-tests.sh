#!/usr/bin/env bash
# Runs pytest (all of tests/ unless paths are given) against the real local stack.
# Starts Kafka and Redis if they are not running, and on exit - pass, fail, Ctrl-C, a
# failed or interrupted start, SIGTERM - stops exactly the services this run started
# (`stack up` names each in the session file the moment it starts it); a stack that was
# already up stays up. The stack listens where the tests look: TOUCHPOINT_KAFKA_BROKERS
# and TOUCHPOINT_REDIS_URL, when they name this host, choose its ports.
# pytest gets TOUCHPOINT_TEST_TIMEOUT seconds (default 2400) and is then interrupted, so
# a hung test fails the run with its traceback instead of hanging CI.
# The exit code is pytest's (124 if it ran out of time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

session="$(mktemp -t touchpoint-stack.XXXXXX)"
teardown() {
    deploy/local/stack down --session-file "$session" || true
    rm -f "$session"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
deploy/local/stack up --session-file "$session"
echo "run-tests: stack ready in $((SECONDS - started))s" >&2

limit="${TOUCHPOINT_TEST_TIMEOUT:-2400}"
status=0
# --foreground: pytest stays in the terminal's process group, so Ctrl-C still reaches it.
timeout --foreground --signal=INT --kill-after=60 "$limit" .venv/bin/pytest "$@" || status=$?
if [ "$status" -eq 124 ]; then
    echo "run-tests: pytest did not finish within ${limit}s (TOUCHPOINT_TEST_TIMEOUT)" >&2
fi
exit "$status"
