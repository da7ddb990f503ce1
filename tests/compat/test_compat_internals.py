"""2.x internals user code reaches (``eagain``, ``eagain_write``, ``poll``, ``read_output``,
``read_stderr``, ``_connect``, ``_disconnect``, ``_mkdir``, ``_copy_remote_dir``,
``ParallelSSHClient._join``): each does what 2.x's did, over pssh's own implementation."""
import os

import gevent
import pytest
from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN

GUARD = 30


def _connect(server, key, **kwargs):
    from pssh.clients import SSHClient
    opts = dict(port=server.port, user=server.user, pkey=key.private, num_retries=1,
                retry_delay=0.01, timeout=10, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(server.host, **opts)


def test_eagain_and_eagain_write_drive_a_channel_to_the_end(sshd, user_key):
    client = _connect(sshd, user_key)
    try:
        with gevent.Timeout(GUARD, AssertionError("eagain hung")):
            channel = client.eagain(client.session.open_session)
            client.eagain(channel.execute, "wc -c")
            payload = b"x" * (3 * 1024 * 1024)  # more than one window: writes would block
            client.eagain_write(channel.write, payload)
            client.eagain(channel.send_eof)
            received = b""
            while not channel.eof():
                # As 2.x read: a (rc, data) pair is not retried by eagain; poll on EAGAIN.
                size, data = channel.read()
                if size == LIBSSH2_ERROR_EAGAIN:
                    client.poll(timeout=5)
                    continue
                assert size >= 0
                received += data
        assert received.strip() == str(len(payload)).encode()
    finally:
        client.close()


def test_poll_returns_when_libssh2_is_blocked_on_nothing_and_after_timeout(sshd, user_key):
    client = _connect(sshd, user_key)
    try:
        with gevent.Timeout(GUARD, AssertionError("poll hung")):
            client.poll(timeout=0.2)  # nothing pending: returns at once
            channel = client.eagain(client.session.open_session)
            client.eagain(channel.execute, "sleep 5")
            assert channel.read()[0] < 0  # EAGAIN: libssh2 now waits to read
            started = gevent.get_hub().loop.now()
            client.poll(timeout=0.3)
            assert gevent.get_hub().loop.now() - started < 3
    finally:
        client.close()


def test_read_output_and_stderr_yield_byte_lines_of_a_rw_buffer():
    from pssh.clients.native import SSHClient
    from pssh.clients.reader import ConcurrentRWBuffer
    from pssh.exceptions import Timeout
    client = SSHClient.__new__(SSHClient)
    client.host, client.port = "host", 22
    buffer = ConcurrentRWBuffer()

    def writer():
        for chunk in (b"one\r\ntw", b"o\n", b"three"):
            gevent.sleep(0.01)
            buffer.write(chunk)
        buffer.eof.set()

    with gevent.Timeout(GUARD, AssertionError("read_output hung")):
        gevent.spawn(writer)
        assert list(client.read_output(buffer)) == [b"one", b"two", b"three"]
        stalled = ConcurrentRWBuffer()
        stalled.write(b"partial\nrest")
        lines = client.read_stderr(stalled, timeout=0.2)
        assert next(lines) == b"partial"
        with pytest.raises(Timeout):
            next(lines)


def test_disconnect_then_connect_gives_a_working_connection(sshd, user_key):
    client = _connect(sshd, user_key)
    try:
        with gevent.Timeout(GUARD, AssertionError("reconnect hung")):
            client._disconnect()
            assert client.closed
            client._connect(sshd.host, sshd.port)
            assert not client.closed
            output = client.run_command("echo again")
            assert list(output.stdout) == ["again"]
    finally:
        client.close()


def test_mkdir_and_copy_remote_dir(sshd, user_key, scratch, tmp_path):
    client = _connect(sshd, user_key)
    remote = os.path.join(scratch, "tree")
    try:
        with gevent.Timeout(GUARD, AssertionError("transfer hung")):
            sftp = client._make_sftp()
            client._mkdir(sftp, remote + "/sub/deeper")
            assert os.path.isdir(os.path.join(scratch, "tree", "sub", "deeper"))
            with open(os.path.join(scratch, "tree", "top.txt"), "w") as out:
                out.write("top")
            with open(os.path.join(scratch, "tree", "sub", "inner.txt"), "w") as out:
                out.write("inner")
            local = str(tmp_path / "copy")
            os.makedirs(local)
            client._copy_remote_dir([b".", b"..", b"top.txt", b"sub"], remote, local, sftp)
        with open(os.path.join(local, "top.txt")) as got:
            assert got.read() == "top"
        with open(os.path.join(local, "sub", "inner.txt")) as got:
            assert got.read() == "inner"
        assert os.path.isdir(os.path.join(local, "sub", "deeper"))
    finally:
        client.close()


def test_copy_remote_dir_refuses_names_that_leave_the_target(sshd, user_key, scratch,
                                                             tmp_path):
    from pssh.exceptions import UnsafeRemotePathError
    client = _connect(sshd, user_key)
    try:
        with gevent.Timeout(GUARD, AssertionError("transfer hung")):
            sftp = client._make_sftp()
            with pytest.raises(UnsafeRemotePathError) as info:
                client._copy_remote_dir([b"../escape", "a/b"], scratch, str(tmp_path), sftp)
        assert [reason for _, reason in info.value.rejected] == ["contains '/'"] * 2
        assert not os.path.exists(str(tmp_path.parent / "escape"))
    finally:
        client.close()


def test_parallel_join_of_one_host_output(sshd, user_key):
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import Timeout
    client = ParallelSSHClient([sshd.host], port=sshd.port, user=sshd.user,
                               pkey=user_key.private, num_retries=1, timeout=10,
                               allow_agent=False, identity_auth=False)
    try:
        with gevent.Timeout(GUARD, AssertionError("_join hung")):
            host_out = client.run_command("sleep 0.3; exit 3")[0]
            assert client._join(host_out) is host_out
            assert host_out.exit_code == 3
            slow = client.run_command("sleep 5")[0]
            with pytest.raises(Timeout):
                client._join(slow, timeout=0.2)
            assert client._join(None) is None
    finally:
        client.close()


def test_host_args_format_error_of_an_earlier_host_comes_before_the_count_check(sshd, user_key):
    # 2.x formats host by host: with 3 hosts and 2 entries whose first does not fit the format,
    # the TypeError of host 0 is what user code sees, not HostArgumentError for host 2.
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import HostArgumentError
    client = ParallelSSHClient([sshd.host] * 3, port=sshd.port, user=sshd.user,
                               pkey=user_key.private, num_retries=1, allow_agent=False)
    with pytest.raises(TypeError):
        client.run_command("echo %s %s", host_args=[("one",), ("a", "b")])
    with pytest.raises(HostArgumentError):
        client.run_command("echo %s %s", host_args=[("a", "b"), ("c", "d")])
    assert client.cmds is None  # neither started anything
