"""ShardedClient on a 2-worker Dask LocalCluster (worker processes, one thread each)."""
import time

import pytest

from pssh.config import HostConfig
from pssh.exceptions import ConnectionRefusedError
from pssh.sharded import LEAN_DASK_CONFIG, ShardedClient, ShardLostError, TransferResult

distributed = pytest.importorskip("distributed")

# A cluster's HTTP servers must never fall back from a port in use (see _local_cluster).
pytestmark = pytest.mark.filterwarnings("error:Port .* is already in use:UserWarning")


def _local_cluster():
    """2 worker processes on loopback, no dashboards. The scheduler serves HTTP (health and
    metrics) even without its dashboard, on port 8787 unless told otherwise: a second
    cluster (or another program) found it taken and warned "Port 8787 is already in use"
    and leaked the socket of the failed attempt; an ephemeral loopback port cannot clash.
    Started under LEAN_DASK_CONFIG, as README recommends."""
    import dask
    with dask.config.set(LEAN_DASK_CONFIG):
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None,
                                        worker_dashboard_address=None,
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def _batches_held(client_id):
    from pssh.sharded import shard
    return len(shard._CLIENTS.get(client_id, {}))


def _worker_settings():
    import dask
    return {key: dask.config.get(key) for key in LEAN_DASK_CONFIG}


def test_lean_config_names_real_dask_settings_and_reaches_the_workers(dask_client):
    import dask
    defaults = dask.config.merge(*dask.config.defaults)  # Dask's own defaults only
    for key in LEAN_DASK_CONFIG:
        node = defaults
        for part in key.split("."):
            node = node[part]  # KeyError: Dask has no such setting (renamed?)
    # each worker process started with the lean values (the LocalCluster's scheduler runs
    # in this process, which read them while it started and is back to the defaults now)
    workers = dask_client.run(_worker_settings)
    assert len(workers) == 2
    for settings in workers.values():
        assert settings == LEAN_DASK_CONFIG


@pytest.fixture(scope="module")
def dask_client():
    cluster = _local_cluster()
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_dask_workers_run_mixed_hosts_and_keep_connections(dask_client, sshd_farm,
                                                           client_options, refused_port,
                                                           scratch):
    hosts = sshd_farm.hosts[:3] + ["127.0.0.1"] + sshd_farm.hosts[3:]
    configs = [HostConfig(port=refused_port) if host == "127.0.0.1"
               else HostConfig(port=sshd_farm.port) for host in hosts]
    with ShardedClient(hosts, executor=dask_client, batch_size=1, host_config=configs,
                       **client_options) as client:
        assert client.shard_count == 2
        first = client.run_command('echo "$SSH_CONNECTION $PPID"')
        streamed = sorted(client.iter_run_command('echo "$SSH_CONNECTION $PPID"'),
                          key=lambda result: result.index)
        copies = client.scp_send(__file__, "-", copy_args=[
            {"local_file": __file__, "remote_file": "%s/copy-%d" % (scratch, index)}
            for index in range(len(hosts))])
    assert [r.host for r in first] == hosts
    for before, after in zip(first, streamed):
        if before.host == "127.0.0.1":
            assert isinstance(before.exception, ConnectionRefusedError)
            assert isinstance(after.exception, ConnectionRefusedError)
            continue
        assert before.exit_code == 0 and before.exception is None
        fields = before.stdout[0].split()
        assert fields[2] == before.host
        # same sshd process: the worker kept the connection open between the calls
        assert after.stdout == before.stdout
    assert all(isinstance(r, TransferResult) for r in copies)
    assert [r.ok for r in copies] == [host != "127.0.0.1" for host in hosts], copies
    with open(__file__) as source, open("%s/copy-0" % scratch) as copied:
        assert copied.read() == source.read()


def test_dask_close_drops_the_connections_on_the_workers(dask_client, fresh_sshd,
                                                        client_options):
    # by scheduler address: the ShardedClient makes (and closes) a Dask client of its own
    client = ShardedClient([fresh_sshd.host] * 4, executor=dask_client.scheduler.address,
                           batch_size=1, port=fresh_sshd.port, **client_options)
    assert client.shard_count == 2
    assert all(r.ok for r in client.run_command("true"))
    assert fresh_sshd.connections()
    client.close()
    deadline = time.monotonic() + 10
    while fresh_sshd.connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh_sshd.connections() == []
    # the workers themselves are the caller's and still serve other clients
    assert len(dask_client.scheduler_info()["workers"]) == 2


@pytest.mark.timeout(90)
def test_dask_worker_killed_mid_run_fails_only_its_hosts(sshd_farm, client_options):
    import os
    import signal
    import threading

    # a cluster of its own: the killed worker's replacement must not leak into other tests
    with _local_cluster() as cluster, \
            distributed.Client(cluster) as dask_client:
        hosts = sshd_farm.hosts[:4]
        with ShardedClient(hosts, executor=dask_client, batch_size=1, port=sshd_farm.port,
                           **client_options) as client:
            assert all(r.ok for r in client.run_command("true"))
            before = dask_client.run(os.getpid)  # {worker address: pid}
            victim = sorted(before.items())[0][1]
            killer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
            killer.start()
            started = time.monotonic()
            results = client.run_command("sleep 2; echo done")
            killer.join()
            # a task pinned to the dead worker would wait for it forever: it must not
            assert time.monotonic() - started < 30
            lost = [r for r in results if r.exception is not None]
            finished = [r for r in results if r.exception is None]
            assert lost and finished
            assert all(r.stdout == ("done",) for r in finished)
            for record in lost:
                assert isinstance(record.exception, ShardLostError)
                assert record.exception.host == record.host
                assert sorted(record.exception.hosts) == sorted(r.host for r in lost)
            # the nanny restarts the killed worker under a new address: the lost hosts'
            # batches go to it (the least loaded shard) once it has joined
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                workers = set(dask_client.scheduler_info()["workers"])
                if len(workers) == 2 and workers != set(before):
                    break
                time.sleep(0.2)
            joined = set(dask_client.scheduler_info()["workers"]) - set(before)
            assert len(joined) == 1, "the nanny did not restart the worker"
            assert client.shard_count == 1
            again = client.run_command("echo again")
            assert [r.stdout for r in again] == [("again",)] * len(hosts)
            assert client.shard_count == 2
            held = dask_client.run(_batches_held, client._id, workers=list(joined))
            assert list(held.values()) == [len(lost)]


INTERRUPTED_ON_DASK = r"""
import json, sys
import distributed
from pssh.sharded import ShardedClient

if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    dask_client = distributed.Client(options.pop("scheduler"))
    client = ShardedClient(options.pop("hosts"), executor=dask_client, batch_size=1, **options)
    print("ready", flush=True)
    try:
        client.run_command("sleep 60")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(3)
"""


@pytest.mark.timeout(90)
def test_dask_ctrl_c_ends_every_session_while_the_workers_live_on(dask_client, fresh_sshd,
                                                                  client_options, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys

    from embedded_server.proctree import reaped
    from test_sharded_interrupt import REPO_ROOT, _named, _wait_for

    options = dict(client_options, hosts=[fresh_sshd.host] * 4, port=fresh_sshd.port,
                   scheduler=dask_client.scheduler.address)
    script = tmp_path / "interrupted_on_dask.py"
    script.write_text(INTERRUPTED_ON_DASK)
    with reaped(subprocess.Popen([sys.executable, str(script), json.dumps(options)],
                                 env=dict(os.environ, PYTHONPATH=REPO_ROOT), text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as proc:
        assert proc.stdout.readline().strip() == "ready"
        assert _wait_for(lambda: len(_named(fresh_sshd.connections(), "sleep")) == 4, 30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err[-3000:]
    # the workers closed the connections although they keep running (nothing killed them)
    assert _wait_for(lambda: not _named(fresh_sshd.connections(), "sshd"), 10)
    assert len(dask_client.scheduler_info()["workers"]) == 2


@pytest.mark.timeout(60)
def test_dask_break_stops_the_other_hosts_commands(dask_client, fresh_sshd, client_options,
                                                   scratch):
    import os

    from test_sharded_cancel import TICKER, _sizes, _stopped_growing
    from test_sharded_interrupt import _wait_for

    tick_files = [os.path.join(scratch, "dask-ticks-%d" % index) for index in range(1, 4)]
    commands = [("echo first",)] + [(TICKER % path,) for path in tick_files]
    with ShardedClient([fresh_sshd.host] * 4, executor=dask_client, batch_size=1,
                       port=fresh_sshd.port, **client_options) as client:
        for record in client.iter_run_command("%s", host_args=commands):
            assert record.index == 0 and record.stdout == ("first",)
            assert _wait_for(lambda: all(_sizes(tick_files)), 10), "tickers never started"
            break
        # the workers closed the tickers' channels: every ticker ends
        assert _stopped_growing(tick_files, 5), _sizes(tick_files)
        again = client.run_command("echo again")
        assert [r.stdout for r in again] == [("again",)] * 4
