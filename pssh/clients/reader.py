"""2.x import path ``pssh.clients.reader``: ``ConcurrentRWBuffer``.

It is pssh's stream buffer (:class:`pssh.output.OutputBuffer`, the one
``HostOutput`` reads) with 2.x's writer side added: ``write(data)``, an
``eof`` event that the writer sets, and iteration over byte chunks. pssh's
own outputs do not use this subclass, so ``HostOutput.buffers.stdout.rw_buffer``
is an ``OutputBuffer``, not a ``ConcurrentRWBuffer``.
"""
from typing import Iterator, Optional

from pssh.output import OutputBuffer

__all__ = ["ConcurrentRWBuffer"]


class _EndOfData:
    """The ``eof`` event of a buffer: set means the writer is done."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer: OutputBuffer):
        self._buffer = buffer

    def set(self) -> None:
        if not self._buffer.finished:
            self._buffer.finish()

    def is_set(self) -> bool:
        return self._buffer.finished

    isSet = is_set

    def wait(self, timeout: Optional[float] = None) -> bool:
        buffer = self._buffer
        while not buffer.finished:
            buffer.event.clear()
            if not buffer.event.wait(timeout):
                break
        return buffer.finished


class ConcurrentRWBuffer(OutputBuffer):
    """Bytes written by one greenlet and read by others.

    ``read()`` returns every unread byte, or None when there is none;
    iterating yields chunks as they arrive until ``eof`` is set and all was read.
    """

    __slots__ = ("eof",)

    def __init__(self):
        super().__init__()
        self.eof = _EndOfData(self)

    def write(self, data: bytes) -> None:
        self.data += data
        self.notify()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.read()
            if chunk:
                yield chunk
                continue
            if self.finished:
                return
            # No greenlet switch between read() and clear(): a write cannot slip in between.
            self.event.clear()
            self.event.wait()
