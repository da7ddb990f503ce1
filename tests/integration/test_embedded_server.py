"""Tests of the test harness itself: real sshd servers, reached with ssh2-python directly."""

import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from embedded_server import (
    OpenSSHServer, ServerFarm, SSHServerError, free_port, ipv6_available, loopback_addresses,
    port_is_free, read_banner,
)
from embedded_server import proctree

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sha256_fingerprint(session):
    # Not session.hostkey_hash(): ssh2-python reads that digest as a NUL-terminated C string, so
    # it comes back truncated or with trailing garbage. Hash the raw host key blob instead.
    blob, _kind = session.hostkey()
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def test_exec_echo(sshd, user_key, ssh2_connect):
    conn = ssh2_connect(sshd.host, sshd.port).auth_key(sshd.user, user_key)
    status, out, err = conn.run("echo hi")
    assert (status, out, err) == (0, b"hi\n", b"")


def test_stderr_and_exit_status(sshd, user_key, ssh2_connect):
    conn = ssh2_connect(sshd.host, sshd.port).auth_key(sshd.user, user_key)
    assert conn.run("echo oops >&2; exit 3") == (3, b"", b"oops\n")


def test_rsa_and_encrypted_keys(sshd, rsa_key, encrypted_key, encrypted_key_passphrase, ssh2_connect):
    conn = ssh2_connect(sshd.host, sshd.port).auth_key(sshd.user, rsa_key)
    assert conn.run("echo rsa")[1] == b"rsa\n"
    conn = ssh2_connect(sshd.host, sshd.port).auth_key(sshd.user, encrypted_key, encrypted_key_passphrase)
    assert conn.run("echo enc")[1] == b"enc\n"


def test_unauthorized_key_refused(sshd, unauthorized_key, ssh2_connect):
    from ssh2.exceptions import AuthenticationError
    conn = ssh2_connect(sshd.host, sshd.port)
    with pytest.raises(AuthenticationError):
        conn.auth_key(sshd.user, unauthorized_key)


def test_host_key_fingerprint(sshd, ssh2_connect):
    conn = ssh2_connect(sshd.host, sshd.port)
    assert sha256_fingerprint(conn.session) == sshd.host_key_fingerprint
    assert sshd.host_key_fingerprint.startswith("SHA256:")


def test_banner_and_config(sshd):
    assert read_banner(sshd.host, sshd.port).startswith(b"SSH-2.0-OpenSSH")
    with open(sshd.config_path) as fh:
        config = fh.read()
    for line in ("PidFile none", "UsePAM no", "StrictModes no", "MaxStartups 2000", "MaxSessions 200",
                 "Subsystem sftp internal-sftp", "ListenAddress %s:%d" % (sshd.host, sshd.port)):
        assert line in config
    mode = os.stat(sshd.authorized_keys_path).st_mode & 0o777
    assert mode == (0o644 if os.geteuid() == 0 else 0o600)


def test_sftp_subsystem(sshd, user_key, ssh2_connect):
    conn = ssh2_connect(sshd.host, sshd.port).auth_key(sshd.user, user_key)
    sftp = conn.session.sftp_init()
    attrs = sftp.stat(sshd.workdir)
    assert attrs.permissions & 0o040000  # a directory


def test_many_sessions_on_one_connection(sshd, user_key, ssh2_connect):
    # MaxSessions 200: more than the default 10 channels open at once on one connection
    conn = ssh2_connect(sshd.host, sshd.port).auth_key(sshd.user, user_key)
    chans = [conn.session.open_session() for _ in range(15)]
    for i, chan in enumerate(chans):
        chan.execute("echo %d" % i)
    for i, chan in enumerate(chans):
        assert chan.read()[1] == b"%d\n" % i
        chan.close()


def test_kill_breaks_connected_session(fresh_sshd, user_key, ssh2_connect):
    conn = ssh2_connect(fresh_sshd.host, fresh_sshd.port, timeout=5).auth_key(fresh_sshd.user, user_key)
    chan = conn.session.open_session()
    chan.execute("echo started; sleep 60")
    assert chan.read()[1] == b"started\n"
    children = fresh_sshd.connections()
    assert len(children) >= 2  # per-connection sshd + the command
    fresh_sshd.kill()
    assert not fresh_sshd.running
    with pytest.raises(Exception):
        # the connection is gone: reading hits EOF/reset, then opening a channel must fail
        chan.read()
        conn.session.open_session()
        raise AssertionError("session still usable after kill()")
    deadline = time.monotonic() + 5
    while any(proctree.is_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(proctree.is_alive(p) for p in children)
    with pytest.raises(OSError):
        socket.create_connection((fresh_sshd.host, fresh_sshd.port), timeout=2).close()


def test_kill_then_start_again(fresh_sshd, user_key, ssh2_connect):
    fingerprint = fresh_sshd.host_key_fingerprint
    fresh_sshd.kill()
    fresh_sshd.start()
    conn = ssh2_connect(fresh_sshd.host, fresh_sshd.port).auth_key(fresh_sshd.user, user_key)
    assert conn.run("echo back")[1] == b"back\n"
    assert sha256_fingerprint(conn.session) == fingerprint


def test_restart_same_port_and_host_key(fresh_sshd, user_key, ssh2_connect):
    port, fingerprint, old_pid = fresh_sshd.port, fresh_sshd.host_key_fingerprint, fresh_sshd.pid
    conn = ssh2_connect(fresh_sshd.host, fresh_sshd.port).auth_key(fresh_sshd.user, user_key)
    fresh_sshd.restart()
    assert fresh_sshd.running and fresh_sshd.pid != old_pid and fresh_sshd.port == port
    conn2 = ssh2_connect(fresh_sshd.host, fresh_sshd.port).auth_key(fresh_sshd.user, user_key)
    assert conn2.run("echo again")[1] == b"again\n"
    assert sha256_fingerprint(conn2.session) == fingerprint
    with pytest.raises(Exception):  # restart stops the old connections too
        conn.run("echo old")


def test_stop_is_idempotent_and_cleans_up(authorized_keys):
    srv = OpenSSHServer(authorized_keys=authorized_keys).start()
    workdir, pid = srv.workdir, srv.pid
    assert os.path.isdir(workdir)
    srv.stop()
    srv.stop()
    assert not srv.running and not os.path.exists(workdir)
    assert not proctree.is_alive(pid)
    assert read_banner(srv.host, srv.port, timeout=0.5) is None


def test_context_manager(authorized_keys, user_key, ssh2_connect):
    with OpenSSHServer(authorized_keys=authorized_keys) as srv:
        assert ssh2_connect(srv.host, srv.port).auth_key(srv.user, user_key).run("true")[0] == 0
        pid = srv.pid
    assert not proctree.is_alive(pid)


def test_changed_host_key(fresh_sshd, user_key, ssh2_connect):
    old = fresh_sshd.host_key_fingerprint
    new = fresh_sshd.replace_host_key(kind="ecdsa")
    assert new != old
    fresh_sshd.restart()
    conn = ssh2_connect(fresh_sshd.host, fresh_sshd.port).auth_key(fresh_sshd.user, user_key)
    assert sha256_fingerprint(conn.session) == new


def test_reuse_host_key_on_new_server(fresh_sshd, make_sshd, ssh2_connect):
    other = make_sshd(host_key=fresh_sshd.host_key_path)
    assert other.host_key_fingerprint == fresh_sshd.host_key_fingerprint
    assert sha256_fingerprint(ssh2_connect(other.host, other.port).session) == fresh_sshd.host_key_fingerprint


def test_start_failure_reports_sshd_log(make_sshd):
    srv = make_sshd(start=False, extra_config="NoSuchOption yes")
    with pytest.raises(SSHServerError) as info:
        srv.start()
    assert "NoSuchOption" in str(info.value)
    assert not srv.running


def test_port_in_use_reported(make_sshd):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        srv = make_sshd(start=False, port=blocker.getsockname()[1])
        with pytest.raises(SSHServerError) as info:
            srv.start(timeout=5)
    assert "Address already in use" in str(info.value) or "bind" in str(info.value).lower()


def test_extra_config_overrides_defaults(make_sshd):
    srv = make_sshd(extra_config={"MaxSessions": "3", "LogLevel": "VERBOSE"})
    with open(srv.config_path) as fh:
        lines = fh.read().splitlines()
    assert "MaxSessions 3" in lines and "MaxSessions 200" not in lines
    assert "LogLevel VERBOSE" in lines and "LogLevel ERROR" not in lines


def test_farm_of_three(authorized_keys, user_key, ssh2_connect):
    with ServerFarm(3, authorized_keys=authorized_keys) as farm:
        assert farm.hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        assert len({srv.port for srv in farm}) == 1
        for srv in farm:
            conn = ssh2_connect(srv.host, srv.port).auth_key(srv.user, user_key)
            # SSH_CONNECTION = "client_ip client_port server_ip server_port"
            status, out, _ = conn.run("echo $SSH_CONNECTION")
            assert out.split()[2:] == [srv.host.encode(), str(srv.port).encode()]
        pids = [srv.pid for srv in farm]
    assert not any(proctree.is_alive(p) for p in pids)


def test_session_farm_fixture(sshd_farm, user_key, ssh2_connect):
    assert sshd_farm.hosts == ["127.0.0.%d" % i for i in range(2, 7)]
    fingerprints = set()
    for srv in sshd_farm:
        conn = ssh2_connect(srv.host, srv.port).auth_key(srv.user, user_key)
        assert conn.run("echo ok")[1] == b"ok\n"
        fingerprints.add(sha256_fingerprint(conn.session))
    assert len(fingerprints) == 5  # distinct host keys


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 ::1 on this kernel")
def test_ipv6(authorized_keys, user_key, ssh2_connect):
    with OpenSSHServer(listen_ip="::1", authorized_keys=authorized_keys) as srv:
        assert srv.hostport == "[::1]:%d" % srv.port
        conn = ssh2_connect(srv.host, srv.port).auth_key(srv.user, user_key)
        assert conn.run("echo v6")[1] == b"v6\n"


def test_free_port_helpers():
    port = free_port()
    assert 1024 <= port <= 65535 and port_is_free("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        assert not port_is_free("127.0.0.1", sock.getsockname()[1])
    assert loopback_addresses(3, "127.0.0.254") == ["127.0.0.254", "127.0.1.1", "127.0.1.2"]


def test_password_user(password_user, user_key, make_sshd, ssh2_connect):
    name, password = password_user
    srv = make_sshd()
    conn = ssh2_connect(srv.host, srv.port)
    conn.session.userauth_password(name, password)
    assert conn.run("whoami")[1] == name.encode() + b"\n"
    # the authorized keys apply to that user too
    conn = ssh2_connect(srv.host, srv.port).auth_key(name, user_key)
    assert conn.run("whoami")[1] == name.encode() + b"\n"


def test_password_auth_can_be_disabled(password_user, make_sshd, ssh2_connect):
    from ssh2.exceptions import AuthenticationError
    name, password = password_user
    srv = make_sshd(password_auth=False)
    conn = ssh2_connect(srv.host, srv.port)
    with pytest.raises(AuthenticationError):
        conn.session.userauth_password(name, password)


def test_cli_demo(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "embedded_server", "--hosts", "2",
                             "--key-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path),
                            universal_newlines=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Ctrl-C"):
            line = proc.stdout.readline()
            assert line, "demo exited early: %s" % proc.stderr.read()
            lines.append(line.strip())
        hostports = lines[:2]
        assert [hp.rsplit(":", 1)[0] for hp in hostports] == ["127.0.0.2", "127.0.0.3"]
        assert any(line == "key: %s" % (tmp_path / "id_ed25519") for line in lines)
        host, port = hostports[0].rsplit(":", 1)
        assert read_banner(host, int(port)).startswith(b"SSH-2.0-")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    assert read_banner(host, int(port), timeout=0.5) is None


def test_start_fails_when_another_server_holds_the_port(user_key):
    # another program answering with a banner on the chosen port must not pass for this sshd
    import socket
    import threading

    from embedded_server import OpenSSHServer, SSHServerError, free_port

    port = free_port("127.0.0.1")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen(8)
    stop = threading.Event()

    def answer():
        squatter.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = squatter.accept()
            except OSError:
                continue
            conn.sendall(b"SSH-2.0-Squatter\r\n")
            conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    server = OpenSSHServer(listen_ip="127.0.0.1", port=port, authorized_keys=[user_key.public])
    try:
        with pytest.raises(SSHServerError):
            server.start(timeout=10)
    finally:
        server.stop()
        stop.set()
        thread.join(5)
        squatter.close()
