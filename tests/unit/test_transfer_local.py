"""Local side of file transfers (no network): shared upload sources, download temp files,
and the backends' transfer loops against fakes."""
import os

import pytest

from pssh import _localfile, _pure


def test_open_source_shares_one_mapping_while_in_use(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100000)
    first = _localfile.open_source(str(path))
    second = _localfile.open_source(str(path))
    assert first is second
    assert first.size == 100000 and bytes(first.data[:3]) == b"xxx"
    assert not first.changed()
    del first, second
    path.write_bytes(b"y" * 10)
    third = _localfile.open_source(str(path))
    assert third.size == 10 and bytes(third.data) == b"y" * 10


def test_open_source_empty_file_and_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert _localfile.open_source(str(empty)).data == b""
    with pytest.raises(FileNotFoundError):
        _localfile.open_source(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        _localfile.open_source(str(tmp_path))


def test_source_changed_detects_rewrite(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 10)
    source = _localfile.open_source(str(path))
    os.utime(str(path), ns=(1, 1))
    assert source.changed()


def test_temp_target_commit_and_discard(tmp_path):
    final = tmp_path / "new" / "dir" / "out.bin"
    with _localfile.TempTarget(str(final)) as target:
        assert os.path.basename(target.tmp_path).startswith(".out.bin.pssh-tmp-")
        os.write(target.fd, b"data")
        target.commit(0o100640, (1000, 2000))
    assert final.read_bytes() == b"data"
    assert (final.stat().st_mode & 0o777) == 0o640
    assert int(final.stat().st_mtime) == 2000
    assert os.listdir(str(final.parent)) == ["out.bin"]
    with pytest.raises(RuntimeError):
        with _localfile.TempTarget(str(final)) as target:
            os.write(target.fd, b"partial")
            raise RuntimeError("failed download")
    assert final.read_bytes() == b"data"
    assert os.listdir(str(final.parent)) == ["out.bin"]


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
    chan = FakeChannel(window=700000)
    rc = _pure.scp_send_file(FakeSession(), chan, data, 0, waits.append, progress.append)
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


def test_native_exports_the_same_transfer_functions():
    native = pytest.importorskip("pssh._native")
    for name in ("sftp_write_file", "sftp_read_file", "scp_send_file", "scp_recv_file",
                 "forget_sftp_handle", "enable_gcm_batching"):
        assert callable(getattr(native, name)) and callable(getattr(_pure, name))
