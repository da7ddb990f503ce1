#!/usr/bin/env bash
# Set everything up (like ci/test.sh) and run the demo: a command on 100 embedded hosts through
# the library, then one run of the `pssh` command line on the same servers.
#   bash ci/demo.sh [--hosts N] [--command CMD]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh
exec "${PSSH_VENV:-.venv}/bin/python" ci/demo.py "$@"
