"""Ctrl-C: SIGINT to a running ``pssh run`` prints the summary of what finished, exits 130,
and leaves no process of its own behind (with --pty the remote commands end too)."""
import os
import random
import select
import signal
import subprocess
import time

import pytest

from embedded_server.proctree import descendants, is_alive

from pssh_cli_helpers import assert_no_traceback, pssh_command

# 127.0.0.2 finishes at once; the others run until interrupted.
COMMAND = 'case $(echo $SSH_CONNECTION | cut -d" " -f3) in 127.0.0.2) echo quick;; ' \
          '*) echo started; sleep %s;; esac'


def _read_until(proc, wanted, timeout):
    """stdout text until 'quick' and ``wanted`` occurrences of 'started' were seen
    (bounded)."""
    data, deadline = b"", time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while (data.count(b"started") < wanted or b"quick" not in data) \
            and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


def _gone(pids, timeout=5):
    """``pids`` still alive after waiting up to ``timeout`` for them to exit."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if is_alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _unique_duration():
    """A sleep duration (about 30 s) no other run uses, to find its remote processes."""
    return "30.%06d" % random.randrange(10 ** 6)


def _remote_sleeps(marker):
    found = subprocess.run(["pgrep", "-f", "sleep %s" % marker], capture_output=True,
                           text=True)
    return found.stdout.split()


@pytest.mark.parametrize("pty", [False, True], ids=["no-pty", "pty"])
def test_ctrl_c_prints_summary_and_exits_130(farm_args, pty):
    marker = _unique_duration()
    command = pssh_command() + ["run"] + farm_args + ["-H", "127.0.0.[2-4]"] + \
        (["--pty"] if pty else []) + [COMMAND % marker]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        before = _read_until(proc, 2, timeout=15)
        assert before.count("started") == 2, before
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        out, err = (data.decode() for data in proc.communicate(timeout=15))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert_no_traceback(out, err)
    assert "KeyboardInterrupt" not in err
    assert "127.0.0.2: quick" in before + out
    assert "pssh: ran on 3 hosts: 1 ok, 0 failed, 2 interrupted" in err
    assert "pssh: interrupted: 127.0.0.[3-4]" in err
    assert not _gone(children)
    if pty:
        # the pty's hangup ends the remote commands when pssh disconnects
        deadline = time.monotonic() + 5
        while _remote_sleeps(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _remote_sleeps(marker)


def test_ctrl_c_while_output_floods_in(farm_args):
    """SIGINT lands while the readers are busy: still interrupted, not a host failure."""
    flood = 'case $(echo $SSH_CONNECTION | cut -d" " -f3) in 127.0.0.2) echo quick;; ' \
            '*) while :; do echo flood; done;; esac'
    command = pssh_command() + ["run", "--fold"] + farm_args + ["-H", "127.0.0.[2-4]", flood]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert_no_traceback(err)
    assert "KeyboardInterrupt" not in err
    assert "pssh: ran on 3 hosts: 1 ok, 0 failed, 2 interrupted" in err


def test_ctrl_c_with_shards_stops_the_shard_processes(farm_args):
    marker = _unique_duration()
    command = pssh_command() + ["run", "--shards", "2"] + farm_args + \
        ["-H", "127.0.0.[2-4]", COMMAND % marker]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 15
        while len(_remote_sleeps(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        shards = descendants(proc.pid)
        assert shards, "no shard processes"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert_no_traceback(out, err)
    assert "pssh: ran on 3 hosts:" in err and "interrupted" in err
    assert not _gone(shards)
