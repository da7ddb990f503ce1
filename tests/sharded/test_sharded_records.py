"""Records and errors cross process boundaries whole; known_hosts stays whole when several
processes add hosts; secrets passed to shards are never logged."""
import base64
import json
import multiprocessing
import os
import pickle
import subprocess
import sys

import pytest

from pssh import hostkeys
from pssh.exceptions import ConnectionRefusedError, HostKeyError, OutputBufferFullError
from pssh.sharded import HostResult, ShardedClient, ShardLostError, TransferResult

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_records_and_errors_pickle_with_their_attributes():
    changed = HostKeyError("Host key of %s changed", "web1", host="web1", port=2222)
    changed.reason, changed.fingerprint = "changed", "SHA256:abc"
    changed.known_fingerprints, changed.locations = ("SHA256:old",), ("kh:3",)
    full = OutputBufferFullError("buffer of %s full", "web2", host="web2")
    full.stream = "stderr"
    lost = ShardLostError("%s lost", "shard 1", host="web3", shard="shard 1",
                          hosts=["web3", "web4"], cause=OSError(5, "gone"))
    refused = ConnectionRefusedError(111, "Connection refused", "web5", 22)
    records = [HostResult(0, "web1", "a", exception=changed),
               HostResult(1, "web2", exit_code=0, stdout=("x",), truncated=True,
                          exception=full, output_cap=10),
               HostResult(2, "web3", exception=lost),
               TransferResult(3, "web5", exception=refused)]
    back = pickle.loads(pickle.dumps(records))
    assert back[0].exception.reason == "changed"
    assert back[0].exception.fingerprint == "SHA256:abc"
    assert back[0].exception.known_fingerprints == ("SHA256:old",)
    assert back[0].exception.locations == ("kh:3",)
    assert (back[0].exception.host, back[0].exception.port) == ("web1", 2222)
    assert back[1].exception.stream == "stderr" and back[1].truncated
    assert back[1].stdout == ("x",) and back[1].output_cap == 10
    assert back[2].exception.hosts == ("web3", "web4")
    assert back[2].exception.shard == "shard 1" and back[2].exception.host == "web3"
    assert back[2].exception.cause.errno == 5
    assert str(back[2].exception) == "shard 1 lost"
    assert str(back[3].exception) == str(refused) and back[3].exception.args == refused.args
    assert back[3].index == 3 and isinstance(back[3], TransferResult)


def _add_hosts(path, first, count):
    parsed = hostkeys.KnownHostsFile(path)
    blob = base64.b64decode(
        "AAAAC3NzaC1lZDI1NTE5AAAAIG9Wb0Zbpp4M7o5cXqpf9K5jKQ+JR2jAVIV2sLA+vt9Q")
    for number in range(first, first + count):
        parsed.add("host-%d.example" % number, blob)
    return True


def test_known_hosts_add_from_several_processes_keeps_every_line(tmp_path):
    path = str(tmp_path / "known_hosts")
    # no final newline: every writer must check the last byte, under the lock
    with open(path, "w") as existing:
        existing.write("old.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9Wb0Zbpp4M7o5cXqpf9K5jKQ+JR2jAVIV2sLA+vt9Q")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        assert all(pool.starmap(_add_hosts, [(path, start * 200, 200) for start in range(4)]))
    with open(path) as written:
        lines = written.read().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == 801 and all(len(line.split()) == 3 for line in lines)
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(
        "host-%d.example" % number for number in range(800))


def test_accept_new_from_two_shards_writes_one_line_per_host(sshd_farm, client_options,
                                                             tmp_path):
    known_hosts = str(tmp_path / "known_hosts")
    hosts = sshd_farm.hosts
    with ShardedClient(hosts, shards=2, batch_size=1, port=sshd_farm.port,
                       host_key_policy="accept-new", known_hosts=known_hosts,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))
    with open(known_hosts) as written:
        lines = written.read().splitlines()
    assert len(lines) == len(hosts)
    with ShardedClient(hosts, shards=2, port=sshd_farm.port, host_key_policy="strict",
                       known_hosts=known_hosts, **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))


SECRET_PROGRAM = r"""
import json, logging, sys
from pssh.sharded import ShardedClient

if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    options = json.loads(sys.argv[1])
    with ShardedClient(options.pop("hosts"), shards=2, batch_size=1, **options) as client:
        results = client.run_command("echo ok")
    print(json.dumps([[r.stdout, repr(r.exception), str(r.exception)] for r in results]))
"""


@pytest.mark.timeout(60)
def test_password_is_never_logged(sshd, client_options, tmp_path):
    secret = "Pw-h11-never-logged-7f3a"
    options = dict(client_options, hosts=[sshd.host, "127.0.0.1"], port=sshd.port,
                   password=secret, proxy_password=secret)
    script = tmp_path / "secret.py"
    script.write_text(SECRET_PROGRAM)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, str(script), json.dumps(options)], env=env,
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the shards logged at DEBUG too (the parent's level), and none of it has the password
    assert "pssh" in proc.stderr and "SpawnProcess" in proc.stderr
    assert secret not in proc.stderr and secret not in proc.stdout
    assert json.loads(proc.stdout.splitlines()[-1])[0][0] == ["ok"]


@pytest.mark.parametrize("lines", [(), ("",), ("", ""), ("a", "", "b\r", " "), ("x",) * 1000])
def test_host_result_lines_survive_pickling_exactly(lines):
    record = HostResult(4, "web", stdout=lines, stderr=lines[:1], exit_code=0)
    assert pickle.loads(pickle.dumps(record)) == record
