"""SSHClient file transfer against a real sshd: SFTP and SCP, both directions.

The servers log in as the test user (``psshtest`` when run as root), so every remote path is
under a world-writable scratch directory; "remote" files are local files on this machine.
"""
import hashlib
import os
import shutil
import stat

import gevent
import pytest

from pssh.exceptions import SCPError, SFTPIOError
from pssh.single import SSHClient

GUARD = 120
METHODS_UP = ["copy_file", "scp_send"]
METHODS_DOWN = ["copy_remote_file", "scp_recv"]


@pytest.fixture
def client(sshd, user_key):
    c = SSHClient(sshd.host, port=sshd.port, pkey=user_key.private, num_retries=1,
                  timeout=30, allow_agent=False, identity_auth=False)
    try:
        yield c
    finally:
        c.close()


def write(path, data, mode=0o644):
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    return path


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def guarded(func, *args, **kwargs):
    with gevent.Timeout(GUARD, AssertionError("transfer hung for %s s" % GUARD)):
        return func(*args, **kwargs)


def world_readable_tree(root):
    for base, dirs, files in os.walk(root):
        os.chmod(base, 0o777)
        for name in files:
            os.chmod(os.path.join(base, name), 0o666)


# -- sizes and content ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 65536 * 3 + 7])
@pytest.mark.parametrize("up", METHODS_UP)
@pytest.mark.parametrize("down", METHODS_DOWN)
def test_roundtrip_sizes(client, scratch, size, up, down):
    data = os.urandom(size)
    src = write(os.path.join(scratch, "src.bin"), data, 0o640)
    remote = os.path.join(scratch, "remote", "dst.bin")
    guarded(getattr(client, up), src, remote)
    assert open(remote, "rb").read() == data
    assert stat.S_IMODE(os.stat(remote).st_mode) == 0o640
    back = os.path.join(scratch, "back", "x.bin")
    guarded(getattr(client, down), remote, back)
    assert open(back, "rb").read() == data
    assert stat.S_IMODE(os.stat(back).st_mode) == 0o640
    assert not [n for n in os.listdir(os.path.dirname(back)) if "pssh-tmp" in n]


@pytest.mark.parametrize("up,down", [("copy_file", "copy_remote_file"), ("scp_send", "scp_recv")])
def test_64_mib_checksums_and_progress(client, scratch, up, down):
    size = 64 * 1024 * 1024
    src = os.path.join(scratch, "big.bin")
    with open(src, "wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(1 << 20))
    os.chmod(src, 0o644)
    calls = []
    remote = os.path.join(scratch, "r", "big.bin")
    guarded(getattr(client, up), src, remote, progress=lambda *a: calls.append(a))
    assert digest(remote) == digest(src)
    assert calls[-1] == (client.host, remote, size, size)
    assert 32 <= len(calls) <= 80
    assert all(c[3] == size for c in calls)
    done = [c[2] for c in calls]
    assert done == sorted(done)
    calls.clear()
    local = os.path.join(scratch, "l", "big.bin")
    guarded(getattr(client, down), remote, local, progress=lambda *a: calls.append(a))
    assert digest(local) == digest(src)
    assert calls[-1] == (client.host, remote, size, size)


@pytest.mark.parametrize("up,down", [("copy_file", "copy_remote_file"), ("scp_send", "scp_recv")])
def test_names_with_spaces_and_non_ascii(client, scratch, up, down):
    data = bytes(range(256)) * 10
    src = write(os.path.join(scratch, "dir with space", "fïlé ünï €.bin"), data)
    remote = os.path.join(scratch, "rémote dir", "nämé 'quoted' $x.bin")
    guarded(getattr(client, up), src, remote)
    assert open(remote, "rb").read() == data
    local = os.path.join(scratch, "lö cal", "out file.bin")
    guarded(getattr(client, down), remote, local)
    assert open(local, "rb").read() == data


def test_small_progress_called_once_at_completion(client, scratch):
    src = write(os.path.join(scratch, "s.bin"), b"x" * 10)
    calls = []
    client.copy_file(src, os.path.join(scratch, "t.bin"), progress=lambda *a: calls.append(a))
    assert calls == [(client.host, os.path.join(scratch, "t.bin"), 10, 10)]
    calls.clear()
    client.scp_recv(os.path.join(scratch, "t.bin"), os.path.join(scratch, "u.bin"),
                    progress=lambda *a: calls.append(a))
    assert calls == [(client.host, os.path.join(scratch, "t.bin"), 10, 10)]


def test_scp_keeps_mode_and_times(client, scratch):
    src = write(os.path.join(scratch, "t.sh"), b"#!/bin/sh\n", 0o750)
    os.utime(src, (1_000_000_000, 1_100_000_000))
    remote = os.path.join(scratch, "r", "t.sh")
    client.scp_send(src, remote)
    st = os.stat(remote)
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert int(st.st_mtime) == 1_100_000_000
    assert int(st.st_atime) == 1_000_000_000
    local = os.path.join(scratch, "l", "t.sh")
    client.scp_recv(remote, local)
    st = os.stat(local)
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert int(st.st_mtime) == 1_100_000_000


def test_sftp_sets_mode_on_existing_remote_file(client, scratch):
    remote = os.path.join(scratch, "exists.sh")
    client.copy_file(write(os.path.join(scratch, "old.sh"), b"old", 0o666), remote)
    assert stat.S_IMODE(os.stat(remote).st_mode) == 0o666
    src = write(os.path.join(scratch, "new.sh"), b"new", 0o700)
    client.copy_file(src, remote)
    assert open(remote, "rb").read() == b"new"
    assert stat.S_IMODE(os.stat(remote).st_mode) == 0o700


# -- paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("up", METHODS_UP)
def test_relative_remote_path_is_under_home(client, scratch, up, sshd):
    home = os.path.expanduser("~" + sshd.user)
    if not os.path.isdir(home) or not os.access(home, os.W_OK):
        pytest.skip("the login user's home directory is not usable here")
    name = "pssh-test-%s-%s" % (up, os.getpid())
    src = write(os.path.join(scratch, "rel.bin"), b"relative")
    try:
        client.copy_file(src, name + "/sub/rel.bin") if up == "copy_file" else \
            client.scp_send(src, name + "/sub/rel.bin")
        assert open(os.path.join(home, name, "sub", "rel.bin"), "rb").read() == b"relative"
        local = os.path.join(scratch, "back.bin")
        client.copy_remote_file(name + "/sub/rel.bin", local)
        assert open(local, "rb").read() == b"relative"
    finally:
        shutil.rmtree(os.path.join(home, name), ignore_errors=True)


@pytest.mark.parametrize("up", METHODS_UP)
def test_trailing_slash_and_existing_directory_targets(client, scratch, up):
    src = write(os.path.join(scratch, "name.txt"), b"abc")
    target = os.path.join(scratch, "dest")
    os.makedirs(target)
    os.chmod(target, 0o777)
    getattr(client, up)(src, target + "/")
    assert open(os.path.join(target, "name.txt"), "rb").read() == b"abc"
    if up == "copy_file":
        other = os.path.join(scratch, "other")
        os.makedirs(other)
        os.chmod(other, 0o777)
        client.copy_file(src, other)  # an existing directory receives the file
        assert open(os.path.join(other, "name.txt"), "rb").read() == b"abc"


@pytest.mark.parametrize("down", METHODS_DOWN)
def test_download_into_directory_and_relative_local_path(client, scratch, down, monkeypatch):
    remote = write(os.path.join(scratch, "r", "file.txt"), b"data")
    local_dir = os.path.join(scratch, "ldir")
    getattr(client, down)(remote, local_dir + "/")
    assert open(os.path.join(local_dir, "file.txt"), "rb").read() == b"data"
    monkeypatch.chdir(scratch)
    getattr(client, down)(remote, os.path.join("rel", "deeper", "f.txt"))
    assert open(os.path.join(scratch, "rel", "deeper", "f.txt"), "rb").read() == b"data"


def test_directory_requires_recurse(client, scratch):
    local_dir = os.path.join(scratch, "d")
    write(os.path.join(local_dir, "a"), b"a")
    with pytest.raises(ValueError):
        client.copy_file(local_dir, os.path.join(scratch, "x"))
    with pytest.raises(ValueError):
        client.scp_send(local_dir, os.path.join(scratch, "x"))
    with pytest.raises(ValueError):
        client.copy_remote_file(local_dir, os.path.join(scratch, "y"))


def make_tree(root):
    files = {
        "a.txt": b"a" * 10,
        "empty.bin": b"",
        os.path.join("sub", "b.bin"): os.urandom(100000),
        os.path.join("sub", "deep", "c d.txt"): b"spaced",
        os.path.join("ünï", "é.txt"): b"unicode",
    }
    for rel, data in files.items():
        write(os.path.join(root, rel), data)
    for empty in ("empty_dir", os.path.join("sub", "empty2")):
        os.makedirs(os.path.join(root, empty))
    world_readable_tree(root)
    return files


def check_tree(root, files):
    for rel, data in files.items():
        assert open(os.path.join(root, rel), "rb").read() == data, rel
    assert os.path.isdir(os.path.join(root, "empty_dir"))
    assert os.listdir(os.path.join(root, "empty_dir")) == []
    assert os.path.isdir(os.path.join(root, "sub", "empty2"))


@pytest.mark.parametrize("up,down", [("copy_file", "copy_remote_file"), ("scp_send", "scp_recv")])
def test_recursive_tree_with_empty_dirs(client, scratch, up, down):
    src = os.path.join(scratch, "tree")
    files = make_tree(src)
    remote = os.path.join(scratch, "remote", "copy")
    guarded(getattr(client, up), src, remote, recurse=True)
    check_tree(remote, files)
    world_readable_tree(remote)
    local = os.path.join(scratch, "local", "copy")
    guarded(getattr(client, down), remote, local, recurse=True)
    check_tree(local, files)


def test_sftp_put_get_mkdir_with_own_session(client, scratch):
    sftp = client._make_sftp()
    target = os.path.join(scratch, "m1", "m2", "m3")
    client.mkdir(sftp, target)
    client.mkdir(sftp, target)  # exists: fine
    assert os.path.isdir(target)
    src = write(os.path.join(scratch, "p.bin"), b"put")
    client.sftp_put(sftp, src, os.path.join(target, "p.bin"))
    client.sftp_get(sftp, os.path.join(target, "p.bin"), os.path.join(scratch, "g.bin"))
    assert open(os.path.join(scratch, "g.bin"), "rb").read() == b"put"
    client.copy_file(src, os.path.join(target, "q.bin"), sftp=sftp)
    assert open(os.path.join(target, "q.bin"), "rb").read() == b"put"


def test_concurrent_transfers_on_one_client(client, scratch):
    srcs = [write(os.path.join(scratch, "c%d.bin" % i), os.urandom(300000)) for i in range(4)]
    greenlets = [gevent.spawn(client.copy_file, s, s + ".up") for s in srcs[:2]]
    greenlets += [gevent.spawn(client.scp_send, s, s + ".up") for s in srcs[2:]]
    gevent.joinall(greenlets, raise_error=True, timeout=GUARD)
    for s in srcs:
        assert open(s + ".up", "rb").read() == open(s, "rb").read()


# -- failures ------------------------------------------------------------------------------

@pytest.mark.parametrize("down,exc", [("copy_remote_file", SFTPIOError), ("scp_recv", SCPError)])
def test_missing_remote_file(client, scratch, down, exc):
    missing = os.path.join(scratch, "nope", "missing.bin")
    local = os.path.join(scratch, "local.bin")
    with pytest.raises(exc) as info:
        guarded(getattr(client, down), missing, local)
    assert info.value.host == client.host
    assert info.value.path == missing
    assert missing in str(info.value) and client.host in str(info.value)
    assert not os.path.exists(local)
    assert not [n for n in os.listdir(scratch) if "pssh-tmp" in n]


@pytest.mark.parametrize("up", METHODS_UP)
def test_missing_local_file(client, scratch, up):
    missing = os.path.join(scratch, "no-such-dir", "f.bin")
    with pytest.raises(FileNotFoundError) as info:
        getattr(client, up)(missing, os.path.join(scratch, "x.bin"))
    assert info.value.filename == missing
    assert client.host in str(info.value)


@pytest.mark.parametrize("up,exc", [("copy_file", SFTPIOError), ("scp_send", SCPError)])
def test_remote_permission_denied(client, scratch, up, exc, sshd):
    if sshd.user == "root":
        pytest.skip("the login user is root: nothing is unwritable")
    locked = os.path.join(scratch, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    src = write(os.path.join(scratch, "f.bin"), b"data")
    target = os.path.join(locked, "f.bin")
    with pytest.raises(exc) as info:
        guarded(getattr(client, up), src, target)
    assert info.value.host == client.host and info.value.path == target
    with pytest.raises(exc):
        guarded(getattr(client, up), src, os.path.join(locked, "new", "f.bin"))


def test_local_permission_denied_download(client, scratch, sshd):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere locally")
    remote = write(os.path.join(scratch, "r.bin"), b"data")
    locked = os.path.join(scratch, "llocked")
    os.makedirs(locked, mode=0o555)
    with pytest.raises(PermissionError):
        client.copy_remote_file(remote, os.path.join(locked, "f.bin"))


@pytest.mark.parametrize("down", METHODS_DOWN)
def test_unreadable_remote_file(client, scratch, down, sshd):
    if sshd.user == "root":
        pytest.skip("the login user is root: everything is readable")
    remote = write(os.path.join(scratch, "secret.bin"), b"secret", 0o600)
    if os.stat(remote).st_uid == os.geteuid() and os.geteuid() != 0:
        pytest.skip("the login user owns the file")
    with pytest.raises((SFTPIOError, SCPError)) as info:
        getattr(client, down)(remote, os.path.join(scratch, "out.bin"))
    assert info.value.path == remote
    assert not os.path.exists(os.path.join(scratch, "out.bin"))


def test_gcm_batching_native_and_other_channels_still_work(client, backend_name):
    """The native backend encrypts AES-GCM packets whole (src/gcm.pxi) once a transfer ran:
    every other use of the connection keeps working (the server authenticates each packet)."""
    import hashlib as _hashlib

    from pssh.core.backend import backend
    state = backend.enable_gcm_batching()
    if backend_name == "native" and not os.environ.get("PSSH_NO_GCM_BATCH"):
        assert state is True, state
    data = os.urandom(3 * 1024 * 1024 + 1)
    host_out = client.run_command("sha256sum")
    host_out.stdin.write(data)
    host_out.stdin.close()
    client.wait_finished(host_out, timeout=GUARD)
    lines = list(host_out.stdout)
    assert lines[0].split()[0] == _hashlib.sha256(data).hexdigest()


def test_gcm_batching_command_output_intact(client, scratch):
    """Decryption batching (src/gcm.pxi) must hand out exactly what the server sent: several
    MiB of command output on stdout and stderr at once, compared byte for byte."""
    import base64

    from pssh.core.backend import backend
    backend.enable_gcm_batching()
    data = os.urandom(6 * 1024 * 1024 + 5)
    src = write(os.path.join(scratch, "out.bin"), data)
    host_out = client.run_command("base64 -w 1000 '%s'; base64 -w 333 '%s' >&2" % (src, src))
    out = "".join(guarded(list, host_out.stdout))
    err = "".join(guarded(list, host_out.stderr))
    client.wait_finished(host_out, timeout=GUARD)
    assert host_out.exit_code == 0
    assert base64.b64decode(out) == data
    assert base64.b64decode(err) == data
