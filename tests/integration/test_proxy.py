"""Connections through SSH bastions: direct-tcpip channels on the hub, shared bastions, chains."""
import time

import gevent
import pytest

from pssh.clients import ParallelSSHClient, SSHClient
from pssh.config import HostConfig
from pssh.exceptions import ProxyError

SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"


def _bastion_sessions(bastion):
    """Per-connection sshd processes on the bastion (privsep children count double)."""
    return len(bastion.connections())


def test_single_client_through_bastion(make_sshd, sshd_farm, user_key):
    bastion = make_sshd(listen_ip="127.0.0.1")
    target = sshd_farm[0]
    client = SSHClient(target.host, port=target.port, pkey=user_key.private, num_retries=1,
                       timeout=10, proxy_host=bastion.host, proxy_port=bastion.port)
    out = client.run_command(SERVER_ADDRESS)
    assert list(out.stdout) == [target.host]
    client.wait_finished(out)
    assert out.exit_code == 0
    assert client.host == target.host and client.port == target.port
    client.close()


def test_many_targets_share_one_bastion_connection(make_sshd, sshd_farm, user_key):
    bastion = make_sshd(listen_ip="127.0.0.1")
    hosts = [srv.host for srv in sshd_farm] * 4
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=10, proxy_host=bastion.host,
                               proxy_port=bastion.port)
    output = client.run_command(SERVER_ADDRESS)
    client.join(timeout=30)
    assert [list(o.stdout) for o in output] == [[host] for host in hosts]
    assert all(o.exit_code == 0 for o in output)
    # one connection to the bastion: a handful of sshd processes, not one set per target
    direct = make_sshd(listen_ip="127.0.0.1")
    single = SSHClient(direct.host, port=direct.port, pkey=user_key.private, num_retries=1)
    per_connection = _bastion_sessions(direct)
    assert per_connection >= 1
    assert _bastion_sessions(bastion) <= per_connection + 1
    single.close()
    from pssh.connection.tunnel import _BASTIONS
    held = list(_BASTIONS.values())  # a lingering reference must not keep it connected
    assert held
    client.close()
    # the bastion connection ends with its last tunnel, not at garbage collection
    deadline = time.monotonic() + 10
    while _bastion_sessions(bastion) and time.monotonic() < deadline:
        gevent.sleep(0.1)
    assert _bastion_sessions(bastion) == 0


def test_bastion_refusing_forwarding_fails_fast_with_proxy_error(make_sshd, sshd_farm, user_key):
    bastion = make_sshd(listen_ip="127.0.0.1", extra_config={"AllowTcpForwarding": "no"})
    target = sshd_farm[0]
    started = time.monotonic()
    with pytest.raises(ProxyError) as info:
        SSHClient(target.host, port=target.port, pkey=user_key.private, num_retries=1,
                  timeout=5, proxy_host=bastion.host, proxy_port=bastion.port)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert bastion.host in message and str(bastion.port) in message
    assert target.host in message and str(target.port) in message
    assert info.value.host == target.host


def test_unreachable_bastion_is_a_proxy_error_naming_both(sshd_farm, user_key):
    from embedded_server import free_port
    dead_port = free_port("127.0.0.1")
    target = sshd_farm[0]
    client = ParallelSSHClient([target.host], port=target.port, pkey=user_key.private,
                               num_retries=1, timeout=5, proxy_host="127.0.0.1",
                               proxy_port=dead_port)
    output = client.run_command("true", stop_on_errors=False)
    exc = output[0].exception
    assert isinstance(exc, ProxyError)
    assert "127.0.0.1:%d" % dead_port in str(exc) and target.host in str(exc)


def test_bastion_killed_mid_run_fails_its_hosts(make_sshd, sshd_farm, user_key):
    bastion = make_sshd(listen_ip="127.0.0.1")
    hosts = [srv.host for srv in sshd_farm]
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=5, proxy_host=bastion.host,
                               proxy_port=bastion.port)
    output = client.run_command("echo started; sleep 30")
    for host_out in output:
        assert next(host_out.stdout) == "started"
    bastion.kill()
    started = time.monotonic()
    for host_out in output:
        with pytest.raises(Exception) as info:
            for _ in host_out.stdout:
                pass
            client.join([host_out], timeout=20)
        assert host_out.host in str(info.value) or getattr(info.value, "host", None)
    assert time.monotonic() - started < 20


def test_per_host_proxy_via_host_config(make_sshd, sshd_farm, user_key):
    from embedded_server import free_port
    bastion = make_sshd(listen_ip="127.0.0.1")
    hosts = [srv.host for srv in sshd_farm][:3]
    config = [HostConfig(proxy_host=bastion.host, proxy_port=bastion.port),
              HostConfig(proxy_host="127.0.0.1", proxy_port=free_port("127.0.0.1")),
              HostConfig()]
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=10, host_config=config)
    output = client.run_command(SERVER_ADDRESS, stop_on_errors=False)
    client.join(timeout=30)
    assert list(output[0].stdout) == [hosts[0]]
    assert isinstance(output[1].exception, ProxyError)
    assert list(output[2].stdout) == [hosts[2]]


def test_two_hop_chain(make_sshd, sshd_farm, user_key):
    first = make_sshd(listen_ip="127.0.0.1")
    second = make_sshd(listen_ip="127.0.0.7")
    target = sshd_farm[0]
    chain = "%s@%s:%d,%s@%s:%d" % (first.user, first.host, first.port,
                                   second.user, second.host, second.port)
    client = SSHClient(target.host, port=target.port, pkey=user_key.private, num_retries=1,
                       timeout=10, proxy_jump=chain)
    out = client.run_command("echo $SSH_CONNECTION | cut -d' ' -f1,3")
    # the target is reached from the second hop
    assert list(out.stdout) == ["127.0.0.1 %s" % target.host] or \
        list(out.stdout) == ["%s %s" % (second.host, target.host)]
    client.close()


def test_parallel_client_proxy_jump_and_agent(make_sshd, sshd_farm, user_key):
    from pssh.agent import SSHAgent
    bastion = make_sshd(listen_ip="127.0.0.1")
    agent = SSHAgent()
    agent.add_key(user_key.private)
    hosts = [srv.host for srv in sshd_farm][:3]
    client = ParallelSSHClient(hosts, port=sshd_farm.port, agent=agent, identity_auth=False,
                               num_retries=1, timeout=30,
                               proxy_jump="%s:%d" % (bastion.host, bastion.port))
    output = client.run_command(SERVER_ADDRESS)
    client.join(timeout=60)
    assert [list(o.stdout) for o in output] == [[host] for host in hosts]
    assert bastion.connections()


def test_two_hundred_hosts_through_one_bastion(make_sshd, sshd_farm, user_key):
    bastion = make_sshd(listen_ip="127.0.0.1")
    hosts = [srv.host for srv in sshd_farm] * 40
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=60, pool_size=200,
                               proxy_host=bastion.host, proxy_port=bastion.port)
    output = client.run_command(SERVER_ADDRESS, stop_on_errors=False)
    client.join(timeout=120)
    assert [o.exception for o in output if o.exception] == []
    assert [list(o.stdout) for o in output] == [[host] for host in hosts]
    assert all(o.exit_code == 0 for o in output)
    client.close()


def test_bulk_output_through_one_bastion_read_in_reverse(make_sshd, sshd_farm, user_key):
    """Flow control through the shared bastion: 20 targets each send ~600 KB while the
    client reads one host at a time, last host first; the others' data must wait in their
    windows and tunnels without stalling or losing a line."""
    bastion = make_sshd(listen_ip="127.0.0.1")
    hosts = [srv.host for srv in sshd_farm] * 4
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=20, proxy_host=bastion.host,
                               proxy_port=bastion.port, pool_size=len(hosts))
    try:
        output = client.run_command("seq 1 100000")
        started = time.monotonic()
        with gevent.Timeout(120, AssertionError("bulk output through the bastion stalled")):
            for host_out in reversed(output):
                count = last = 0
                for line in host_out.stdout:
                    count += 1
                    last = line
                assert (count, last) == (100000, "100000"), host_out.host
            client.join(output, timeout=60)
        assert all(o.exit_code == 0 for o in output)
        assert time.monotonic() - started < 120
    finally:
        client.close()


def test_tunnel_writer_wakes_the_bastion_reader(make_sshd, sshd_farm, user_key, monkeypatch):
    """A write into one tunnel can take another tunnel's packets off the bastion socket
    while the shared reader sleeps on that socket; the reader must then be woken (this
    hung about 1 run in 30 with 200 hosts). The write is held, without yielding, until the
    other tunnel's output is on the socket, so the race happens every time."""
    import fcntl
    import struct
    import termios

    from pssh.connection import tunnel

    bastion = make_sshd(listen_ip="127.0.0.1")
    opts = dict(port=sshd_farm.port, pkey=user_key.private, num_retries=1, timeout=10,
                proxy_host=bastion.host, proxy_port=bastion.port)
    quiet = SSHClient(sshd_farm[0].host, **opts)
    talker = SSHClient(sshd_farm[1].host, **opts)
    shared = [b for b in tunnel._BASTIONS.values() if b.client.port == bastion.port]
    assert len(shared) == 1 and len(shared[0].tunnels) == 2
    bastion_sock = shared[0].client.sock

    def unread():
        return struct.unpack("i", fcntl.ioctl(bastion_sock.fileno(), termios.FIONREAD,
                                              b"\0\0\0\0"))[0]

    real_backend = tunnel.backend
    armed = []

    class HeldWrites:
        def __getattr__(self, name):
            return getattr(real_backend, name)

        def write_all(self, *args):
            if armed:
                armed.pop()
                deadline = time.monotonic() + 5
                while not unread() and time.monotonic() < deadline:
                    time.sleep(0.005)  # blocks the hub: the reader cannot run meanwhile
                assert unread(), "the other tunnel's output never reached the bastion socket"
            return real_backend.write_all(*args)

    monkeypatch.setattr(tunnel, "backend", HeldWrites())
    try:
        sink = quiet.run_command("cat > /dev/null")
        output = talker.run_command("sleep 0.5; echo late")
        gevent.sleep(0.1)
        armed.append(True)
        sink.stdin.write("x\n")  # the quiet tunnel's writer now takes the talker's packets
        with gevent.Timeout(8, AssertionError("the bastion reader was never woken")):
            assert list(output.stdout) == ["late"]
        assert not armed
    finally:
        quiet.close()
        talker.close()
