#!/usr/bin/env bash
# `make test`: a throwaway PostgreSQL cluster for this run (stopped and removed afterwards, even when
# the tests fail), the format and deployment checks, `swift test`, then the API contract check
# (openapi.yaml against a live server, scripts/api-check.sh). Exits non-zero if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# The end-to-end tests run the real nginx, and the checkout page in Debian's headless Chromium.
PAYNOTIFY_EXTRA_PACKAGES="nginx chromium chromium-driver python3 python3-venv pgbouncer prometheus patroni etcd-server ${PAYNOTIFY_EXTRA_PACKAGES:-}" scripts/install-deps.sh
# The reference Standard Webhooks library, which must accept merchant webhooks' signatures.
PAYNOTIFY_TEST_PYTHON=$(scripts/python-env.sh)
export PAYNOTIFY_TEST_PYTHON

work=$(mktemp -d /tmp/paynotify-test.XXXXXX)
cleanup() {
    # Clusters the tests made for themselves live under $work too.
    for cluster in "$work"/*/; do
        if [ -d "$cluster/data" ]; then scripts/pg-cluster.sh stop "$cluster" || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PAYNOTIFY_TEST_DATABASE_URL=$(scripts/pg-cluster.sh start "$work/shared" auto test)
export PAYNOTIFY_TEST_DATABASE_URL
export PAYNOTIFY_TEST_WORK_DIR="$work"
echo "test database: $PAYNOTIFY_TEST_DATABASE_URL"

echo "checking format (make fmt fixes it)"
swift format lint --strict --recursive --parallel Package.swift Sources Tests
scripts/check-deploy.sh

# The end-to-end tests start the real binary, as deployed.
swift build --product paynotify
PAYNOTIFY_TEST_BINARY="$(swift build --show-bin-path)/paynotify"
export PAYNOTIFY_TEST_BINARY
export PAYNOTIFY_TEST_ARTIFACTS="${PAYNOTIFY_TEST_ARTIFACTS:-$PWD/.build/test-artifacts}"
echo "test artifacts (screenshots): $PAYNOTIFY_TEST_ARTIFACTS"

# A hung test must fail the run, not eat CI's whole time budget.
run_tests() { timeout --signal=TERM --kill-after=30s "${PAYNOTIFY_TEST_TIMEOUT:-30m}" swift test "$@"; }
if [ $# -eq 0 ]; then
    # Two passes: every module's tests, then the end-to-end ones (nginx, Chromium, Prometheus,
    # Patroni, PgBouncer and many service processes). Started together, the second kind took both
    # cores for seconds at the start of the run, and tests of the first kind waiting on a timer
    # (a pool's acquire timeout) failed for it.
    run_tests --skip EndToEndTests
    run_tests --filter EndToEndTests
else
    run_tests "$@"
fi

# The whole run (not a filtered one) also checks the API contract against a live server.
if [ $# -eq 0 ]; then
    psql "$PAYNOTIFY_TEST_DATABASE_URL" -qc "CREATE DATABASE api_check"
    scripts/api-check.sh "${PAYNOTIFY_TEST_DATABASE_URL%/paynotify*}/api_check?sslmode=disable" "$PAYNOTIFY_TEST_BINARY"
fi
