#!/usr/bin/env bash
# Set up (ci/setup.sh), then run the test suite twice: native backend, then PSSH_PURE_PYTHON=1.
# Extra arguments go to pytest, e.g.  ci/test.sh -x -k embedded
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${PSSH_VENV:-.venv}

section() { printf '\n===== %s =====\n' "$*"; }

bash ci/setup.sh || { echo "ci/test.sh: setup failed" >&2; exit 1; }
PY="$VENV/bin/python"

# many-connection tests need more than the usual 1024 descriptors
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

declare -A result
run_suite() {  # run_suite NAME ENV-ARGS...
    local name=$1; shift
    section "pytest: $name backend"
    env "$@" "$PY" -c 'import pssh.core.backend as b; print("backend in use:", b.backend_name())' 2>/dev/null || true
    local start=$SECONDS rc=0
    env "$@" "$PY" -m pytest tests -q -p no:cacheprovider "${PYTEST_ARGS[@]}" </dev/null || rc=$?
    case $rc in
        0) result[$name]="passed" ;;
        5) result[$name]="FAILED (no tests collected)" ;;
        *) result[$name]="FAILED (pytest exit $rc)" ;;
    esac
    echo "$name: ${result[$name]} in $((SECONDS - start)) s"
}

PYTEST_ARGS=("$@")
run_suite native -u PSSH_PURE_PYTHON
run_suite pure PSSH_PURE_PYTHON=1

section "Summary"
echo "native: ${result[native]}; pure: ${result[pure]}"
[ "${result[native]}" = passed ] && [ "${result[pure]}" = passed ]
