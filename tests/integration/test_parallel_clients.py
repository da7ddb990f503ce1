"""ParallelSSHClient's per-host clients: the hosts setter, HostConfig merging, connect_auth,
cmds, the pool, import paths and the open-file limit check (real sshd where connections
are made)."""

import os
import subprocess
import sys
import textwrap

import gevent
import pytest

from embedded_server import free_port
from pssh.config import HostConfig
from pssh.exceptions import (
    AuthenticationError, ConnectionRefusedError, HostConfigError, ResourceLimitError)
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient

CONNECT_TIMEOUT = 10
GUARD = 30
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"


def make_client(hosts, port, key, **kwargs):
    opts = dict(port=port, pkey=key.private, num_retries=1, retry_delay=0.1,
                timeout=CONNECT_TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return ParallelSSHClient(hosts, **opts)


def read_lines(iterator, guard=GUARD):
    with gevent.Timeout(guard, AssertionError("output iteration hung for %s s" % guard)):
        return list(iterator)


def run(client, command=SERVER_ADDRESS, **kwargs):
    """run_command, join, and return (output, stdout lines per host)."""
    output = client.run_command(command, **kwargs)
    client.join(output, timeout=GUARD)
    return output, [read_lines(host_out.stdout) if host_out.client else None
                    for host_out in output]


# -- hosts ---------------------------------------------------------------------------------------

def test_hosts_setter_reuses_unchanged_positions_only(sshd_farm, user_key):
    a, b, c = sshd_farm.hosts[:3]
    with make_client([a, b, c], sshd_farm.port, user_key) as client:
        first, lines = run(client)
        assert lines == [[a], [b], [c]]
        old = [host_out.client for host_out in first]

        client.hosts = [a, c, b]
        assert client.hosts == [a, c, b]
        second, lines = run(client)
        assert lines == [[a], [c], [b]]
        new = [host_out.client for host_out in second]
        assert new[0] is old[0]                       # (0, a) unchanged: same connection
        assert all(n is not o for n in new[1:] for o in old)   # moved hosts reconnect

        client.hosts = [a]
        third, lines = run(client)
        assert lines == [[a]] and third[0].client is old[0]

        # (1, c) and (2, b) were dropped with the previous list: growing again connects anew
        client.hosts = [a, c, b]
        fourth, lines = run(client)
        assert lines == [[a], [c], [b]]
        assert fourth[0].client is old[0]
        assert fourth[1].client is not new[1] and fourth[2].client is not new[2]
        # output of replaced hosts stays readable
        assert [first[1].host, first[1].exit_code] == [b, 0]


def test_hosts_setter_materialises_iterators(sshd_farm, user_key):
    a, b = sshd_farm.hosts[:2]
    with make_client([a], sshd_farm.port, user_key) as client:
        client.hosts = (host for host in [a, b])
        assert client.hosts == [a, b] and isinstance(client.hosts, list)
        for _ in range(2):   # not exhausted by the first run
            _, lines = run(client)
            assert lines == [[a], [b]]


def test_constructor_materialises_iterators(sshd_farm, user_key):
    hosts = sshd_farm.hosts[:3]
    with make_client(iter(hosts), sshd_farm.port, user_key) as client:
        assert client.hosts == hosts
        _, lines = run(client)
        assert lines == [[h] for h in hosts]


@pytest.mark.parametrize("bad, error", [("127.0.0.1", TypeError), (b"127.0.0.1", TypeError),
                                        (None, ValueError)])
def test_invalid_hosts_rejected(bad, error):
    with pytest.raises(error):
        ParallelSSHClient(bad)
    client = ParallelSSHClient(["127.0.0.1"])
    with pytest.raises(error):
        client.hosts = bad
    assert client.hosts == ["127.0.0.1"]


def test_construction_makes_no_connection(refused_port):
    # lazy: nothing listens on the port, yet constructing succeeds
    client = ParallelSSHClient(["127.0.0.1"] * 3, port=refused_port, num_retries=1)
    assert client.cmds is None
    assert client.get_last_output() is None
    assert client.join() is None
    assert client.finished() is True


@pytest.fixture
def refused_port():
    return free_port("127.0.0.1")


# -- HostConfig ----------------------------------------------------------------------------------

def test_host_config_overrides_port_user_alias(sshd_farm, user_key, refused_port):
    login = sshd_farm[0].user
    hosts = sshd_farm.hosts[:4]
    config = [HostConfig(port=sshd_farm.port, user=login, alias="full"),
              HostConfig(alias="client-defaults"),
              HostConfig(user=login, alias="user-only"),
              HostConfig(port=sshd_farm.port, alias="port-only")]
    with make_client(hosts, refused_port, user_key, user="pssh-no-such-user",
                     host_config=config) as client:
        output, lines = run(client, "whoami", stop_on_errors=False)
        assert [host_out.alias for host_out in output] == [c.alias for c in config]
        assert lines[0] == [login]
        assert (output[0].client.port, output[0].client.user) == (sshd_farm.port, login)
        # client-level port and user: nobody listens
        assert isinstance(output[1].exception, ConnectionRefusedError)
        assert output[1].exception.port == refused_port
        # user overridden, port still the client's
        assert isinstance(output[2].exception, ConnectionRefusedError)
        assert output[2].exception.port == refused_port
        # port overridden, user still the client's unknown user
        assert isinstance(output[3].exception, AuthenticationError)
        assert output[3].exception.host == hosts[3]


def test_host_config_false_values_override_true_client_values(sshd_farm, user_key):
    hosts = sshd_farm.hosts[:2]
    config = [HostConfig(keepalive_seconds=0, allow_agent=False, identity_auth=False, timeout=3),
              HostConfig()]
    with make_client(hosts, sshd_farm.port, user_key, keepalive_seconds=60, allow_agent=True,
                     identity_auth=True, host_config=config) as client:
        output, lines = run(client)
        assert lines == [[hosts[0]], [hosts[1]]]
        special, default = output[0].client, output[1].client
        assert special.keepalive_seconds == 0
        assert special.allow_agent is False
        assert special.identity_auth is False
        assert special.timeout == 3
        assert default.keepalive_seconds == 60
        assert default.allow_agent is True
        assert default.identity_auth is True
        assert default.timeout == CONNECT_TIMEOUT


def test_host_config_private_key_overrides_client_key(sshd_farm, user_key, unauthorized_key):
    hosts = sshd_farm.hosts[:2]
    config = [HostConfig(private_key=user_key.private), HostConfig()]
    with make_client(hosts, sshd_farm.port, unauthorized_key, host_config=config) as client:
        output, lines = run(client, stop_on_errors=False)
        assert lines[0] == [hosts[0]]
        assert isinstance(output[1].exception, AuthenticationError)
        assert output[1].exception.host == hosts[1]


def test_host_config_must_be_a_list(sshd_farm):
    hosts = sshd_farm.hosts[:2]
    for bad in ({hosts[0]: {"port": 22}}, (HostConfig(), HostConfig()), HostConfig()):
        with pytest.raises(HostConfigError):
            ParallelSSHClient(hosts, host_config=bad)


def test_host_config_length_must_match_hosts(sshd_farm):
    hosts = sshd_farm.hosts[:3]
    for n in (1, 2, 4):
        with pytest.raises(ValueError):
            ParallelSSHClient(hosts, host_config=[HostConfig() for _ in range(n)])


# -- connect_auth, cmds, pool -------------------------------------------------------------------

def test_connect_auth_returns_greenlets_of_clients_reused_by_run(sshd_farm, user_key):
    hosts = sshd_farm.hosts + [sshd_farm.hosts[0]]
    with make_client(hosts, sshd_farm.port, user_key) as client:
        greenlets = client.connect_auth()
        assert len(greenlets) == len(hosts)
        gevent.joinall(greenlets, raise_error=True, timeout=GUARD)
        clients = [greenlet.get() for greenlet in greenlets]
        assert all(isinstance(c, SSHClient) for c in clients)
        assert [c.host for c in clients] == hosts
        assert len({id(c) for c in clients}) == len(hosts)
        output, lines = run(client)
        assert [host_out.client for host_out in output] == clients
        assert lines == [[h] for h in hosts]


def test_connect_auth_failure_surfaces_in_its_greenlet(sshd_farm, user_key, refused_port):
    hosts = sshd_farm.hosts[:2]
    config = [HostConfig(), HostConfig(port=refused_port)]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        greenlets = client.connect_auth()
        gevent.joinall(greenlets, timeout=GUARD)
        assert isinstance(greenlets[0].value, SSHClient)
        assert isinstance(greenlets[1].exception, ConnectionRefusedError)
        assert greenlets[1].exception.host == hosts[1]


def test_cmds_holds_greenlets_of_last_run(sshd_farm, user_key):
    hosts = sshd_farm.hosts[:3]
    with make_client(hosts, sshd_farm.port, user_key) as client:
        assert client.cmds is None
        output = client.run_command("echo one")
        assert len(client.cmds) == len(hosts)
        assert all(isinstance(g, gevent.Greenlet) for g in client.cmds)
        assert [g.get() for g in client.cmds] == output
        assert client.get_last_output() == output   # the same HostOutput objects
        later = client.run_command("echo two")
        assert [g.get() for g in client.cmds] == later
        client.join(timeout=GUARD)
        assert [read_lines(o.stdout) for o in client.get_last_output()] == [["two"]] * 3


def test_small_pool_still_runs_every_host(sshd_farm, user_key):
    hosts = sshd_farm.hosts + list(reversed(sshd_farm.hosts))
    with make_client(hosts, sshd_farm.port, user_key, pool_size=2) as client:
        assert client.pool.size == 2
        output, lines = run(client, "%s; exit 3" % SERVER_ADDRESS)
        assert lines == [[h] for h in hosts]
        assert [host_out.exit_code for host_out in output] == [3] * len(hosts)


# -- import paths ------------------------------------------------------------------------------

def test_import_paths_give_the_same_class():
    import pssh
    from pssh import ParallelSSHClient as top
    from pssh.clients import ParallelSSHClient as clients
    from pssh.clients.native import ParallelSSHClient as native
    from pssh.clients.native.parallel import ParallelSSHClient as native_parallel
    assert top is clients is native is native_parallel is ParallelSSHClient
    assert pssh.ParallelSSHClient is ParallelSSHClient


# -- open-file limit -----------------------------------------------------------------------------

def run_with_nofile(soft, hard, body):
    """Run ``body`` in a fresh interpreter whose RLIMIT_NOFILE is (soft, hard); return stdout."""
    code = textwrap.dedent("""
        import resource, sys
        sys.path.insert(0, %r)
        resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d))
        from pssh import ParallelSSHClient
        from pssh.exceptions import ResourceLimitError
    """) % (REPO_ROOT, soft, hard) + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_resource_limit_error_when_hard_limit_too_low():
    out = run_with_nofile(100, 100, """
        try:
            ParallelSSHClient(["127.0.0.1"] * 1000, pool_size=1000)
        except ResourceLimitError as exc:
            print("raised", isinstance(exc, OSError))
            print(str(exc))
        else:
            print("not raised")
        print("limit", resource.getrlimit(resource.RLIMIT_NOFILE))
        # the check is about concurrency: a small pool fits
        client = ParallelSSHClient(["127.0.0.1"] * 1000, pool_size=10)
        print("small pool ok", len(client.hosts))
        # growing the host list re-checks
        client = ParallelSSHClient(["127.0.0.1"], pool_size=1000)
        try:
            client.hosts = ["127.0.0.1"] * 1000
        except ResourceLimitError:
            print("setter raised")
    """)
    lines = out.splitlines()
    assert lines[0] == "raised True", out
    assert "100" in lines[1] and "1000" in lines[1], out   # names the limit and the demand
    assert lines[2] == "limit (100, 100)"
    assert lines[3] == "small pool ok 1000"
    assert lines[4] == "setter raised"


def test_soft_limit_raised_up_to_hard_limit():
    out = run_with_nofile(100, 4096, """
        client = ParallelSSHClient(["127.0.0.1"] * 1000, pool_size=1000)
        print(*resource.getrlimit(resource.RLIMIT_NOFILE))
    """)
    soft, hard = map(int, out.split())
    assert hard == 4096
    assert 1000 < soft <= 4096


def test_resource_limit_error_is_a_pssh_error():
    from pssh.exceptions import PSSHError
    assert issubclass(ResourceLimitError, PSSHError)
    assert issubclass(ResourceLimitError, OSError)
