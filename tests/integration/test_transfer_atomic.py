"""SFTP uploads replace an existing target in one step: a failed upload never leaves a
truncated file where the previous one was; new files are created directly; links and
unwritable directories keep in-place writes."""
import os

import gevent
import pytest

from pssh.exceptions import SFTPIOError, Timeout
from single_client import connect

GUARD = 60


def write(path, data, mode=0o644):
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    return path


def leftovers(directory):
    return [name for name in os.listdir(directory) if ".pssh-" in name]


def upload(server, key, src, target):
    client = connect(server, key)
    try:
        client.copy_file(src, target)
    finally:
        client.close()


def test_upload_replaces_the_file_and_leaves_nothing_else(sshd, user_key, scratch):
    src = write(os.path.join(scratch, "src.txt"), b"new content\n")
    target = write(os.path.join(scratch, "dst.txt"), b"previous\n", 0o666)
    before = os.stat(target).st_ino
    upload(sshd, user_key, src, target)
    assert open(target, "rb").read() == b"new content\n"
    assert os.stat(target).st_ino != before  # a new file renamed over the old one
    assert os.stat(target).st_mode & 0o777 == 0o644
    assert leftovers(scratch) == []


def test_failed_upload_keeps_the_previous_file(fresh_sshd, user_key, scratch):
    src = os.path.join(scratch, "big.bin")
    with open(src, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(48):
            fh.write(block)
    os.chmod(src, 0o644)
    target = write(os.path.join(scratch, "config"), b"the previous, complete file\n", 0o666)
    client = connect(fresh_sshd, user_key)
    killed = []

    def progress(host, path, done, total):
        if done < total and not killed:
            killed.append(done)
            fresh_sshd.kill()

    with gevent.Timeout(GUARD, AssertionError("upload hung after the server was killed")):
        with pytest.raises((SFTPIOError, Timeout)):
            client.copy_file(src, target, progress=progress)
    client.close()
    assert killed
    assert open(target, "rb").read() == b"the previous, complete file\n"


def test_upload_through_a_symlink_writes_the_linked_file(sshd, user_key, scratch):
    src = write(os.path.join(scratch, "src.txt"), b"through the link\n")
    real = write(os.path.join(scratch, "real.txt"), b"old\n", 0o666)
    link = os.path.join(scratch, "link.txt")
    os.symlink(real, link)
    upload(sshd, user_key, src, link)
    assert os.path.islink(link)
    assert open(real, "rb").read() == b"through the link\n"


def test_file_in_an_unwritable_directory_is_written_in_place(sshd, user_key, scratch):
    if sshd.user == "root":
        pytest.skip("root writes into any directory")
    locked = os.path.join(scratch, "locked")
    os.makedirs(locked)
    target = write(os.path.join(locked, "writable.txt"), b"old\n", 0o666)
    os.chmod(locked, 0o755)  # owned by the test's user: the login user cannot add files
    src = write(os.path.join(scratch, "src.txt"), b"in place\n")
    upload(sshd, user_key, src, target)
    assert open(target, "rb").read() == b"in place\n"
    assert leftovers(locked) == []


def test_without_the_libssh2_binding_uploads_are_written_in_place(sshd, user_key, scratch,
                                                                   monkeypatch):
    from pssh.transfer import sftp as _sftp
    monkeypatch.setattr(_sftp, "LIB", None)
    src = write(os.path.join(scratch, "src.txt"), b"fallback\n")
    target = write(os.path.join(scratch, "dst.txt"), b"previous\n", 0o666)
    before = os.stat(target).st_ino
    upload(sshd, user_key, src, target)
    assert open(target, "rb").read() == b"fallback\n"
    assert os.stat(target).st_ino == before


def test_new_file_is_created_directly(sshd, user_key, scratch):
    src = write(os.path.join(scratch, "src.txt"), b"fresh\n")
    target = os.path.join(scratch, "new", "dst.txt")  # its directory is created too
    upload(sshd, user_key, src, target)
    assert open(target, "rb").read() == b"fresh\n"
    assert leftovers(os.path.dirname(target)) == []



@pytest.mark.parametrize("backend_name", ["_pure", "_native"])
def test_forgetting_an_sftp_handle_marks_it_closed_without_leaking(sshd, user_key, scratch,
                                                                   backend_name):
    """Both backends give up a handle of a dead connection the same way: its ``_closed`` flag
    is set so its deallocator never calls libssh2, and no reference is leaked (the pure
    backend used to keep the object alive forever)."""
    import ctypes
    import sys
    from ssh2.sftp import LIBSSH2_FXF_READ
    from pssh.core import libssh2
    from pssh.transfer.sftp import Ops
    backend = pytest.importorskip("pssh." + backend_name)
    assert libssh2.LIB is not None, libssh2.unavailable_reason
    path = write(os.path.join(scratch, "held.txt"), b"data\n")
    client = connect(sshd, user_key)
    try:
        ops = Ops(client)
        sftp = ops.make_sftp()
        handle = ops.call(sftp.open, path.encode(), LIBSSH2_FXF_READ, 0, sftp=sftp)
        before = sys.getrefcount(handle)
        backend.forget_sftp_handle(handle)
        assert sys.getrefcount(handle) == before
        flag = ctypes.c_int.from_address(id(handle) + libssh2._SFTP_HANDLE_CLOSED).value
        assert flag == 1
        del handle
    finally:
        client.close()
