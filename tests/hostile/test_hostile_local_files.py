"""The local side of transfers under attack or accident: a source file that shrinks during its
upload, remote files whose mode would make the download world-writable or setuid, remote
names at the file-name length limit. Real OpenSSH sshd, both backends."""
import os
import stat as stat_mod

import gevent
import pytest

from pssh.exceptions import SCPError, SFTPIOError
from pssh.single import SSHClient
from toolkit import transfer_child

GUARD = 60
SIZE = 32 * 1024 * 1024


def write_random(path, size):
    with open(path, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            fh.write(block)
    os.chmod(path, 0o644)
    return path


def connect(srv, key):
    return SSHClient(srv.host, port=srv.port, pkey=key.private, num_retries=1, timeout=20,
                     allow_agent=False, identity_auth=False)


@pytest.mark.parametrize("method, error", [("copy_file", SFTPIOError), ("scp_send", SCPError)])
def test_source_truncated_mid_upload_fails_that_host_only(sshd, user_key, scratch, method,
                                                         error):
    """Was: SIGBUS killed the whole process at the first read past the new end."""
    shrinking = write_random(os.path.join(scratch, "shrinking.bin"), SIZE)
    intact = write_random(os.path.join(scratch, "intact.bin"), SIZE)
    jobs = [{"method": method, "args": [shrinking, os.path.join(scratch, "out-a.bin")],
             "truncate_to": 1 << 20},
            {"method": method, "args": [intact, os.path.join(scratch, "out-b.bin")]}]
    spec = {"host": sshd.host, "port": sshd.port, "key": user_key.private, "timeout": 20,
            "jobs": jobs}
    code, report, stderr = transfer_child.run(spec, timeout=GUARD)
    assert code == 0, "transfer process died (signal %s): %s" % (-code, stderr[-2000:])
    failed, other = report["results"]
    assert failed["truncated_at"] is not None, "the upload ended before the truncation"
    assert not failed["ok"] and error.__name__ in failed["mro"], failed
    assert failed["host"] == sshd.host and failed["path"] == shrinking
    assert "changed size during upload" in failed["message"]
    if method == "copy_file":  # a new file whose upload failed is removed (SCP writes in place)
        assert not os.path.exists(os.path.join(scratch, "out-a.bin"))
    assert other["ok"], other
    with open(intact, "rb") as mine, open(os.path.join(scratch, "out-b.bin"), "rb") as theirs:
        assert mine.read() == theirs.read()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


@pytest.mark.parametrize("method", ["copy_remote_file", "scp_recv"])
@pytest.mark.parametrize("remote_mode, local_mode", [(0o777, 0o755), (0o666, 0o644),
                                                     (0o4755, 0o755), (0o2775, 0o755),
                                                     (0o1777, 0o755)], ids=oct)
def test_download_mode_is_masked(sshd, user_key, scratch, umask_022, method, remote_mode,
                                 local_mode):
    """Was: the remote bits exactly (world-writable with 0666/0777)."""
    remote = os.path.join(scratch, "remote.bin")
    with open(remote, "wb") as fh:
        fh.write(b"mode")
    os.chmod(remote, remote_mode)
    local = os.path.join(scratch, "local", "got.bin")
    client = connect(sshd, user_key)
    with gevent.Timeout(GUARD):
        getattr(client, method)(remote, local)
    assert stat_mod.S_IMODE(os.stat(local).st_mode) == local_mode
    client.close()


# libssh2 reads SCP header lines into 256 bytes: "C0644 SIZE NAME\n" limits SCP names.
@pytest.mark.parametrize("method, length", [("copy_remote_file", 255), ("scp_recv", 240)])
def test_download_of_a_name_at_the_length_limit(sshd, user_key, scratch, method, length):
    """Was: ENAMETOOLONG, the temporary name ``.NAME.pssh-tmp-XXXXXXXX`` being 24 bytes
    longer than the name."""
    name = "L" * length
    remote = os.path.join(scratch, name)
    with open(remote, "wb") as fh:
        fh.write(b"long name")
    local_dir = os.path.join(scratch, "local")
    client = connect(sshd, user_key)
    with gevent.Timeout(GUARD):
        getattr(client, method)(remote, os.path.join(local_dir, name))
    assert os.listdir(local_dir) == [name]
    with open(os.path.join(local_dir, name), "rb") as fh:
        assert fh.read() == b"long name"
    client.close()
