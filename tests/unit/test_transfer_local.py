"""Local side of file transfers (no network): shared upload sources, download temp files,
and the backends' transfer loops against fakes."""
import hashlib
import os
import stat as stat_mod
import threading

import pytest

from pssh import _pure
from pssh.transfer import localfile as _localfile
from pssh.exceptions import SFTPIOError


def test_open_source_shares_one_descriptor_while_in_use(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100000)
    first = _localfile.open_source(str(path))
    second = _localfile.open_source(str(path))
    assert first is second
    assert first.size == 100000 and os.pread(first.fd, 3, 0) == b"xxx"
    assert not first.changed()
    fd = first.fd
    del first, second
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with its last user
    path.write_bytes(b"y" * 10)
    third = _localfile.open_source(str(path))
    assert third.size == 10 and os.pread(third.fd, 100, 0) == b"y" * 10


def test_open_source_empty_file_fifo_and_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert _localfile.open_source(str(empty)).size == 0
    with pytest.raises(FileNotFoundError):
        _localfile.open_source(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        _localfile.open_source(str(tmp_path))
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "wb") as fh:
            fh.write(b"z" * 300000)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    source = _localfile.open_source(fifo)
    thread.join(10)
    assert source.size == 300000 and os.pread(source.fd, 5, 299995) == b"zzzzz"


def test_source_changed_detects_rewrite(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 10)
    source = _localfile.open_source(str(path))
    os.utime(str(path), ns=(1, 1))
    assert source.changed()


def test_temp_target_commit_and_discard(tmp_path):
    final = tmp_path / "new" / "dir" / "out.bin"
    with _localfile.TempTarget(str(final)) as target:
        name = os.path.basename(target.tmp_path)
        digest = hashlib.sha256(b"out.bin").hexdigest()[:8]
        assert name.startswith(".pssh-tmp-%s-" % digest) and len(name) < 40
        os.write(target.fd, b"data")
        target.commit(0o100640, (1000, 2000))
    st = final.stat()
    assert (st.st_atime, st.st_mtime) == (1000, 2000)
    assert final.read_bytes() == b"data"
    assert (final.stat().st_mode & 0o777) == 0o640
    assert os.listdir(str(final.parent)) == ["out.bin"]
    with pytest.raises(RuntimeError):
        with _localfile.TempTarget(str(final)) as target:
            os.write(target.fd, b"partial")
            raise RuntimeError("failed download")
    assert final.read_bytes() == b"data"
    assert os.listdir(str(final.parent)) == ["out.bin"]


def test_temp_target_for_a_name_at_the_length_limit(tmp_path):
    final = tmp_path / ("n" * 255)
    with _localfile.TempTarget(str(final)) as target:
        os.write(target.fd, b"long")
        target.commit(0o644)
    assert final.read_bytes() == b"long"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("remote, expected", [
    (0o100777, 0o750), (0o100666, 0o640), (0o104755, 0o750), (0o102755, 0o750),
    (0o101777, 0o750), (0o100600, 0o600), (0o7777, 0o750)])
def test_download_mode_applies_the_umask_and_drops_special_bits(tmp_path, umask_027, remote,
                                                                  expected):
    assert _localfile.download_mode(remote) == expected
    final = tmp_path / "f"
    with _localfile.TempTarget(str(final)) as target:
        target.commit(remote)
    assert stat_mod.S_IMODE(final.stat().st_mode) == expected


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc only")
def test_umask_read_without_changing_it(umask_027, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    assert _localfile._process_umask() == 0o027  # from /proc/self/status, not os.umask
    assert calls == []


def test_commit_sets_metadata_through_the_descriptor(tmp_path, monkeypatch):
    seen = []
    real_utime = os.utime

    def utime(target, *args, **kwargs):
        seen.append(target)
        return real_utime(target, *args, **kwargs)
    monkeypatch.setattr(os, "utime", utime)
    with _localfile.TempTarget(str(tmp_path / "f")) as target:
        fd = target.fd
        target.commit(0o644, (5, 6))
    assert seen == [fd]


class FakeSession:
    def block_directions(self):
        return 1


class FakeChannel:
    """read_ex/write_ex with scripted EAGAINs."""

    def __init__(self, data=b"", eagain_every=3, window=7):
        self.data = data
        self.written = bytearray()
        self.calls = 0
        self.eagain_every = eagain_every
        self.window = window

    def write_ex(self, stream_id, data):
        self.calls += 1
        if self.calls % self.eagain_every == 0:
            return _pure.LIBSSH2_ERROR_EAGAIN, 0
        chunk = data[:self.window]
        self.written += chunk
        return len(chunk), len(chunk)

    def read_ex(self, size, stream_id):
        self.calls += 1
        if self.calls % self.eagain_every == 0:
            return _pure.LIBSSH2_ERROR_EAGAIN, b""
        chunk, self.data = self.data[:min(size, self.window)], self.data[min(size, self.window):]
        return len(chunk), chunk

    def eof(self):
        return not self.data

    def poll_channel_read(self, extended):
        return 0


def test_pure_scp_loops_with_eagain_and_progress(tmp_path):
    waits, progress = [], []
    data = os.urandom(5 * 1024 * 1024 + 3)
    src = tmp_path / "src"
    src.write_bytes(data)
    chan = FakeChannel(window=700000)
    source = _localfile.open_source(str(src))
    rc = _pure.scp_send_file(FakeSession(), chan, source.fd, source.size, waits.append,
                             progress.append)
    assert rc == len(data) and bytes(chan.written) == data
    assert waits and progress and progress == sorted(progress)
    recv = FakeChannel(data + b"\0trailer", window=300000)
    fd = os.open(str(tmp_path / "out"), os.O_WRONLY | os.O_CREAT)
    try:
        assert _pure.scp_recv_file(FakeSession(), recv, fd, len(data), waits.append, None) \
            == len(data)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == data
    assert recv.data == b"\0trailer"  # never reads past the file


def test_pure_scp_recv_early_eof(tmp_path):
    chan = FakeChannel(b"short", window=100)
    fd = os.open(str(tmp_path / "out"), os.O_WRONLY | os.O_CREAT)
    try:
        assert _pure.scp_recv_file(FakeSession(), chan, fd, 100, lambda d: None, None) == 5
    finally:
        os.close(fd)


@pytest.mark.parametrize("loop", ["scp_send_file", "sftp_write_file"])
def test_pure_upload_of_a_shrinking_file_stops_short(tmp_path, loop):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(4 * 1024 * 1024))
    source = _localfile.open_source(str(src))
    chan = FakeChannel(window=300000)
    handle = type("Handle", (), {"write": lambda self, data: chan.write_ex(0, data)})()

    def shrink(done):
        os.truncate(str(src), 1500000)
    target = chan if loop == "scp_send_file" else handle
    rc = getattr(_pure, loop)(FakeSession(), target, source.fd, source.size, lambda d: None,
                              shrink)
    assert rc == 1500000 == len(chan.written)
    with pytest.raises(SFTPIOError, match="changed size during upload.*1500000 of 4194304"):
        source.check_sent(rc, SFTPIOError, "host-a", 22, "/remote")


def test_native_exports_the_same_transfer_functions():
    native = pytest.importorskip("pssh._native")
    for name in ("sftp_write_file", "sftp_read_file", "scp_send_file", "scp_recv_file",
                 "forget_sftp_handle", "enable_gcm_batching"):
        assert callable(getattr(native, name)) and callable(getattr(_pure, name))
