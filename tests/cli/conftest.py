"""The ``pssh`` command line, run as a real subprocess (the installed console script) against
the embedded sshd farm (127.0.0.2 ... 127.0.0.6, one port)."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from embedded_server import login_user  # noqa: E402
from pssh_cli_helpers import RUN_TIMEOUT, Completed, pssh_command  # noqa: E402


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
