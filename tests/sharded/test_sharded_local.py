"""ShardedClient on 2 local shard processes against the embedded sshd farm (both backends:
the shards inherit PSSH_PURE_PYTHON)."""
import os
import signal
import threading
import time

import pytest

from pssh.config import HostConfig
from pssh.exceptions import ConnectionRefusedError, PSSHError
from pssh.sharded import HostResult, ShardedClient, ShardLostError, TransferResult


def _mixed(farm, refused_port):
    """The farm's hosts with a refused one in the middle; its HostConfig sends it to a port
    nothing listens on."""
    hosts = farm.hosts[:2] + ["127.0.0.1"] + farm.hosts[2:]
    configs = [HostConfig(port=refused_port, alias="refused") if host == "127.0.0.1"
               else HostConfig(port=farm.port, alias="srv-%s" % host) for host in hosts]
    return hosts, configs


def test_mixed_hosts_results_in_host_order(sshd_farm, client_options, refused_port):
    hosts, configs = _mixed(sshd_farm, refused_port)
    with ShardedClient(hosts, shards=2, batch_size=1, host_config=configs,
                       **client_options) as client:
        results = client.run_command('echo "$SSH_CONNECTION"; echo err >&2; exit 3')
    assert [result.index for result in results] == list(range(len(hosts)))
    assert [result.host for result in results] == hosts
    for result, config in zip(results, configs):
        assert isinstance(result, HostResult)
        assert result.alias == config.alias
        if result.host == "127.0.0.1":
            assert isinstance(result.exception, ConnectionRefusedError)
            assert result.exception.host == "127.0.0.1"
            assert result.exit_code is None and not result.ok
        else:
            assert result.exception is None
            # the server address the command saw is this record's host: no mix-up
            assert result.stdout[0].split()[2] == result.host
            assert result.stderr == ("err",)
            assert result.exit_code == 3 and not result.truncated


def test_streaming_yields_fast_hosts_before_slow_ones(sshd_farm, client_options):
    hosts = sshd_farm.hosts[:4]
    sleeps = [(0,), (0,), (3,), (3,)]
    with ShardedClient(hosts, shards=2, batch_size=1, port=sshd_farm.port,
                       **client_options) as client:
        client.run_command("true")  # connections open: only the commands are timed below
        started = time.monotonic()
        arrivals = [(time.monotonic() - started, result)
                    for result in client.iter_run_command("sleep %s; echo done",
                                                          host_args=sleeps)]
    assert sorted(result.index for _t, result in arrivals) == [0, 1, 2, 3]
    first_time, first = arrivals[0]
    assert first.index in (0, 1) and first_time < 2.0
    assert arrivals[-1][0] >= 2.9
    assert all(result.stdout == ("done",) for _t, result in arrivals)


def test_second_command_reuses_the_shard_connections(sshd_farm, client_options):
    hosts = sshd_farm.hosts * 2
    with ShardedClient(hosts, shards=2, batch_size=2, port=sshd_farm.port,
                       **client_options) as client:
        first = client.run_command("echo $PPID")
        second = client.run_command("echo $PPID")
        assert len(set(client.shard_pids)) == 2
    # $PPID is the sshd process of the connection: the same one means the same connection
    assert [r.stdout for r in first] == [r.stdout for r in second]
    assert len({r.stdout for r in first}) == len(hosts)


def test_output_cap_and_spool(sshd_farm, client_options, tmp_path):
    hosts = sshd_farm.hosts[:2]
    command = "seq 1 1000; seq 1 1000 >&2"
    with ShardedClient(hosts, shards=2, output_cap=100, port=sshd_farm.port,
                       **client_options) as client:
        capped = client.run_command(command)
    expected = [str(n) for n in range(1, 1001)]
    for result in capped:
        assert result.truncated and result.output_cap == 100 and result.exit_code == 0
        for lines in (result.stdout, result.stderr):
            assert 0 < len(lines) < 1000 and list(lines) == expected[:len(lines)]
            assert sum(len(line) + 1 for line in lines) <= 100
    spool = str(tmp_path / "spool")
    with ShardedClient(hosts, shards=2, spool_dir=spool, output_cap=100, port=sshd_farm.port,
                       **client_options) as client:
        spooled = client.run_command(command)
    for result in spooled:
        assert result.stdout == () and not result.truncated and result.exit_code == 0
        for path in (result.stdout_file, result.stderr_file):
            assert os.path.dirname(path) == spool and result.host in os.path.basename(path)
            with open(path) as spooled_file:
                assert spooled_file.read().splitlines() == expected


def test_stderr_is_read_while_stdout_is_still_open(sshd_farm, client_options):
    # 70 MiB of stderr before stdout says anything: read one stream after the other, stderr
    # would fill the 64 MiB unread-output limit and stop the command.
    command = "yes e | head -c 70M >&2; echo out"
    with ShardedClient(sshd_farm.hosts[:1], shards=1, output_cap=100, port=sshd_farm.port,
                       **client_options) as client:
        [result] = client.run_command(command)
    assert result.exception is None, result.exception
    assert result.exit_code == 0 and result.stdout == ("out",)
    assert result.truncated and result.stderr[:2] == ("e", "e")


@pytest.mark.timeout(60)
def test_killed_shard_fails_only_its_hosts(sshd_farm, client_options):
    hosts = sshd_farm.hosts[:4]
    with ShardedClient(hosts, shards=2, batch_size=1, port=sshd_farm.port,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))
        victim = client.shard_pids[0]
        # a thread: the kill must come whatever the waiting dispatcher does
        killer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
        killer.start()
        results = client.run_command("sleep 2; echo done")
        killer.join()
        lost = [r for r in results if r.exception is not None]
        finished = [r for r in results if r.exception is None]
        assert lost and finished
        assert all(r.stdout == ("done",) and r.exit_code == 0 for r in finished)
        lost_hosts = sorted(r.host for r in lost)
        for record in lost:
            assert isinstance(record.exception, ShardLostError)
            assert isinstance(record.exception, PSSHError)
            assert record.exception.host == record.host
            assert sorted(record.exception.hosts) == lost_hosts
            assert record.host in str(record.exception)
            assert "local shard 0" in str(record.exception)
        # the lost shard's hosts move to the live shard for the next command
        again = client.run_command("echo again")
        assert [r.stdout for r in again] == [("again",)] * len(hosts)


def test_copies_give_per_host_records(sshd_farm, client_options, refused_port, scratch):
    hosts, configs = _mixed(sshd_farm, refused_port)
    source = os.path.join(scratch, "source.txt")
    with open(source, "w") as out:
        out.write("payload\n")
    os.chmod(source, 0o644)
    with ShardedClient(hosts, shards=2, batch_size=2, host_config=configs,
                       **client_options) as client:
        sent = client.copy_file(source, os.path.join(scratch, "sftp-%(n)s"),
                                copy_args=[{"n": i} for i in range(len(hosts))])
        scp = client.scp_send(source, "-", copy_args=[
            {"local_file": source, "remote_file": os.path.join(scratch, "scp-%d" % i)}
            for i in range(len(hosts))])
        fetched = client.scp_recv(os.path.join(scratch, "scp-0"), os.path.join(scratch, "back"))
    for records in (sent, scp, fetched):
        assert [r.index for r in records] == list(range(len(hosts)))
        for record in records:
            assert isinstance(record, TransferResult)
            if record.host == "127.0.0.1":
                assert isinstance(record.exception, ConnectionRefusedError)
            else:
                assert record.ok, record.exception
    for index, host in enumerate(hosts):
        if host != "127.0.0.1":
            with open(os.path.join(scratch, "sftp-%d" % index)) as copied:
                assert copied.read() == "payload\n"
            with open(os.path.join(scratch, "back_%s" % host)) as copied:
                assert copied.read() == "payload\n"


def test_bad_option_fails_the_call_not_the_shards(client_options):
    with pytest.raises(PSSHError):
        ShardedClient(["127.0.0.1"], shards=1, keyboard_interactive=True, **client_options)


def test_one_bastion_connection_per_shard(make_sshd, sshd_farm, client_options):
    bastion = make_sshd(listen_ip="127.0.0.1", log_level="INFO")
    hosts = sshd_farm.hosts * 4
    with ShardedClient(hosts, shards=2, batch_size=2, port=sshd_farm.port,
                       proxy_host=bastion.host, proxy_port=bastion.port,
                       **client_options) as client:
        results = client.run_command('echo "$SSH_CONNECTION"')
        again = client.run_command("true")
    assert [r.stdout[0].split()[2] for r in results] == hosts
    assert all(r.ok for r in again)
    with open(bastion.log_path) as log:
        logins = log.read().count("Accepted ")
    # 10 batches on 2 shards: each shard's batches share its one bastion connection
    assert logins == 2
