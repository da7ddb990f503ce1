"""Helpers of the command-line tests: the console script and how to judge its output."""
import os
import sys
from typing import List, NamedTuple

import pytest

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


def assert_no_traceback(*texts: str) -> None:
    assert not any("Traceback" in text for text in texts), texts
