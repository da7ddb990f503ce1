"""Recursive downloads from a lying SFTP server never write outside their target.

The server is real OpenSSH whose SFTP subsystem is ``toolkit/sftp_filter.py``: it injects
entry names (``../escape``, absolute paths, ``a/b``, ``..``, ``.``, ``""``, NUL), lists a
directory forever, never answers, or makes a directory its own child. ``scp_recv(recurse=True)``
lists with SFTP too, so both methods meet the same lies.
"""
import os
import shutil
import tempfile

import gevent
import pytest

from embedded_server import OpenSSHServer
from pssh.transfer import remote_tree as _remote_tree
from pssh.exceptions import (
    HostArgumentError, PSSHError, SCPError, SFTPIOError, Timeout, UnsafeRemotePathError)
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient
from toolkit import sftp_filter

GUARD = 20
METHODS = ["copy_remote_file", "scp_recv"]
GOOD = {"good.txt": b"good content\n", os.path.join("sub", "inner.txt"): b"inner content\n"}


@pytest.fixture(scope="module")
def behaviour_file():
    """Where the filter reads its behaviour: a directory the server's login user can read."""
    path = tempfile.mkdtemp(prefix="pssh-sftp-filter-")
    os.chmod(path, 0o755)
    try:
        yield os.path.join(path, "behaviour.json")
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def hostile(authorized_keys, behaviour_file):
    """One sshd whose SFTP goes through the filter; each test sets the behaviour."""
    if sftp_filter.find_sftp_server() is None:
        pytest.skip("OpenSSH sftp-server binary not found")
    srv = OpenSSHServer(listen_ip="127.0.0.1", authorized_keys=authorized_keys,
                        extra_config=sftp_filter.subsystem_config(behaviour_file))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def connect(srv, key, **kwargs):
    opts = dict(port=srv.port, pkey=key.private, num_retries=1, timeout=20,
                allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(srv.host, **opts)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


class Tree:
    """scratch/remote/src (the tree downloaded), files beside it that traversal would reach,
    and scratch/local/target (the destination)."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.remote = os.path.join(scratch, "remote")
        self.src = os.path.join(self.remote, "src")
        for rel, data in GOOD.items():
            write(os.path.join(self.src, rel), data)
        write(os.path.join(self.remote, "escape"), b"outside the tree\n")
        write(os.path.join(self.remote, "escdir", "x.txt"), b"outside the tree\n")
        self.local = os.path.join(scratch, "local")
        self.target = os.path.join(self.local, "target")
        os.makedirs(self.local)
        for dirpath, dirs, files in os.walk(self.remote):
            for name in dirs:
                os.chmod(os.path.join(dirpath, name), 0o777)
        self.escape_inode = os.stat(os.path.join(self.remote, "escape")).st_ino

    def downloaded(self):
        found = {}
        for dirpath, dirs, files in os.walk(self.target):
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as fh:
                    found[os.path.relpath(path, self.target)] = fh.read()
        return found

    def assert_nothing_outside(self):
        assert sorted(os.listdir(self.scratch)) == ["local", "remote"]
        assert os.listdir(self.local) == ["target"]
        assert sorted(os.listdir(self.remote)) == ["escape", "escdir", "src"]
        # An absolute name pointing here would have replaced the file (a new inode).
        assert os.stat(os.path.join(self.remote, "escape")).st_ino == self.escape_inode
        for dirpath, dirs, files in os.walk(self.target):
            assert "." not in dirs + files and ".." not in dirs + files


@pytest.fixture
def tree(scratch):
    return Tree(scratch)


def download(client, method, tree, **kwargs):
    with gevent.Timeout(GUARD, AssertionError("recursive download did not end")):
        return getattr(client, method)(tree.src, tree.target, recurse=True, **kwargs)


def failure_of(client, method, tree):
    """The PSSHError (or local error) the download raised, or None: the tests check the
    file system first, so that a fault shows what it wrote."""
    try:
        download(client, method, tree)
    except (PSSHError, OSError, ValueError) as exc:
        return exc
    return None


# -- names that leave the target ---------------------------------------------------------------

def _names(tree):
    return [("../escape", "file"), ("../escdir", "dir"),
            (os.path.join(tree.remote, "escape"), "file"), ("sub/inner.txt", "file"),
            ("..", "file"), (".", "file"), ("", "dir"), ("x\0y", "file")]


@pytest.mark.parametrize("index", range(8), ids=["dotdot-file", "dotdot-dir", "absolute",
                                                 "slash", "dotdot-entry", "dot-entry",
                                                 "empty", "nul"])
@pytest.mark.parametrize("method", METHODS)
def test_unsafe_name_rejected_rest_downloaded(hostile, behaviour_file, user_key, tree, method,
                                              index):
    name, kind = _names(tree)[index]
    sftp_filter.write_behaviour(behaviour_file, inject=[{"name": name, "type": kind}],
                                only_in=[tree.src])
    client = connect(hostile, user_key)
    err = failure_of(client, method, tree)
    tree.assert_nothing_outside()
    assert tree.downloaded() == GOOD
    assert isinstance(err, UnsafeRemotePathError), repr(err)
    assert isinstance(err, SFTPIOError if method == "copy_remote_file" else SCPError)
    assert err.host == hostile.host and hostile.host in str(err)
    assert err.rejected == [(tree.src + "/" + name, err.rejected[0][1])]
    assert repr(tree.src + "/" + name) in str(err)
    client.close()


@pytest.mark.parametrize("method", METHODS)
def test_all_unsafe_names_reported_together(hostile, behaviour_file, user_key, tree, method):
    names = _names(tree)
    sftp_filter.write_behaviour(behaviour_file, only_in=[tree.src],
                                inject=[{"name": n, "type": k} for n, k in names])
    client = connect(hostile, user_key)
    err = failure_of(client, method, tree)
    tree.assert_nothing_outside()
    assert tree.downloaded() == GOOD
    assert isinstance(err, UnsafeRemotePathError), repr(err)
    assert sorted(path for path, _ in err.rejected) == \
        sorted(tree.src + "/" + name for name, _ in names)
    client.close()


def test_pre_existing_local_symlink_not_followed(hostile, behaviour_file, user_key, tree):
    """A local link where the tree has a directory is never written through."""
    sftp_filter.write_behaviour(behaviour_file)
    elsewhere = os.path.join(tree.scratch, "local", "elsewhere")
    os.makedirs(elsewhere)
    os.makedirs(tree.target)
    os.symlink(elsewhere, os.path.join(tree.target, "sub"))
    client = connect(hostile, user_key)
    err = failure_of(client, "copy_remote_file", tree)
    assert os.listdir(elsewhere) == []
    assert tree.downloaded() == {"good.txt": GOOD["good.txt"]}
    assert isinstance(err, UnsafeRemotePathError), repr(err)
    assert [path for path, _ in err.rejected] == [tree.src + "/sub"]
    client.close()


@pytest.mark.parametrize("method", METHODS)
def test_undecodable_name_kept_byte_for_byte(sshd, user_key, tree, method):
    """Not UTF-8, not unsafe: downloaded under the same bytes (surrogateescape)."""
    raw = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(tree.src), raw), "wb") as fh:
        fh.write(b"latin-1 name\n")
    client = connect(sshd, user_key)
    download(client, method, tree)
    assert tree.downloaded() == dict(GOOD, **{os.fsdecode(raw): b"latin-1 name\n"})
    assert raw in os.listdir(os.fsencode(tree.target))
    client.close()


# -- remote symbolic links ---------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_remote_links_outside_tree_not_followed(sshd, user_key, tree, method):
    os.symlink("good.txt", os.path.join(tree.src, "link_in"))
    os.symlink("../escape", os.path.join(tree.src, "link_out"))
    os.symlink(os.path.join(tree.remote, "escape"), os.path.join(tree.src, "link_abs"))
    os.symlink("sub", os.path.join(tree.src, "link_dir"))
    os.symlink("missing", os.path.join(tree.src, "link_dangling"))
    client = connect(sshd, user_key)
    download(client, method, tree)
    expected = dict(GOOD, link_in=GOOD["good.txt"])
    assert tree.downloaded() == expected
    assert not os.path.islink(os.path.join(tree.target, "link_in"))
    client.close()


# -- listings without end, stalls, loops -------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_endless_listing_bounded(hostile, behaviour_file, user_key, tree, method, monkeypatch):
    monkeypatch.setattr(_remote_tree, "MAX_DIRECTORY_ENTRIES", 5000)
    sftp_filter.write_behaviour(behaviour_file, endless=True)
    client = connect(hostile, user_key)
    with pytest.raises(SFTPIOError) as info:
        download(client, method, tree)
    err = info.value
    assert not isinstance(err, UnsafeRemotePathError)
    assert err.host == hostile.host and err.path == tree.src
    assert hostile.host in str(err) and tree.src in str(err) and "5000" in str(err)
    assert tree.downloaded() == {}
    tree.assert_nothing_outside()
    client.close()


def test_stalled_listing_times_out(hostile, behaviour_file, user_key, tree):
    sftp_filter.write_behaviour(behaviour_file, stall_readdir=True)
    client = connect(hostile, user_key, timeout=2)
    started = gevent.get_hub().loop.now()
    with pytest.raises(Timeout) as info:
        download(client, "copy_remote_file", tree)
    assert gevent.get_hub().loop.now() - started < 10
    assert info.value.host == hostile.host and hostile.host in str(info.value)
    client.close()


@pytest.mark.parametrize("method", METHODS)
def test_directory_that_is_its_own_child(hostile, behaviour_file, user_key, tree, method):
    src = os.path.join(tree.remote, "loopsrc")
    os.mkdir(src)
    os.chmod(src, 0o777)
    tree.src = src
    sftp_filter.write_behaviour(behaviour_file, loop="loop")
    client = connect(hostile, user_key)
    with pytest.raises(UnsafeRemotePathError) as info:
        download(client, method, tree)
    err = info.value
    assert err.host == hostile.host and "levels deep" in str(err)
    deepest = err.rejected[-1][0]
    assert deepest.split("/").count("loop") == _remote_tree.MAX_DEPTH + 1
    depth = max(dirpath.count(os.sep) for dirpath, _, _ in os.walk(tree.target))
    assert depth - tree.target.count(os.sep) == _remote_tree.MAX_DEPTH
    client.close()


# -- parallel: one hostile host, one honest ----------------------------------------------------

def test_parallel_hostile_host_leaves_other_download_intact(make_sshd, behaviour_file, user_key,
                                                            tree):
    honest = make_sshd(listen_ip="127.0.0.3")
    bad = make_sshd(listen_ip="127.0.0.4", port=honest.port,
                    extra_config=sftp_filter.subsystem_config(behaviour_file))
    planted = os.path.join(tree.remote, "target_127.0.0.3")
    write(os.path.join(planted, "planted.txt"), b"from the hostile host\n")
    os.chmod(planted, 0o777)
    sftp_filter.write_behaviour(behaviour_file, only_in=[tree.src],
                                inject=[{"name": "../target_127.0.0.3", "type": "dir"}])
    client = ParallelSSHClient([honest.host, bad.host], port=honest.port, pkey=user_key.private,
                               num_retries=1, timeout=20, allow_agent=False,
                               identity_auth=False)
    with gevent.Timeout(GUARD, AssertionError("parallel download did not end")):
        greenlets = client.copy_remote_file(tree.src, tree.target, recurse=True)
        gevent.joinall(greenlets)
    assert greenlets[0].successful(), greenlets[0].exception
    err = greenlets[1].exception
    assert isinstance(err, UnsafeRemotePathError) and err.host == bad.host
    for host in (honest.host, bad.host):
        tree.target = os.path.join(tree.local, "target_" + host)
        assert tree.downloaded() == GOOD
    assert sorted(os.listdir(tree.local)) == ["target_127.0.0.3", "target_127.0.0.4"]


def test_parallel_host_name_cannot_leave_directory(sshd, user_key, tree):
    client = ParallelSSHClient([sshd.host, ".."], port=sshd.port, pkey=user_key.private,
                               num_retries=1, timeout=20, allow_agent=False,
                               identity_auth=False)
    with gevent.Timeout(GUARD, AssertionError("parallel download did not end")):
        greenlets = client.copy_remote_file(tree.src, os.path.join(tree.local, "per-host"),
                                            recurse=True, suffix_separator=os.sep)
        gevent.joinall(greenlets)
    assert greenlets[0].successful(), greenlets[0].exception
    err = greenlets[1].exception
    assert isinstance(err, HostArgumentError) and err.host == ".."
    assert os.listdir(tree.local) == ["per-host"]
    tree.target = os.path.join(tree.local, "per-host", sshd.host)
    assert tree.downloaded() == GOOD


def test_download_without_permission_attribute_is_not_mode_000(hostile, behaviour_file,
                                                                 user_key, tree):
    """A server may leave permissions out of a file's attributes: the download then gets
    0666 less the umask (OpenSSH's sftp), not an unreadable mode 000."""
    sftp_filter.write_behaviour(behaviour_file, strip_permissions=True)
    client = connect(hostile, user_key)
    local = os.path.join(tree.local, "good.txt")
    old_umask = os.umask(0o022)
    try:
        client.copy_remote_file(os.path.join(tree.src, "good.txt"), local)
    finally:
        os.umask(old_umask)
    assert open(local, "rb").read() == GOOD["good.txt"]
    assert os.stat(local).st_mode & 0o7777 == 0o644
    client.close()
