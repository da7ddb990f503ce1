"""ParallelSSHClient file transfer on a farm of real sshd servers (127.0.0.2 ...).

All servers run on this machine and share its file system, so uploads name a different remote
path per host (copy_args) wherever several hosts are used.
"""
import hashlib
import os

import gevent
import pytest

from pssh.transfer import localfile as _localfile
from pssh.exceptions import HostArgumentError, SCPError, SFTPIOError
from pssh.parallel import ParallelSSHClient

GUARD = 120


@pytest.fixture
def farm_client(sshd_farm, user_key):
    client = ParallelSSHClient(sshd_farm.hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=30, allow_agent=False,
                               identity_auth=False)
    try:
        yield client
    finally:
        client.close()


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    return path


def join(greenlets):
    gevent.joinall(greenlets, raise_error=True, timeout=GUARD)
    assert all(g.ready() for g in greenlets), "transfers still running after %s s" % GUARD


def test_copy_file_with_copy_args_to_every_host(farm_client, scratch):
    data = os.urandom(3 * 1024 * 1024 + 5)
    src = write(os.path.join(scratch, "src.bin"), data, 0o600)
    hosts = farm_client.hosts
    copy_args = [{"name": "h%d" % i} for i in range(len(hosts))]
    calls = []
    greenlets = farm_client.copy_file(src, os.path.join(scratch, "up", "%(name)s", "f.bin"),
                                      copy_args=copy_args, progress=lambda *a: calls.append(a))
    assert len(greenlets) == len(hosts)
    join(greenlets)
    for i in range(len(hosts)):
        path = os.path.join(scratch, "up", "h%d" % i, "f.bin")
        assert open(path, "rb").read() == data
        assert os.stat(path).st_mode & 0o777 == 0o600
    finals = {(c[0], c[2]) for c in calls if c[2] == c[3]}
    assert finals == {(h, len(data)) for h in hosts}


def test_copy_remote_file_suffixes(farm_client, scratch):
    data = b"remote data\n" * 1000
    remote = write(os.path.join(scratch, "remote.txt"), data)
    local = os.path.join(scratch, "down", "local.txt")
    join(farm_client.copy_remote_file(remote, local))
    for host in farm_client.hosts:
        assert open(local + "_" + host, "rb").read() == data
    join(farm_client.copy_remote_file(remote, local, suffix_separator="--"))
    for host in farm_client.hosts:
        assert open(local + "--" + host, "rb").read() == data


def test_copy_remote_file_with_copy_args(farm_client, scratch):
    n = len(farm_client.hosts)
    for i in range(n):
        write(os.path.join(scratch, "r%d.txt" % i), b"file %d" % i)
    join(farm_client.copy_remote_file(os.path.join(scratch, "r%s.txt"),
                                      os.path.join(scratch, "l%s.txt"),
                                      copy_args=[(i,) for i in range(n)]))
    for i in range(n):
        assert open(os.path.join(scratch, "l%d.txt" % i), "rb").read() == b"file %d" % i


def test_scp_send_and_recv_with_copy_args(farm_client, scratch):
    data = os.urandom(500000)
    src = write(os.path.join(scratch, "s.bin"), data, 0o755)
    n = len(farm_client.hosts)
    args = [{"local_file": src, "remote_file": os.path.join(scratch, "scp%d" % i, "s.bin")}
            for i in range(n)]
    join(farm_client.scp_send("ignored", "ignored", copy_args=args))
    for i in range(n):
        path = os.path.join(scratch, "scp%d" % i, "s.bin")
        assert open(path, "rb").read() == data
        assert os.stat(path).st_mode & 0o777 == 0o755
    back = [{"local_file": os.path.join(scratch, "back%d.bin" % i),
             "remote_file": os.path.join(scratch, "scp%d" % i, "s.bin")} for i in range(n)]
    join(farm_client.scp_recv("ignored", "ignored", copy_args=back))
    for i in range(n):
        assert open(os.path.join(scratch, "back%d.bin" % i), "rb").read() == data
    join(farm_client.scp_recv(src, os.path.join(scratch, "sfx", "s.bin")))
    for host in farm_client.hosts:
        assert open(os.path.join(scratch, "sfx", "s.bin_" + host), "rb").read() == data


def test_copy_args_errors_are_synchronous(farm_client, scratch):
    src = write(os.path.join(scratch, "s.bin"), b"x")
    for method in ("copy_file", "copy_remote_file", "scp_send", "scp_recv"):
        with pytest.raises(HostArgumentError):
            getattr(farm_client, method)(src, src, copy_args=[{"local_file": src,
                                                              "remote_file": src}])
    with pytest.raises(TypeError):
        farm_client.scp_send(src, src, copy_args=[(src, src)] * len(farm_client.hosts))
    with pytest.raises(TypeError):
        farm_client.scp_recv(src, src, copy_args=["x"] * len(farm_client.hosts))


def test_directory_without_recurse_raises_value_error(farm_client, scratch):
    local_dir = os.path.join(scratch, "d")
    write(os.path.join(local_dir, "a.txt"), b"a")
    greenlets = farm_client.copy_file(local_dir, os.path.join(scratch, "dst"))
    with pytest.raises(ValueError):
        join(greenlets)
    assert not os.path.exists(os.path.join(scratch, "dst"))
    with pytest.raises(ValueError):
        join(farm_client.scp_send(local_dir, os.path.join(scratch, "dst")))


def test_recursive_copy_to_and_from_every_host(farm_client, scratch):
    tree = os.path.join(scratch, "tree")
    write(os.path.join(tree, "a.txt"), b"a")
    write(os.path.join(tree, "sub", "b.txt"), b"b")
    os.makedirs(os.path.join(tree, "empty"))
    n = len(farm_client.hosts)
    join(farm_client.copy_file(tree, os.path.join(scratch, "up%(i)s"), recurse=True,
                               copy_args=[{"i": i} for i in range(n)]))
    for i in range(n):
        root = os.path.join(scratch, "up%d" % i)
        assert open(os.path.join(root, "sub", "b.txt"), "rb").read() == b"b"
        assert os.path.isdir(os.path.join(root, "empty"))
    local = os.path.join(scratch, "down", "tree")
    join(farm_client.copy_remote_file(tree, local, recurse=True))
    join(farm_client.scp_recv(tree, os.path.join(scratch, "scpdown", "tree"), recurse=True))
    for host in farm_client.hosts:
        for base in (local, os.path.join(scratch, "scpdown", "tree")):
            root = base + "_" + host
            assert open(os.path.join(root, "a.txt"), "rb").read() == b"a"
            assert open(os.path.join(root, "sub", "b.txt"), "rb").read() == b"b"
            assert os.path.isdir(os.path.join(root, "empty"))


def test_failure_on_one_host_surfaces_from_its_greenlet(farm_client, scratch):
    n = len(farm_client.hosts)
    for i in range(n - 1):
        write(os.path.join(scratch, "r%d.txt" % i), b"ok")
    greenlets = farm_client.copy_remote_file(os.path.join(scratch, "r%s.txt"),
                                             os.path.join(scratch, "l%s.txt"),
                                             copy_args=[(i,) for i in range(n)])
    gevent.joinall(greenlets, timeout=GUARD)
    for greenlet in greenlets[:-1]:
        greenlet.get()
    with pytest.raises(SFTPIOError) as info:
        greenlets[-1].get()
    assert info.value.host == farm_client.hosts[-1]
    assert info.value.path == os.path.join(scratch, "r%d.txt" % (n - 1))
    scp = farm_client.scp_recv(os.path.join(scratch, "missing"), os.path.join(scratch, "m"))
    with pytest.raises(SCPError):
        join(scp)


def test_readme_1x_style_joinall(sshd_farm, user_key, scratch):
    """The 1.x README: ``greenlets = client.copy_file(...)`` then
    ``gevent.joinall(greenlets, raise_error=True)``."""
    client = ParallelSSHClient(sshd_farm.hosts[:1], port=sshd_farm.port,
                               pkey=user_key.private, num_retries=1, allow_agent=False,
                               identity_auth=False)
    src = write(os.path.join(scratch, "local"), b"readme")
    greenlets = client.copy_file(src, os.path.join(scratch, "remote"))
    gevent.joinall(greenlets, raise_error=True)
    assert open(os.path.join(scratch, "remote"), "rb").read() == b"readme"
    client.close()


def test_one_file_to_many_hosts_shares_one_mapping(farm_client, scratch, monkeypatch):
    data = os.urandom(2 * 1024 * 1024)
    src = write(os.path.join(scratch, "shared.bin"), data)
    opened = []
    real = _localfile.open_source

    def counting(path):
        source = real(path)
        opened.append(id(source))
        return source

    import pssh.transfer.sftp
    monkeypatch.setattr(pssh.transfer.sftp, "open_source", counting)
    # Held here so that hosts finishing early cannot drop the mapping before late ones start.
    keep = real(src)
    n = len(farm_client.hosts)
    join(farm_client.copy_file(src, os.path.join(scratch, "m%(i)s.bin"),
                               copy_args=[{"i": i} for i in range(n)]))
    assert len(opened) == n
    assert set(opened) == {id(keep)}
    digest = hashlib.sha256(data).hexdigest()
    for i in range(n):
        with open(os.path.join(scratch, "m%d.bin" % i), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == digest
