"""File transfer failures: server killed mid-transfer, full remote disk.

Every failure must be a specific pssh exception naming host and path, within a bounded time,
and a failed download must leave nothing under the final name.
"""
import os
import subprocess
import tempfile

import gevent
import pytest

from pssh.exceptions import ConnectionLostError, SCPError, SFTPIOError, Timeout
from pssh.single import SSHClient

GUARD = 60
SIZE = 48 * 1024 * 1024


def connect(srv, key, **kwargs):
    opts = dict(port=srv.port, pkey=key.private, num_retries=1, timeout=20,
                allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(srv.host, **opts)


def big_file(path, size=SIZE):
    with open(path, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            fh.write(block)
    os.chmod(path, 0o644)
    return path


@pytest.mark.parametrize("method,exc", [("copy_file", SFTPIOError), ("scp_send", SCPError),
                                        ("copy_remote_file", SFTPIOError),
                                        ("scp_recv", SCPError)])
def test_server_killed_mid_transfer(fresh_sshd, user_key, scratch, method, exc):
    client = connect(fresh_sshd, user_key)
    src = big_file(os.path.join(scratch, "src.bin"))
    upload = method in ("copy_file", "scp_send")
    target = os.path.join(scratch, "out", "dst.bin")
    remote = target if upload else src
    killed = []

    def progress(host, path, done, total):
        if done < total and not killed:
            killed.append(done)
            fresh_sshd.kill()

    args = (src, target) if upload else (src, target)
    with gevent.Timeout(GUARD, AssertionError("transfer hung after the server was killed")):
        with pytest.raises((exc, Timeout)) as info:
            getattr(client, method)(*args, progress=progress)
    assert killed, "the transfer finished before the server could be killed"
    err = info.value
    assert isinstance(err, exc), "expected %s, got %r" % (exc.__name__, err)
    assert err.host == client.host
    assert err.path == remote
    assert client.host in str(err) and remote in str(err)
    assert isinstance(err.cause, ConnectionLostError) or "lost" in str(err) or \
        "closed" in str(err)
    if not upload:
        assert not os.path.exists(target)
        assert not os.path.isdir(os.path.dirname(target)) or \
            not [n for n in os.listdir(os.path.dirname(target)) if "pssh-tmp" in n]
    client.close()


@pytest.fixture
def tiny_tmpfs():
    """A 1 MiB tmpfs the server's login user can write (root only; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tempfile.mkdtemp(prefix="pssh-full-")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", path],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        os.rmdir(path)
        pytest.skip("cannot mount a tmpfs here: %s" % proc.stdout.decode(errors="replace"))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path])
        os.rmdir(path)


@pytest.mark.parametrize("method,exc", [("copy_file", SFTPIOError), ("scp_send", SCPError)])
def test_remote_disk_full(sshd, user_key, scratch, tiny_tmpfs, method, exc):
    client = connect(sshd, user_key)
    src = big_file(os.path.join(scratch, "src.bin"), 4 * 1024 * 1024)
    target = os.path.join(tiny_tmpfs, "full.bin")
    with gevent.Timeout(GUARD, AssertionError("transfer to a full disk hung")):
        with pytest.raises(exc) as info:
            getattr(client, method)(src, target)
    assert info.value.host == client.host
    assert info.value.path == target
    assert target in str(info.value)
    if method == "copy_file":  # SFTP writes a temporary file and removes it on failure
        assert os.listdir(tiny_tmpfs) == []
    # The connection is still usable afterwards.
    small = os.path.join(scratch, "small.bin")
    with open(small, "wb") as fh:
        fh.write(b"ok")
    getattr(client, method)(small, os.path.join(scratch, "after.bin"))
    assert open(os.path.join(scratch, "after.bin"), "rb").read() == b"ok"
    client.close()


def test_local_disk_full_download_leaves_no_file(sshd, user_key, scratch, tiny_tmpfs):
    client = connect(sshd, user_key)
    src = big_file(os.path.join(scratch, "src.bin"), 4 * 1024 * 1024)
    target = os.path.join(tiny_tmpfs, "down.bin")
    for method in ("copy_remote_file", "scp_recv"):
        with pytest.raises(OSError) as info:
            getattr(client, method)(src, target)
        assert client.host in str(info.value)
        assert os.listdir(tiny_tmpfs) == []
    client.close()


def test_failures_do_not_leak_channels(make_sshd, user_key, scratch):
    """sshd allows MaxSessions channels per connection: failed transfers must give theirs back
    (parallel-ssh leaked SFTP sessions, TRAPS 11)."""
    srv = make_sshd(extra_config={"MaxSessions": "3"})
    client = connect(srv, user_key)
    src = os.path.join(scratch, "f.bin")
    with open(src, "wb") as fh:
        fh.write(b"data")
    os.chmod(src, 0o644)
    locked = os.path.join(scratch, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    for _ in range(6):
        if srv.user != "root":
            with pytest.raises(SCPError):
                client.scp_send(src, os.path.join(locked, "x.bin"))
        with pytest.raises(SCPError):
            client.scp_recv(os.path.join(scratch, "missing.bin"), os.path.join(scratch, "o"))
        with pytest.raises(SFTPIOError):
            client.copy_remote_file(os.path.join(scratch, "missing.bin"),
                                    os.path.join(scratch, "o"))
    client.scp_send(src, os.path.join(scratch, "ok.bin"))
    client.copy_file(src, os.path.join(scratch, "ok2.bin"))
    host_out = client.run_command("echo alive")
    client.wait_finished(host_out, timeout=GUARD)
    assert list(host_out.stdout) == ["alive"]
    client.close()
