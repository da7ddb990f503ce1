"""Integration-test helpers: talk to the embedded sshd with ssh2-python directly."""

import socket

import pytest


class SSH2Connection(object):
    """A blocking ssh2-python session to one server, for checking the harness itself."""

    def __init__(self, host, port, timeout=10):
        from ssh2.session import Session

        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.session = Session()
        self.session.set_timeout(int(timeout * 1000))
        self.session.handshake(self.sock)

    def auth_key(self, user, key, passphrase=""):
        self.session.userauth_publickey_fromfile(user, key.private, passphrase=passphrase)
        return self

    def run(self, command):
        """Run ``command``; return (exit status, stdout bytes, stderr bytes)."""
        chan = self.session.open_session()
        chan.execute(command)
        out, err = b"", b""
        while True:
            size, data = chan.read()
            if size <= 0:
                break
            out += data
        while True:
            size, data = chan.read_stderr()
            if size <= 0:
                break
            err += data
        chan.wait_eof()
        chan.close()
        chan.wait_closed()
        return chan.get_exit_status(), out, err

    def close(self):
        try:
            self.session.disconnect()
        except Exception:
            pass
        self.sock.close()


@pytest.fixture
def ssh2_connect():
    """``ssh2_connect(host, port, timeout=10) -> SSH2Connection``; all closed after the test."""
    conns = []

    def connect(host, port, timeout=10):
        conn = SSH2Connection(host, port, timeout)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def known_hosts(sshd, tmp_path):
    """A known_hosts file holding the session server's host key."""
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line() + "\n")
    return str(path)


@pytest.fixture
def client(sshd, user_key):
    """A single SSHClient to the session server, closed after the test."""
    from single_client import connect
    c = connect(sshd, user_key)
    yield c
    c.close()
