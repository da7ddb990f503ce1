"""The ``pssh`` command line, run as a real subprocess (the installed console script) against
the embedded sshd farm (127.0.0.2 ... 127.0.0.6, one port)."""
import os
import subprocess
import sys
from typing import List, NamedTuple

import pytest

from embedded_server import login_user

# The console script pip installs beside the interpreter (ci/setup.sh: pip install -e .).
PSSH_SCRIPT = os.path.join(os.path.dirname(sys.executable), "pssh")
# No test run may take longer than this (each runs in well under a second when healthy).
RUN_TIMEOUT = 30


class Completed(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def pssh_command() -> List[str]:
    if not os.access(PSSH_SCRIPT, os.X_OK):
        pytest.fail("console script %s missing: install the package (pip install -e .)"
                    % PSSH_SCRIPT)
    return [PSSH_SCRIPT]


@pytest.fixture
def farm_args(sshd_farm, user_key):
    """Connection options reaching every farm server."""
    return ["-l", login_user(), "-p", str(sshd_farm.port), "-i", user_key.private,
            "--no-agent", "-t", "10"]


@pytest.fixture
def pssh(farm_args):
    """``pssh(*args, input=None)``: run the console script with the farm's options appended
    to the subcommand's; returns Completed(returncode, stdout, stderr)."""
    def run(subcommand, *args, connect=True, input=None, timeout=RUN_TIMEOUT, cwd=None):
        command = pssh_command() + [subcommand] + (farm_args if connect else []) + list(args)
        proc = subprocess.run(command, input=input, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, stdin=None if input else
                              subprocess.DEVNULL)
        return Completed(proc.returncode, proc.stdout, proc.stderr)
    return run


def assert_no_traceback(result: Completed) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
