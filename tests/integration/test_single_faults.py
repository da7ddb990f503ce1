"""SSHClient connection faults: each ends in its specific exception, within its timeout."""

import builtins
import errno
import socket
import threading
import time

import gevent
import pytest

from embedded_server import free_port, ipv6_available
from pssh.exceptions import (
    ConnectionError, ConnectionLostError, ConnectionRefusedError, HandshakeError,
    NoIPv6AddressFoundError, PSSHError, SessionError, Timeout, UnknownHostError)
from pssh.single import SSHClient

CONNECT_TIMEOUT = 20  # generous: a loaded CI host can take seconds to handshake
READ_TIMEOUT = 30
SLACK = 3


def connect(host, port, key, **kwargs):
    opts = dict(port=port, pkey=key.private, num_retries=1, retry_delay=0.1,
                timeout=CONNECT_TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(host, **opts)


class SilentListener:
    """Accepts TCP connections (kernel backlog) and never sends a byte; counts connections."""

    def __init__(self, reply=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.accepted = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            if self.reply is not None:
                try:
                    conn.sendall(self.reply)
                    conn.close()
                except OSError:
                    pass

    def close(self):
        # shutdown() wakes the accept() of the thread; close() alone may not
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_listener():
    listener = SilentListener()
    yield listener
    listener.close()


# -- resolving and connecting --------------------------------------------------------------------

def test_unresolvable_host(user_key):
    started = time.monotonic()
    with pytest.raises(UnknownHostError) as info:
        connect("nonexistent.invalid", 22, user_key, timeout=2)
    assert time.monotonic() - started < 2 + SLACK
    assert info.value.host == "nonexistent.invalid"
    assert "nonexistent.invalid" in str(info.value)
    assert isinstance(info.value.__cause__, socket.gaierror)


def test_refused_port_is_not_retried(user_key):
    port = free_port("127.0.0.1")
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError) as info:
        connect("127.0.0.1", port, user_key, num_retries=3, retry_delay=2)
    assert time.monotonic() - started < 1.5  # no retry_delay was slept
    exc = info.value
    assert isinstance(exc, builtins.ConnectionRefusedError)
    assert isinstance(exc, builtins.ConnectionError)
    assert isinstance(exc, ConnectionError)
    assert exc.errno == errno.ECONNREFUSED
    assert (exc.host, exc.port) == ("127.0.0.1", port)
    assert "127.0.0.1" in str(exc)


def test_silent_server_times_out(user_key, silent_listener):
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        connect("127.0.0.1", silent_listener.port, user_key, timeout=1)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1 + SLACK
    assert isinstance(info.value, builtins.TimeoutError)
    assert info.value.host == "127.0.0.1"
    assert "127.0.0.1" in str(info.value)
    assert len(silent_listener.accepted) <= 1


def test_silent_server_retried_then_times_out(user_key, silent_listener):
    started = time.monotonic()
    with pytest.raises(Timeout):
        connect("127.0.0.1", silent_listener.port, user_key, timeout=0.5, num_retries=2,
                retry_delay=0.1)
    assert time.monotonic() - started < 2 * 0.5 + 0.1 + SLACK
    # the handshake timeout was retried with a new TCP connection
    deadline = time.monotonic() + 2
    while len(silent_listener.accepted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # the accept thread may lag the kernel: bounded poll
    assert len(silent_listener.accepted) == 2


def test_server_sends_garbage_handshake_error_retried(user_key):
    listener = SilentListener(reply=b"HTTP/1.0 400 Bad Request\r\n\r\n")
    try:
        started = time.monotonic()
        with pytest.raises(HandshakeError) as info:
            connect("127.0.0.1", listener.port, user_key, timeout=2, num_retries=2,
                    retry_delay=0.1)
        assert time.monotonic() - started < 2 * 2 + SLACK
        exc = info.value
        assert isinstance(exc, ConnectionError) and isinstance(exc, SessionError)
        assert exc.host == "127.0.0.1" and exc.port == listener.port
        assert exc.cause is not None
        deadline = time.monotonic() + 2
        while len(listener.accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the accept thread may lag the kernel: bounded poll
        assert len(listener.accepted) == 2
    finally:
        listener.close()


def test_ipv6_loopback(make_sshd, user_key):
    if not ipv6_available():
        pytest.skip("no IPv6 on this host")
    server = make_sshd(listen_ip="::1")
    with connect("::1", server.port, user_key, user=server.user) as c:
        out = c.run_command("echo v6", read_timeout=READ_TIMEOUT)
        assert list(out.stdout) == ["v6"]
        assert c.sock.family == socket.AF_INET6


def test_ipv6_only_with_ipv4_literal(user_key):
    started = time.monotonic()
    with pytest.raises(NoIPv6AddressFoundError) as info:
        connect("127.0.0.1", 22, user_key, ipv6_only=True, num_retries=3, retry_delay=2)
    assert time.monotonic() - started < 1
    assert info.value.host == "127.0.0.1"


# -- failures of an established connection --------------------------------------------------------

def test_server_killed_mid_command(fresh_sshd, user_key):
    c = connect(fresh_sshd.host, fresh_sshd.port, user_key, user=fresh_sshd.user)
    out = c.run_command("echo started; sleep 30", read_timeout=READ_TIMEOUT)
    lines = out.stdout
    assert next(lines) == "started"
    started = time.monotonic()
    fresh_sshd.kill()
    with pytest.raises((ConnectionLostError, SessionError)) as info:
        with gevent.Timeout(10, AssertionError("reading hung after the server died")):
            list(lines)
    assert info.value.host == fresh_sshd.host
    assert fresh_sshd.host in str(info.value)
    with pytest.raises((ConnectionLostError, SessionError)):
        c.wait_finished(out, timeout=10)
    assert time.monotonic() - started < 10
    # the client is unusable now, and says so instead of hanging
    with pytest.raises(PSSHError):
        with gevent.Timeout(10, AssertionError("run_command hung on a dead connection")):
            c.run_command("echo again")
    c.close()


def test_server_killed_while_idle(fresh_sshd, user_key):
    c = connect(fresh_sshd.host, fresh_sshd.port, user_key, user=fresh_sshd.user)
    fresh_sshd.kill()
    started = time.monotonic()
    with pytest.raises(PSSHError) as info:
        with gevent.Timeout(10, AssertionError("run_command hung on a dead connection")):
            c.run_command("echo hi")
    assert time.monotonic() - started < CONNECT_TIMEOUT + SLACK
    assert info.value.host == fresh_sshd.host
    c.close()


def test_new_client_after_server_restart(fresh_sshd, user_key):
    c = connect(fresh_sshd.host, fresh_sshd.port, user_key, user=fresh_sshd.user)
    c.close()
    fresh_sshd.restart()
    with connect(fresh_sshd.host, fresh_sshd.port, user_key, user=fresh_sshd.user) as c2:
        out = c2.run_command("echo back", read_timeout=READ_TIMEOUT)
        assert list(out.stdout) == ["back"]


def test_server_stopped_refuses_quickly(fresh_sshd, user_key):
    port = fresh_sshd.port
    fresh_sshd.stop()
    with pytest.raises(ConnectionRefusedError):
        connect("127.0.0.1", port, user_key, num_retries=2, retry_delay=5)


def test_every_resolved_address_is_tried(sshd):
    # a refusing first address moves on to the next one at once (no retry delay)
    from pssh.connection import connect as _connect
    from pssh.core.hub import deadline_after
    port = sshd.port
    addresses = [(socket.AF_INET, ("127.0.0.2", port)), (socket.AF_INET, ("127.0.0.1", port))]
    started = time.monotonic()
    sock, waiter = _connect.open_socket("multi", port, addresses, deadline_after(5))
    try:
        assert sock.getpeername() == ("127.0.0.1", port)
        assert time.monotonic() - started < 1
    finally:
        waiter.close()
        sock.close()
    with pytest.raises(ConnectionRefusedError) as info:
        _connect.open_socket("multi", port, addresses[:1], deadline_after(5))
    assert info.value.host == "multi"
