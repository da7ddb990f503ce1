"""Ctrl-C in the parent of a sharded run: every shard process goes, no sshd session stays."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from embedded_server.proctree import is_alive, reaped

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The interrupted program: a sharded run of a long command; prints the shard pids first.
PROGRAM = r"""
import json, sys
from pssh.sharded import ShardedClient

if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    client = ShardedClient(options.pop("hosts"), shards=2, batch_size=1, **options)
    print(json.dumps(client.shard_pids), flush=True)
    try:
        client.run_command("sleep 60")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(3)
    sys.exit(0)
"""


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.timeout(60)
def test_ctrl_c_kills_the_shards_and_ends_every_session(fresh_sshd, client_options, tmp_path):
    options = dict(client_options, hosts=[fresh_sshd.host] * 4, port=fresh_sshd.port)
    script = tmp_path / "interrupted.py"
    script.write_text(PROGRAM)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    program = [sys.executable, str(script), json.dumps(options)]
    with reaped(subprocess.Popen(program, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)) as proc:
        shard_pids = json.loads(proc.stdout.readline())
        assert len(shard_pids) == 2 and all(is_alive(pid) for pid in shard_pids)
        # every host's command runs: 4 connections, each with its sleep
        assert _wait_for(lambda: len(_named(fresh_sshd.connections(), "sleep")) == 4, 20), \
            fresh_sshd.connections()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, err
    assert "interrupted" in out
    assert not any(is_alive(pid) for pid in shard_pids)
    # sshd's per-connection processes end once the shards' sockets are gone
    assert _wait_for(lambda: not _named(fresh_sshd.connections(), "sshd"), 10), \
        fresh_sshd.connections()


def _named(pids, prefix):
    """The processes among ``pids`` whose command name starts with ``prefix``."""
    found = []
    for pid in pids:
        try:
            with open("/proc/%d/comm" % pid) as comm:
                if comm.read().strip().startswith(prefix):
                    found.append(pid)
        except OSError:
            pass
    return found
