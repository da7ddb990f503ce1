"""Command output: per-stream buffers, line iterators, stdin and HostOutput.

One reader (the channel pump) fills two :class:`OutputBuffer` objects, one per
stream. Line iterators consume them: every access to ``HostOutput.stdout``
makes a new generator over the same buffer, so lines read by one iterator are
gone for all (single consumer, as in parallel-ssh 2.x), and a partial line
stays in the buffer between iterators. Memory is bounded by what has not been
read yet, and per stream by ``max_unread_output``: at that many unread bytes the
pump stops reading the channel (the SSH window then closes and the server waits)
until the user reads; a read that cannot progress meanwhile fails at once with
:class:`pssh.exceptions.OutputBufferFullError` instead of hanging.
"""
import logging
import os
from itertools import chain
from operator import length_hint
from time import monotonic

from gevent.event import Event

from pssh.exceptions import OutputBufferFullError, Timeout

__all__ = ["HostOutput", "HostOutputBuffers", "BufferData", "OutputBuffer", "Stdin",
           "DEFAULT_DECODE_ERRORS", "DEFAULT_MAX_UNREAD_OUTPUT"]

logger = logging.getLogger(__name__)
host_logger = logging.getLogger("pssh.host_logger")

# Undecodable bytes become visible \xNN escapes instead of an exception that
# would lose the rest of the output; set HostOutput.decode_errors = "strict"
# for parallel-ssh's behaviour.
DEFAULT_DECODE_ERRORS = "backslashreplace"

# Bytes decoded into one batch of lines (see OutputBuffer.take_lines).
BATCH_BYTES = 64 * 1024

# Unread bytes per stream at which the channel is no longer read (SSHClient max_unread_output).
DEFAULT_MAX_UNREAD_OUTPUT = 64 * 1024 * 1024


class OutputBuffer:
    """Bytes of one stream, written by the channel pump and read as lines.

    ``data`` is appended to by the pump; ``batch`` iterates over decoded
    lines not yet handed out. It is shared by every line generator, so a
    generator dropped half-way leaves the rest for the next one, and the hot
    path is a plain ``yield from`` over a list. ``finished`` is set when the
    stream has ended (remote EOF or failure); ``error`` then holds the
    failure, if any. ``room`` (an Event, or None) is set whenever bytes
    leave ``data``: it resumes a pump paused on a full buffer.
    """

    __slots__ = ("data", "batch", "event", "finished", "error", "room")

    def __init__(self, room=None):
        self.data = bytearray()
        self.batch = iter(())
        self.event = Event()
        self.finished = False
        self.error = None
        self.room = room

    @property
    def lines(self):
        """The decoded lines not handed out yet (a copy; reading it consumes nothing)."""
        remaining = list(self.batch)
        self.batch = iter(remaining)
        return remaining

    def notify(self):
        self.event.set()

    def finish(self, error=None):
        self.error = error
        self.finished = True
        self.event.set()

    def take_lines(self, encoding, errors):
        """Move complete lines from ``data`` to ``batch``; at the end also the last partial line.

        At most about ``BATCH_BYTES`` are decoded at a time: the lines of one batch are
        freed before the next is made, so their memory is reused instead of being mapped
        and unmapped again for every large chunk. Bytes leave ``data`` only once decoded,
        so a strict decoding error loses nothing.
        """
        data = self.data
        end = data.rfind(b"\n")
        more = False
        if end >= BATCH_BYTES:
            cut = data.rfind(b"\n", 0, BATCH_BYTES)
            if cut < 0:  # a line longer than a batch: that line alone
                cut = data.find(b"\n", BATCH_BYTES)
            end, more = cut, cut < end
        tail = b""
        if end < 0:
            if not (self.finished and data):
                return
            tail, consumed = bytes(data), len(data)
            text = None
        else:
            consumed = end + 1
            if self.finished and not more and consumed < len(data):
                tail, consumed = bytes(data[consumed:]), len(data)
            with memoryview(data) as view:
                text = str(view[:end], encoding, errors)
        parts = text.split("\n") if text is not None else []
        if text and "\r" in text:
            parts = [part[:-1] if part.endswith("\r") else part for part in parts]
        if tail:
            # The unterminated last line keeps a trailing \r: only \r\n separates lines.
            parts.append(tail.decode(encoding, errors))
        del data[:consumed]
        if self.room is not None:
            self.room.set()
        if length_hint(self.batch):
            parts = list(self.batch) + parts
        self.batch = iter(parts)

    def discard(self):
        """Drop every unread byte and line (join(consume_output=True) on a full buffer)."""
        self.data.clear()
        self.batch = iter(())
        if self.room is not None:
            self.room.set()

    def read(self):
        """All unread bytes (partial lines included), or None when there are none."""
        if not self.data:
            return None
        chunk = bytes(self.data)
        self.data.clear()
        if self.room is not None:
            self.room.set()
        return chunk


def iter_lines(buffer, output, prefix):
    """Iterator of decoded lines of ``buffer`` for ``output`` (see HostOutput.stdout).

    Lines are handed out by ``itertools.chain`` straight from the shared batch
    iterator, so a line costs no Python frame switch; the generator below runs
    once per batch to wait for and decode the next one.
    """
    lines = chain.from_iterable(_batches(buffer, output))
    if host_logger.isEnabledFor(logging.INFO):
        return _logged(lines, output.host, prefix)
    return lines


def _logged(lines, host, prefix):
    for line in lines:
        host_logger.info("[%s]%s\t%s", host, prefix, line)
        yield line


def _batches(buffer, output):
    read_timeout = output.read_timeout
    idle_timeout = output.idle_timeout
    started = monotonic()
    while True:
        if length_hint(buffer.batch):
            yield buffer.batch
            continue
        buffer.take_lines(output.encoding, output.decode_errors)
        if length_hint(buffer.batch):
            continue
        if buffer.finished:
            if buffer.error is not None:
                raise buffer.error
            return
        state = output._state
        if state is not None and state.paused and state.full():
            raise buffer_full_error(state, output.host, buffer)
        buffer.event.clear()
        wait_for = _remaining(started, read_timeout, idle_timeout)
        if not buffer.event.wait(wait_for):
            if buffer.finished:
                continue
            raise _read_timeout(output, started, read_timeout, idle_timeout)


def buffer_full_error(state, host, reading=None):
    """The error for a read of ``reading`` (an OutputBuffer; None: waiting for the end) that
    cannot progress because the pump of the command (its state ``state``) is paused on a
    full buffer."""
    full = "stdout" if len(state.stdout.data) >= len(state.stderr.data) else "stderr"
    advice = "read %s or set output.max_unread_output higher" % full
    if reading is None:
        waiting = "the command to finish"
    else:
        waiting = "stdout" if reading is state.stdout else "stderr"
        if waiting == full:
            waiting = "a complete line of %s" % full
            advice = "set output.max_unread_output higher"
    exc = OutputBufferFullError(
        "Host %s: %s holds %s bytes not read (max_unread_output), so the channel is no "
        "longer read and waiting for %s cannot progress; %s, then read again", host, full,
        len(getattr(state, full).data), waiting, advice, host=host)
    exc.stream = full
    return exc


def _remaining(started, read_timeout, idle_timeout):
    limits = []
    if read_timeout:
        limits.append(max(0.0, started + read_timeout - monotonic()))
    if idle_timeout:
        limits.append(idle_timeout)
    return min(limits) if limits else None


def _read_timeout(output, started, read_timeout, idle_timeout):
    if read_timeout and monotonic() - started >= read_timeout:
        return Timeout("Read timeout of %s s reached reading output of host %s",
                       read_timeout, output.host, host=output.host)
    return Timeout("No output for %s s (idle_timeout) from host %s",
                   idle_timeout, output.host, host=output.host)


class BufferData:
    """Compatibility container: the reader greenlet and the buffer of one stream."""

    __slots__ = ("reader", "rw_buffer")

    def __init__(self, reader, rw_buffer):
        self.reader = reader
        self.rw_buffer = rw_buffer


class HostOutputBuffers:
    """Compatibility container of the stdout and stderr :class:`BufferData`."""

    __slots__ = ("stdout", "stderr")

    def __init__(self, stdout, stderr):
        self.stdout = stdout
        self.stderr = stderr


class Stdin:
    """Standard input of a remote command, written through its channel
    (:class:`pssh.connection.channel.Channel`).

    ``write`` sends all of the data (str is encoded with the output's
    encoding); ``close`` (alias ``send_eof``) sends end-of-file, once, so that
    commands reading stdin to the end can finish. Writing after that, or after
    the channel closed, raises :class:`pssh.exceptions.SessionError` naming the host.
    """

    __slots__ = ("channel", "_client", "_encoding")

    def __init__(self, channel, client=None, encoding="utf-8"):
        self.channel = channel
        self._client = client
        self._encoding = encoding

    def write(self, data):
        if isinstance(data, str):
            data = data.encode(self._encoding)
        return self.channel.write(data)

    def flush(self):
        """Nothing is buffered client-side: ``write`` returns once libssh2 took all bytes."""

    def close(self):
        self.channel.send_eof()

    send_eof = close


class HostOutput:
    """Output of one command on one host.

    ``stdout``/``stderr`` return a new line generator on each access over a
    shared buffer; ``exit_code`` is None until the command has finished (EOF,
    exit status and channel close all done).
    """

    __slots__ = ("host", "channel", "stdin", "client", "alias", "exception", "encoding",
                 "read_timeout", "idle_timeout", "decode_errors", "buffers",
                 "fully_qualified_command", "_state", "_io", "__weakref__")

    def __init__(self, host, channel, stdin, client, alias=None, exception=None,
                 encoding="utf-8", read_timeout=None, buffers=None,
                 fully_qualified_command=None, idle_timeout=None,
                 decode_errors=DEFAULT_DECODE_ERRORS, _io=None):
        self.host = host
        self.channel = channel
        self.stdin = stdin
        self.client = client
        self.alias = alias
        self.exception = exception
        self.encoding = encoding
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.decode_errors = decode_errors
        self.buffers = buffers
        self.fully_qualified_command = fully_qualified_command
        # The command's channel object (pssh.connection.channel.Channel) and its state.
        self._io = _io
        self._state = None if _io is None else _io.state

    @property
    def channel_io(self):
        """The :class:`~pssh.connection.channel.Channel` of the running command (its stdin,
        EOF, close and completion), or None for an output without a channel."""
        return self._io

    @property
    def channel_state(self):
        """The :class:`~pssh.connection.channel_state.ChannelState` of the running command
        (exit code, output flow, completion), or None for an output without a channel."""
        return self._state

    @property
    def stdout(self):
        if self.client is None or self.buffers is None:
            return None
        return iter_lines(self.buffers.stdout.rw_buffer, self, "")

    @property
    def stderr(self):
        if self.client is None or self.buffers is None:
            return None
        return iter_lines(self.buffers.stderr.rw_buffer, self, "\t[err]")

    @property
    def exit_code(self):
        if self.client is None or self._state is None:
            return None
        return self._state.exit_code

    @property
    def exit_signal(self):
        """Name of the signal that killed the remote command (e.g. ``"KILL"``), else None."""
        if self._state is None:
            return None
        return self._state.exit_signal

    @property
    def max_unread_output(self):
        """Unread bytes per stream at which pssh stops reading this command's channel."""
        return None if self._state is None else self._state.max_unread_output

    @max_unread_output.setter
    def max_unread_output(self, limit):
        if self._state is None:
            return
        self._state.max_unread_output = limit or None
        self._state.room.set()

    @property
    def finished(self):
        """True once the command ended and its exit status is final."""
        return self._state is not None and self._state.done.is_set()

    def __repr__(self):
        return os.linesep.join((
            "\thost=%s" % (self.host,),
            "\talias=%s" % (self.alias,),
            "\texit_code=%s" % (self.exit_code,),
            "\tchannel=%s" % (self.channel,),
            "\texception=%s" % (self.exception,),
            "\tencoding=%s" % (self.encoding,),
            "\tread_timeout=%s" % (self.read_timeout,),
            "\tfully_qualified_command=%s" % (self.fully_qualified_command,),
        ))

    __str__ = __repr__

