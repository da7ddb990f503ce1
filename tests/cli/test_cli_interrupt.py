"""Ctrl-C: SIGINT to a running ``pssh run`` prints the summary of what finished, exits 130,
and leaves no process of its own behind (with --pty the remote commands end too)."""
import json
import os
import random
import select
import signal
import subprocess
import time

import pytest

from embedded_server.proctree import descendants, is_alive, reaped

from pssh_cli_helpers import assert_no_traceback, pssh_command

# 127.0.0.2 finishes at once; the others run until interrupted.
COMMAND = 'case $(echo $SSH_CONNECTION | cut -d" " -f3) in 127.0.0.2) echo quick;; ' \
          '*) echo started; sleep %s;; esac'


def _wait_until_done(proc, host, timeout):
    """stdout text of a ``--json`` run until ``host``'s record (printed when pssh has recorded
    it finished) has been seen (bounded)."""
    data, deadline = b"", time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while not any(json.loads(line).get("host") == host
                  for line in data.decode().splitlines() if line.startswith("{")) \
            and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


def _wait_for_sleeps(marker, count, timeout=15):
    deadline = time.monotonic() + timeout
    while len(_remote_sleeps(marker)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return _remote_sleeps(marker)


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
    # anchored: not the shells or the pssh process whose command lines contain it too
    found = subprocess.run(["pgrep", "-f", "^sleep %s$" % marker], capture_output=True,
                           text=True)
    return found.stdout.split()


@pytest.mark.parametrize("pty", [False, True], ids=["no-pty", "pty"])
def test_ctrl_c_prints_summary_and_exits_130(farm_args, pty):
    marker = _unique_duration()
    # --json prints a host's record once pssh has recorded it finished: Ctrl-C is sent only
    # after 127.0.0.2 is done and both sleeps run, so the summary below is exact.
    command = pssh_command() + ["run", "--json"] + farm_args + ["-H", "127.0.0.[2-4]"] + \
        (["--pty"] if pty else []) + [COMMAND % marker]
    with reaped(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)) as proc:
        before = _wait_until_done(proc, "127.0.0.2", timeout=15)
        assert len(_wait_for_sleeps(marker, 2)) == 2
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        out, err = (data.decode() for data in proc.communicate(timeout=15))
    assert proc.returncode == 130, err
    assert_no_traceback(out, err)
    assert "KeyboardInterrupt" not in err
    quick = [json.loads(line) for line in before.splitlines() if line.startswith("{")]
    assert [(record["host"], record["stdout"]) for record in quick] == [("127.0.0.2", ["quick"])]
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
    command = pssh_command() + ["run", "--json"] + farm_args + ["-H", "127.0.0.[2-4]", flood]
    with reaped(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)) as proc:
        _wait_until_done(proc, "127.0.0.2", timeout=15)
        time.sleep(0.5)  # the floods run on
        proc.send_signal(signal.SIGINT)
        _, err = (data.decode() for data in proc.communicate(timeout=15))
    assert proc.returncode == 130, err
    assert_no_traceback(err)
    assert "KeyboardInterrupt" not in err
    assert "pssh: ran on 3 hosts: 1 ok, 0 failed, 2 interrupted" in err


def test_ctrl_c_with_shards_stops_the_shard_processes(farm_args):
    marker = _unique_duration()
    command = pssh_command() + ["run", "--shards", "2"] + farm_args + \
        ["-H", "127.0.0.[2-4]", COMMAND % marker]
    with reaped(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True)) as proc:
        _wait_for_sleeps(marker, 2)
        shards = descendants(proc.pid)
        assert shards, "no shard processes"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert_no_traceback(out, err)
    assert "pssh: ran on 3 hosts:" in err and "interrupted" in err
    assert not _gone(shards)


def test_ctrl_c_or_no_input_at_the_password_prompt(farm_args):
    command = pssh_command() + ["run", "-A"] + farm_args + ["-H", "127.0.0.2", "true"]
    with reaped(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)) as proc:
        prompt, deadline = b"", time.monotonic() + 15
        while b"Password" not in prompt and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                prompt += os.read(proc.stderr.fileno(), 4096)
        assert b"Password" in prompt
        proc.send_signal(signal.SIGINT)
        out, err = (data.decode() for data in proc.communicate(timeout=15))
    assert proc.returncode == 130, err
    assert_no_traceback(out, err)
    assert "pssh: interrupted" in err and "Aborted" not in err
    ended = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30, start_new_session=True)
    assert ended.returncode == 2, ended.stderr
    assert "no password given" in ended.stderr
    assert_no_traceback(ended.stdout, ended.stderr)
