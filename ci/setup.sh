#!/usr/bin/env bash
# Prepare a machine to build and test pssh. Idempotent; made for a fresh Debian machine as root,
# and fine as an ordinary user when the system packages are already there.
#
#   PSSH_VENV   virtual environment to create/use (default: .venv in the repository)
#   PYTHON      interpreter that creates the venv (default: python3)
#   PSSH_ALLOW_NO_NATIVE=1   only warn (instead of failing) when pssh._native does not import
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)
VENV=${PSSH_VENV:-.venv}
PYTHON=${PYTHON:-python3}

section() { printf '\n===== %s =====\n' "$*"; }
die() { printf 'ci/setup.sh: ERROR: %s\n' "$*" >&2; exit 1; }

have_sshd() { [ -x /usr/sbin/sshd ] || [ -n "${PSSH_SSHD:-}" ] || PATH="$PATH:/usr/sbin:/sbin" command -v sshd >/dev/null 2>&1; }
have_cmd() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }

section "System packages (OpenSSH server and client, tmux)"
missing=()
have_sshd || missing+=(openssh-server)
{ have_cmd ssh-keygen && have_cmd ssh-agent && have_cmd ssh-add && have_cmd ssh; } || missing+=(openssh-client)
# the command-line tests drive `pssh` in a real terminal under tmux
have_cmd tmux || missing+=(tmux)
if [ "$(id -u)" = 0 ]; then
    # the password-auth tests create a user as root
    { have_cmd useradd && have_cmd chpasswd; } || missing+=(passwd)
fi
if [ ${#missing[@]} -eq 0 ]; then
    echo "already installed: $(/usr/sbin/sshd -V 2>&1 | head -n1 || true)"
else
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        die "missing ${missing[*]} and not root (no password-less sudo): install them first"
    fi
    export DEBIAN_FRONTEND=noninteractive
    for attempt in 1 2 3; do
        "${SUDO[@]}" apt-get update -q && break
        [ "$attempt" = 3 ] && die "apt-get update failed 3 times"
        echo "apt-get update failed (attempt $attempt), retrying in 5 s"; sleep 5
    done
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends openssh-server openssh-client "${missing[@]}"
    have_sshd || die "sshd still missing after apt-get install"
    echo "installed: $(/usr/sbin/sshd -V 2>&1 | head -n1 || true)"
fi

section "Python virtual environment ($VENV)"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    echo "reusing $VENV ($("$VENV/bin/python" -V 2>&1))"
else
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    echo "created $VENV ($("$VENV/bin/python" -V 2>&1))"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip

section "Install pssh (builds the native extension) and test tools"
if [ -f setup.py ] || [ -f pyproject.toml ]; then
    "$PY" -m pip install -e '.[test,dask]'
else
    echo "no setup.py/pyproject.toml yet: installing the runtime dependencies only"
    "$PY" -m pip install ssh2-python gevent
fi
"$PY" -m pip install -q pytest pytest-timeout
"$PY" -m pip list 2>/dev/null | grep -i -E '^(pssh|ssh2-python|gevent|pytest|pytest-timeout|cython) ' || true

section "Backend check"
if [ -d pssh ]; then
    if "$PY" -c 'import pssh._native' ; then
        echo "pssh._native: imports"
    elif [ "${PSSH_ALLOW_NO_NATIVE:-0}" = 1 ]; then
        echo "WARNING: pssh._native does not import (PSSH_ALLOW_NO_NATIVE=1: continuing)"
    else
        die "pssh._native does not import: the native build failed (see above)"
    fi
    env -u PSSH_PURE_PYTHON "$PY" -c '
import pssh.core.backend as b
print("active backend by default: %s%s" % (b.backend_name(),
      "" if not b.fallback_reason else " (fallback: %s)" % b.fallback_reason))' \
        || echo "WARNING: could not ask pssh.core.backend which backend is active"
else
    echo "no pssh package yet: skipped"
fi

section "Setup done"
echo "repo: $REPO_ROOT"
echo "python: $PY"
