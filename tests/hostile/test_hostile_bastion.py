"""A lying bastion: asked for a ``direct-tcpip`` tunnel to one target, it connects to another
server (an impostor with another host key), or accepts the tunnel and never sends a byte.

The bastion is a small paramiko server in threads of this process; the target and the impostor
are real OpenSSH servers. The host key check of the target must catch the impostor, naming the
target as the user named it; a silent tunnel must end in a ``Timeout`` naming the target.
"""
import logging
import socket
import threading
import time

import gevent
import paramiko
import pytest

from pssh.connection import tunnel
from pssh.core.hub import deadline_after
from pssh.exceptions import HostKeyError, ProxyError, Timeout
from pssh.single import SSHClient

TIMEOUT = 6
SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"
_BASTION_KEY = []


def _bastion_key():
    if not _BASTION_KEY:
        _BASTION_KEY.append(paramiko.RSAKey.generate(2048))
    return _BASTION_KEY[0]


class _Interface(paramiko.ServerInterface):
    def __init__(self, bastion):
        self.bastion = bastion

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid, origin, destination):
        self.bastion.asked.append(destination)
        if self.bastion.mute:
            self.bastion.stopping.wait(15)  # the open is answered only when the test ends
        return paramiko.OPEN_SUCCEEDED


class LyingBastion:
    """Accepts any public key; every ``direct-tcpip`` open succeeds and is relayed to
    ``redirect_to`` (host, port) whatever was asked, or, with None, left silent. A ``mute``
    one never answers the open at all."""

    def __init__(self, redirect_to=None, mute=False, window=None):
        self.redirect_to = redirect_to
        self.mute = mute
        self.window = window  # the channel window it advertises (paramiko's default if None)
        self.asked = []
        self.key = _bastion_key()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()
        self.stopping = threading.Event()
        self._transports = []
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def known_hosts_line(self):
        return "[%s]:%d %s %s" % (self.host, self.port, self.key.get_name(),
                                  self.key.get_base64())

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            transport = paramiko.Transport(conn, **(
                {"default_window_size": self.window} if self.window else {}))
            transport.add_server_key(self.key)
            self._transports.append(transport)
            transport.start_server(server=_Interface(self))
            self._spawn(self._accept_channels, transport)

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_channels(self, transport):
        while not self.stopping.is_set() and transport.is_active():
            channel = transport.accept(0.2)
            if channel is None or self.redirect_to is None:
                continue  # silent: the channel stays open, nothing is ever sent
            upstream = socket.create_connection(self.redirect_to, timeout=5)
            upstream.settimeout(None)
            self._spawn(self._pump, channel.recv, upstream.sendall, upstream.shutdown)
            self._spawn(self._pump, upstream.recv, channel.sendall, channel.shutdown)

    def _pump(self, recv, send, shutdown):
        try:
            while not self.stopping.is_set():
                data = recv(65536)
                if not data:
                    break
                send(data)
        except (OSError, EOFError):
            pass
        finally:
            try:
                shutdown(socket.SHUT_WR)
            except (OSError, EOFError):
                pass

    def connected(self):
        """Whether any client connection to this bastion is still up."""
        return any(transport.is_active() for transport in self._transports)

    def stop(self):
        self.stopping.set()
        self._listener.close()
        for transport in self._transports:
            transport.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def lying_bastion():
    made = []

    def factory(redirect_to=None, mute=False, window=None):
        bastion = LyingBastion(redirect_to, mute, window)
        made.append(bastion)
        return bastion

    yield factory
    for bastion in made:
        bastion.stop()


def _connect(target, key, bastion, **kwargs):
    options = dict(port=target.port, user=target.user, pkey=key.private, num_retries=1,
                   timeout=TIMEOUT, allow_agent=False, identity_auth=False,
                   proxy_host=bastion.host, proxy_port=bastion.port)
    options.update(kwargs)
    return SSHClient(target.host, **options)


def _known_hosts(tmp_path, *lines):
    path = tmp_path / "known_hosts"
    path.write_text("".join(line + "\n" for line in lines))
    return [str(path)]


@pytest.fixture
def target_and_impostor(sshd_farm):
    target, impostor = sshd_farm[0], sshd_farm[1]
    assert target.host_key_fingerprint != impostor.host_key_fingerprint
    assert target.port == impostor.port  # same port: only the address differs
    return target, impostor


def test_the_lie_is_real_without_host_key_checking(target_and_impostor, lying_bastion,
                                                   user_key):
    target, impostor = target_and_impostor
    bastion = lying_bastion((impostor.host, impostor.port))
    with _connect(target, user_key, bastion, host_key_policy="off") as client:
        assert list(client.run_command(SERVER_ADDRESS).stdout) == [impostor.host]
    assert bastion.asked == [(target.host, target.port)]


@pytest.mark.parametrize("policy", ["strict", None])
def test_known_target_catches_the_impostor_and_names_the_target(target_and_impostor,
                                                                lying_bastion, user_key,
                                                                tmp_path, policy):
    target, impostor = target_and_impostor
    bastion = lying_bastion((impostor.host, impostor.port))
    known = _known_hosts(tmp_path, bastion.known_hosts_line(), target.known_hosts_line())
    with pytest.raises(HostKeyError) as info:
        _connect(target, user_key, bastion, host_key_policy=policy, known_hosts=known)
    error = info.value
    assert (error.host, error.port, error.reason) == (target.host, target.port, "changed")
    assert error.fingerprint == impostor.host_key_fingerprint
    assert error.known_fingerprints == [target.host_key_fingerprint]
    text = str(error)
    assert "%s:%s" % (target.host, target.port) in text
    assert bastion.host not in text and impostor.host not in text
    assert bastion.asked == [(target.host, target.port)]


def test_unknown_target_strict_refuses_default_accepts(target_and_impostor, lying_bastion,
                                                       user_key, tmp_path, caplog):
    target, impostor = target_and_impostor
    bastion = lying_bastion((impostor.host, impostor.port))
    known = _known_hosts(tmp_path, bastion.known_hosts_line())
    with pytest.raises(HostKeyError) as info:
        _connect(target, user_key, bastion, host_key_policy="strict", known_hosts=known)
    assert (info.value.host, info.value.reason) == (target.host, "unknown")
    assert info.value.fingerprint == impostor.host_key_fingerprint
    # The default policy cannot tell an impostor from a host it never saw: it connects, and
    # says which key it accepted for which name.
    with caplog.at_level(logging.INFO, logger="pssh.hostkeys"):
        with _connect(target, user_key, bastion, known_hosts=known) as client:
            assert list(client.run_command(SERVER_ADDRESS).stdout) == [impostor.host]
    assert any("accepted unknown host key" in r.getMessage()
               and impostor.host_key_fingerprint in r.getMessage()
               and "[%s]:%s" % (target.host, target.port) in r.getMessage()
               for r in caplog.records)


def test_silent_tunnel_times_out_naming_the_target(sshd_farm, lying_bastion, user_key):
    target = sshd_farm[0]
    bastion = lying_bastion(None)
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        _connect(target, user_key, bastion, timeout=2)
    took = time.monotonic() - started
    assert took < 2 + 3, took
    assert (info.value.host, info.value.port) == (target.host, target.port)
    assert "%s:%s" % (target.host, target.port) in str(info.value)
    assert bastion.asked == [(target.host, target.port)]
    # The failed target's tunnel is closed, and with it the bastion connection it alone used,
    # however long the bastion keeps the tunnel open.
    assert _wait_until(lambda: not bastion.connected(), 5)


def _wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return predicate()


def test_unanswered_tunnel_open_fails_naming_the_target(sshd_farm, lying_bastion, user_key):
    target = sshd_farm[0]
    bastion = lying_bastion(mute=True)
    started = time.monotonic()
    with pytest.raises(ProxyError) as info:
        _connect(target, user_key, bastion, timeout=2)
    assert time.monotonic() - started < 2 + 3
    assert (info.value.host, info.value.port) == (target.host, target.port)
    assert "%s:%s" % (target.host, target.port) in str(info.value)
    assert "timed out" in str(info.value)


def test_tunnel_stalled_by_a_shut_window_ends_with_its_target(lying_bastion, user_key,
                                                              monkeypatch):
    monkeypatch.setattr(tunnel, "_STALL_CHECK_SECONDS", 0.3)
    # Silent and never reading: the window it grants is never topped up.
    bastion = lying_bastion(None, window=32768)
    client = SSHClient(bastion.host, port=bastion.port, user="anyone", pkey=user_key.private,
                       num_retries=1, timeout=TIMEOUT, allow_agent=False, identity_auth=False,
                       host_key_policy="off")
    hop = tunnel.Bastion(client)
    try:
        target_end = hop.open("127.0.0.2", 22, deadline_after(TIMEOUT))
        sent = 0
        with gevent.Timeout(10):
            while sent < 1 << 20:  # well past the window: the tunnel's writer is stalled
                try:
                    sent += target_end.send(b"x" * 65536)
                except BlockingIOError:
                    if sent > 32768 and hop.tunnels:
                        break
                gevent.sleep(0.01)
        assert hop.tunnels and sent > 32768
        target_end.close()  # the target connection gives up
        assert _wait_until(lambda: not hop.tunnels, 3)
        assert _wait_until(lambda: not bastion.connected(), 3)
    finally:
        client.close()
