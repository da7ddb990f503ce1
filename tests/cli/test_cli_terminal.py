"""``pssh run`` in a real terminal (tmux): the live progress display while hosts run, and the
final screen (output lines above, the progress line at its end state, the summary)."""
import os
import shlex
import shutil
import subprocess
import time

import pytest

from pssh_cli_helpers import pssh_command

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux not installed (ci/setup.sh installs it)")

COMMAND = 'case $(echo $SSH_CONNECTION | cut -d" " -f3) in 127.0.0.2) echo quick;; ' \
          '127.0.0.3) sleep 1.5; echo medium;; *) sleep 3; echo slow;; esac'


def _tmux(socket, *args):
    return subprocess.run(["tmux", "-S", socket] + list(args), capture_output=True,
                          text=True, timeout=10)


def _screen(socket):
    return _tmux(socket, "capture-pane", "-p", "-t", "cli").stdout


def _wait_for(socket, text, timeout):
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(socket)
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError("%r not on the screen within %s s:\n%s" % (text, timeout, screen))


def test_progress_display_and_final_screen(farm_args, tmp_path):
    socket = str(tmp_path / "tmux.sock")
    pssh = " ".join(shlex.quote(word) for word in pssh_command() + ["run"] + farm_args
                    + ["-H", "127.0.0.[2-4]", COMMAND])
    shell = "%s; echo EXIT=$?; sleep 60" % pssh
    env = dict(os.environ, TERM="xterm-256color")
    started = subprocess.run(["tmux", "-S", socket, "new-session", "-d", "-s", "cli", "-x",
                              "150", "-y", "30", shell], env=env, timeout=10)
    assert started.returncode == 0
    try:
        running = _wait_for(socket, "1/3 done", timeout=15)
        assert "127.0.0.2: quick" in running
        assert "slowest: 127.0.0." in running and "running: 2" in running
        assert "EXIT=" not in running
        final = _wait_for(socket, "EXIT=", timeout=20)
    finally:
        _tmux(socket, "kill-server")
    lines = [line.rstrip() for line in final.splitlines() if line.strip()]
    assert lines[-1] == "EXIT=0"
    assert lines[-2] == "pssh: ran on 3 hosts: 3 ok, 0 failed"
    # the display stays at its end state under the output lines
    assert "run 3/3 done · 0 failed" in lines[-3]
    assert {"127.0.0.2: quick", "127.0.0.3: medium", "127.0.0.4: slow"} <= set(lines)
    assert lines.index("127.0.0.4: slow") < len(lines) - 3
