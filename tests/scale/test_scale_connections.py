"""1000 concurrent SSH connections from one ParallelSSHClient (opt-in: --scale or PSSH_SCALE=1).

10 real sshd servers on 127.0.1.x, each listed 100 times: every list position gets its own
connection, so one run_command holds 1000 authenticated sessions at once. The run is made
once per module; the tests check its results.
"""

import gc
import os
import resource
import time

import gevent
import pytest

from embedded_server import ServerFarm
from pssh.parallel import ParallelSSHClient

pytestmark = pytest.mark.scale

N_SERVERS = 10
PER_SERVER = 100
N_CONNECTIONS = N_SERVERS * PER_SERVER
BOUND = 180          # seconds for the whole run (connect, auth, exec, join)
SOCKET_SLACK = 5     # sockets the process may keep besides the connections (hub, resolver)


def open_sockets():
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + name).startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


@pytest.fixture(scope="module")
def scale_farm(authorized_keys):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < N_CONNECTIONS + 200:
        pytest.skip("hard RLIMIT_NOFILE %d is too low for %d connections" % (hard, N_CONNECTIONS))
    farm = ServerFarm(N_SERVERS, first_ip="127.0.1.2", shared_host_key=True,
                      authorized_keys=authorized_keys)
    try:
        farm.start()
        yield farm
    finally:
        farm.stop_all()


@pytest.fixture(scope="module")
def thousand_run(scale_farm, user_key):
    """Run ``echo ok`` plus the client's source port on 1000 connections; close; measure."""
    hosts = [host for host in scale_farm.hosts for _ in range(PER_SERVER)]
    sockets_before = open_sockets()
    client = ParallelSSHClient(hosts, port=scale_farm.port, pkey=user_key.private,
                               pool_size=N_CONNECTIONS, num_retries=1, retry_delay=0.1,
                               timeout=120, allow_agent=False, identity_auth=False)
    started = time.monotonic()
    output = client.run_command("echo ok; echo $SSH_CLIENT | cut -d' ' -f2",
                                stop_on_errors=False)
    all_started = time.monotonic() - started
    sockets_open = open_sockets() - sockets_before
    client.join(output, timeout=BOUND)
    elapsed = time.monotonic() - started
    results = []
    with gevent.Timeout(60, AssertionError("reading buffered output hung")):
        for host_out in output:
            lines = list(host_out.stdout) if host_out.exception is None else None
            results.append((host_out.host, host_out.exception, lines, host_out.exit_code))
    del output, host_out
    client.close()
    gc.collect()
    sockets_after_close = open_sockets() - sockets_before
    del client
    gc.collect()
    sockets_after_del = open_sockets() - sockets_before
    print("\n%d connections: all started in %.1f s, joined in %.1f s; sockets open %d, "
          "after close %d, after del %d" % (N_CONNECTIONS, all_started, elapsed, sockets_open,
                                          sockets_after_close, sockets_after_del))
    return dict(hosts=hosts, results=results, elapsed=elapsed, sockets_open=sockets_open,
                sockets_after_close=sockets_after_close, sockets_after_del=sockets_after_del)


def test_thousand_concurrent_connections_succeed(thousand_run, record_property):
    record_property("elapsed_s", round(thousand_run["elapsed"], 1))
    results = thousand_run["results"]
    assert [r[0] for r in results] == thousand_run["hosts"]
    failures = [(host, exc) for host, exc, _, _ in results if exc is not None]
    assert failures == []
    assert [r[3] for r in results] == [0] * N_CONNECTIONS
    assert {r[2][0] for r in results} == {"ok"}
    # 1000 distinct TCP connections (server address, client source port)
    assert len({(r[0], r[2][1]) for r in results}) == N_CONNECTIONS
    assert thousand_run["elapsed"] < BOUND


def test_all_connections_open_at_once(thousand_run):
    # run_command returned with every session authenticated and kept for reuse
    assert thousand_run["sockets_open"] >= N_CONNECTIONS


def test_close_releases_sockets(thousand_run):
    assert thousand_run["sockets_after_close"] <= SOCKET_SLACK


def test_sockets_released_once_client_is_gone(thousand_run):
    assert thousand_run["sockets_after_del"] <= SOCKET_SLACK
