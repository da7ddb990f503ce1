"""pssh._pure hot loops against a simulated libssh2 channel.

A real server cannot be made to deliver a packet between the stdout and the stderr read of one
pump pass on demand, so these tests script libssh2's observable behaviour instead: every
channel read first drains the socket into libssh2's packet queue (queuing packets of *either*
stream and EOF), then serves queued data of the stream asked for. A ``wait()`` while data or
EOF is already queued is a lost wake-up: the socket is drained and nothing more will come.
"""

import pytest
from ssh2.error_codes import (
    LIBSSH2_ERROR_CHANNEL_CLOSED, LIBSSH2_ERROR_EAGAIN, LIBSSH2_ERROR_SOCKET_RECV,
    LIBSSH2_ERROR_SOCKET_SEND)
from ssh2.exceptions import SocketRecvError, SocketSendError

from pssh import _pure

EAGAIN = LIBSSH2_ERROR_EAGAIN
EOF = ("eof", None)


class LostWakeup(AssertionError):
    pass


class FakeSession:
    def block_directions(self):
        return 1  # LIBSSH2_SESSION_BLOCK_INBOUND


class SimChannel:
    """``arrive_before_read``: {n: packets arriving just before the n-th read call};
    ``after_wait``: packet batches the server sends, one per wait()."""

    def __init__(self, arrive_before_read=None, after_wait=()):
        self.queue = {0: bytearray(), 1: bytearray()}
        self.remote_eof = False
        self.socket = []
        self.arrive_before_read = dict(arrive_before_read or {})
        self.after_wait = list(after_wait)
        self.reads = 0
        self.waits = 0

    def _drain_socket(self):
        for stream, payload in self.socket:
            if stream == "eof":
                self.remote_eof = True
            else:
                self.queue[stream] += payload
        self.socket.clear()

    def read_ex(self, size, stream):
        self.reads += 1
        self.socket.extend(self.arrive_before_read.pop(self.reads, ()))
        self._drain_socket()
        queued = self.queue[stream]
        if queued:
            data = bytes(queued[:size])
            del queued[:size]
            return len(data), data
        return (0, b"") if self.remote_eof else (EAGAIN, b"")

    def eof(self):
        return self.remote_eof and not self.queue[0] and not self.queue[1]

    def poll_channel_read(self, extended):
        return int(bool(self.queue[0] or (extended and self.queue[1])))

    def wait(self, directions):
        self.waits += 1
        if self.queue[0] or self.queue[1] or self.remote_eof:
            raise LostWakeup("wait() with data/EOF already queued: the pump would sleep forever")
        if not self.after_wait:
            raise LostWakeup("wait() although the server sends nothing more")
        self.socket.extend(self.after_wait.pop(0))


def pump(channel):
    out, err, calls = bytearray(), bytearray(), []
    rc = _pure.pump_channel(FakeSession(), channel, out, err, channel.wait,
                            lambda: calls.append((bytes(out), bytes(err))))
    return rc, bytes(out), bytes(err), calls


def test_normal_flow():
    channel = SimChannel(after_wait=[[(0, b"a\n")], [(1, b"b\n")], [(0, b"c"), EOF]])
    rc, out, err, calls = pump(channel)
    assert (rc, out, err) == (0, b"a\nc", b"b\n")
    assert calls[0] == (b"a\n", b"")
    assert len(calls) == 3


def test_eof_only():
    rc, out, err, calls = pump(SimChannel(after_wait=[[EOF]]))
    assert (rc, out, err, calls) == (0, b"", b"", [])


def test_eof_queued_by_the_stderr_read():
    # pass 2: the stdout read finds nothing; stderr data and EOF arrive before the stderr read
    channel = SimChannel(arrive_before_read={4: [(1, b"tail\n"), EOF]},
                         after_wait=[[(1, b"head\n")]])
    rc, out, err, _ = pump(channel)
    assert (rc, out, err) == (0, b"", b"head\ntail\n")


def test_stdout_queued_by_the_stderr_read():
    # the stderr read drains stdout packets into the queue and itself returns EAGAIN
    channel = SimChannel(arrive_before_read={2: [(0, b"out\n")]}, after_wait=[[EOF]])
    rc, out, err, calls = pump(channel)
    assert (rc, out, err) == (0, b"out\n", b"")
    assert calls and calls[0][0] == b"out\n"


def test_no_wait_after_a_pass_that_read_data_then_zero_without_eof():
    # As src/read.pxi: a read of 0 without EOF right after data means libssh2 may have more
    # queued, so the pump takes another pass instead of a wait() round trip.
    class ZeroWithoutEof(SimChannel):
        def read_ex(self, size, stream):
            rc, data = super().read_ex(size, stream)
            return (0, b"") if rc == EAGAIN else (rc, data)

    channel = ZeroWithoutEof(arrive_before_read={1: [(0, b"a\n")], 4: [(0, b"b\n"), EOF]},
                             after_wait=[[]])
    rc, out, err, calls = pump(channel)
    assert (rc, out, err) == (0, b"a\nb\n", b"")
    assert channel.waits == 0


def test_data_larger_than_one_read():
    big = bytes(range(256)) * 1000  # 256000 bytes, several 64 KiB reads
    channel = SimChannel(after_wait=[[(0, big), (1, big[:1000]), EOF]])
    rc, out, err, calls = pump(channel)
    assert (rc, out, err[:1000]) == (0, big, big[:1000])
    assert len(calls) == 1  # one pass drained it all


def test_a_pass_hands_over_after_256_kib_per_stream():
    # 600 KiB of stdout and 300 KiB of stderr queued at once: each call appends at most
    # 256 KiB (plus the read that crossed it) to a stream and returns PASS_DONE, so the
    # readers run before the rest comes in; nothing is lost or repeated.
    big_out, big_err = bytes(range(256)) * 2400, bytes(range(255, -1, -1)) * 1200
    channel = SimChannel(after_wait=[[(0, big_out), (1, big_err), EOF]])
    out, err, calls, codes = bytearray(), bytearray(), [], []
    while True:
        before = (len(out), len(err))
        rc = _pure.pump_channel(FakeSession(), channel, out, err, channel.wait,
                                lambda: calls.append((len(out), len(err))))
        codes.append(rc)
        assert len(out) - before[0] < 256 * 1024 + 65536
        assert len(err) - before[1] < 256 * 1024 + 65536
        if rc != _pure.PASS_DONE:
            break
    assert (bytes(out), bytes(err)) == (big_out, big_err)
    assert codes[0] == _pure.PASS_DONE and codes[-1] == 0 and len(codes) == 3
    assert len(calls) == 3  # on_data before every hand-over and after the last data


def test_read_error_code_returned():
    class Closed(SimChannel):
        def read_ex(self, size, stream):
            if self.reads >= 2:
                return LIBSSH2_ERROR_CHANNEL_CLOSED, b""
            return super().read_ex(size, stream)

    channel = Closed(arrive_before_read={1: [(0, b"x\n")]})
    rc, out, _, calls = pump(channel)
    assert rc == LIBSSH2_ERROR_CHANNEL_CLOSED
    assert out == b"x\n" and calls  # data read before the error is delivered


def test_read_exception_mapped_to_code():
    class Broken(SimChannel):
        def read_ex(self, size, stream):
            if self.reads >= 1:
                raise SocketRecvError()
            return super().read_ex(size, stream)

    channel = Broken(arrive_before_read={1: [(0, b"partial")]})
    rc, out, _, calls = pump(channel)
    assert rc == LIBSSH2_ERROR_SOCKET_RECV
    assert out == b"partial" and calls


def test_error_code_mapping():
    assert _pure.error_code(SocketRecvError()) == LIBSSH2_ERROR_SOCKET_RECV
    assert _pure.error_code(SocketSendError()) == LIBSSH2_ERROR_SOCKET_SEND
    assert _pure.error_code(ValueError()) == -1  # unknown: LIBSSH2_ERROR_SOCKET_NONE


# -- write_all -----------------------------------------------------------------------------------

class WriteChannel:
    """Accepts at most ``limit`` bytes per call; scripted results come first."""

    def __init__(self, script=(), limit=1000):
        self.script = list(script)
        self.limit = limit
        self.received = bytearray()
        self.streams = set()
        self.waits = 0

    def write_ex(self, stream_id, data):
        self.streams.add(stream_id)
        if self.script:
            kind, n = self.script.pop(0)
            if kind == "raise":
                raise SocketSendError()
            self.received += data[:n]
            return (EAGAIN if kind == "eagain" else kind), n
        n = min(self.limit, len(data))
        self.received += data[:n]
        return n, n

    def wait(self, directions):
        assert directions == 1
        self.waits += 1


def write(channel, data, stream_id=0):
    return _pure.write_all(FakeSession(), channel, data, stream_id, channel.wait)


def test_write_all_partial_writes():
    data = bytes(range(256)) * 40
    channel = WriteChannel(limit=777)
    assert write(channel, data) == len(data)
    assert bytes(channel.received) == data
    assert channel.waits == 0


@pytest.mark.parametrize("script", [
    [("eagain", 0), ("eagain", 0)],
    [("eagain", 300)],              # bytes written before the EAGAIN count
    [(0, 0), (0, 0)],               # window full: nothing written, no error
])
def test_write_all_waits_and_resumes_exactly(script):
    data = b"0123456789" * 500
    channel = WriteChannel(script=script)
    assert write(channel, data, stream_id=1) == len(data)
    assert bytes(channel.received) == data
    assert channel.waits == len(script)
    assert channel.streams == {1}


def test_write_all_error_code():
    channel = WriteChannel(script=[(100, 100), (LIBSSH2_ERROR_SOCKET_SEND, 0)])
    assert write(channel, b"x" * 5000) == LIBSSH2_ERROR_SOCKET_SEND


def test_write_all_exception_mapped():
    channel = WriteChannel(script=[("raise", 0)])
    assert write(channel, b"data") == LIBSSH2_ERROR_SOCKET_SEND


def test_write_all_accepts_any_buffer():
    channel = WriteChannel()
    assert write(channel, bytearray(b"abc")) == 3
    assert write(channel, memoryview(b"def")) == 3
    assert write(channel, b"") == 0
    assert bytes(channel.received) == b"abcdef"
