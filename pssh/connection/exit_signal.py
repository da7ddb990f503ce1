"""The exit signal of a remote command, read from libssh2's channel without trusting it.

ssh2-python 1.2's ``Channel.get_exit_signal()`` loses the signal name (it always answers
None), and libssh2 1.11.1's own ``libssh2_channel_get_exit_signal`` cannot be trusted with a
hostile server: when an ``exit-signal`` request declares a name longer than its packet, libssh2
allocates the declared length, copies nothing and leaves the buffer unterminated; asking for the
name then runs ``strlen`` over uninitialised heap memory and hands those bytes out as the name
(fixed upstream in libssh2 commit 590cdfe7).

So the name is read here straight from the channel structure: at most the allocation's usable
size and at most 33 bytes, and only a name matching ``[A-Z0-9]{1,32}`` followed by its NUL is
accepted. Anything else is reported as *malformed*. The structure offsets are checked on every
channel against values with a known answer (the channel type ``"session"``, its length, and the
exit status libssh2 reports); where they or ``malloc_usable_size`` are unavailable, exit signals
are reported as unknown rather than read unsafely.
"""
import ctypes
import ctypes.util
import logging
import re
from typing import NamedTuple, Optional

import ssh2.channel

from pssh.core.libssh2 import LIB, pointer

__all__ = ["ExitSignal", "read_exit_signal", "remote_close_flag", "MAX_SIGNAL_NAME"]

logger = logging.getLogger(__name__)

MAX_SIGNAL_NAME = 32
_VALID_NAME = re.compile(rb"[A-Z0-9]{1,%d}\Z" % MAX_SIGNAL_NAME)

_PTR = ctypes.sizeof(ctypes.c_void_p)
# struct _LIBSSH2_CHANNEL of libssh2 1.11: a list node (three pointers), the channel type
# (pointer, size_t length), int exit_status, then char *exit_signal.
_TYPE_OFFSET = 3 * _PTR
_TYPE_LENGTH_OFFSET = 4 * _PTR
_STATUS_OFFSET = 5 * _PTR
_SIGNAL_OFFSET = 6 * _PTR
_SESSION_TYPE = b"session"


def _usable_size_function():
    for name in (None, ctypes.util.find_library("c")):
        try:
            func = ctypes.CDLL(name).malloc_usable_size
        except (OSError, AttributeError, TypeError):
            continue
        func.restype = ctypes.c_size_t
        func.argtypes = [ctypes.c_void_p]
        return func
    return None


_usable_size = _usable_size_function()


class ExitSignal(NamedTuple):
    """What the server said about a signal: ``name`` when valid; ``malformed`` when it sent
    an ``exit-signal`` whose name pssh refuses (``name`` is then None)."""

    name: Optional[str]
    malformed: bool


NO_SIGNAL = ExitSignal(None, False)
_MALFORMED = ExitSignal(None, True)


def _layout_matches(channel_ptr):
    type_ptr = ctypes.c_void_p.from_address(channel_ptr + _TYPE_OFFSET).value
    type_length = ctypes.c_size_t.from_address(channel_ptr + _TYPE_LENGTH_OFFSET).value
    status = ctypes.c_int.from_address(channel_ptr + _STATUS_OFFSET).value
    return (bool(type_ptr) and type_length == len(_SESSION_TYPE)
            and ctypes.string_at(type_ptr, len(_SESSION_TYPE)) == _SESSION_TYPE
            and status == LIB.channel_get_exit_status(channel_ptr))


def read_exit_signal(channel) -> ExitSignal:
    """The exit signal the server reported for the command on ``channel`` (a finished one)."""
    if LIB is None or _usable_size is None or type(channel) is not ssh2.channel.Channel:
        return NO_SIGNAL
    channel_ptr = pointer(channel)
    if not channel_ptr or not _layout_matches(channel_ptr):
        logger.debug("exit signals unknown: libssh2's channel layout is not the expected one")
        return NO_SIGNAL
    name_ptr = ctypes.c_void_p.from_address(channel_ptr + _SIGNAL_OFFSET).value
    if not name_ptr:
        return NO_SIGNAL
    # Never past the allocation: libssh2 may have left it unfilled and unterminated.
    readable = min(_usable_size(name_ptr), MAX_SIGNAL_NAME + 1)
    raw = ctypes.string_at(name_ptr, readable)
    end = raw.find(b"\0")
    name = raw[:end] if end >= 0 else b""
    if not _VALID_NAME.match(name):
        return _MALFORMED
    return ExitSignal(name.decode("ascii"), False)


# libssh2_channel_data local, remote follow exit_signal: four uint32 (id, window sizes,
# packet size), then the chars close, eof, extended_data_ignore_mode (20 bytes padded).
_CHANNEL_DATA_SIZE = 20
_REMOTE_CLOSE_OFFSET = _SIGNAL_OFFSET + _PTR + _CHANNEL_DATA_SIZE + 4 * 4


def remote_close_flag(channel):
    """A callable answering whether the server closed ``channel`` (its CLOSE arrived), or
    None when the layout is unknown. libssh2 has no call for it: a channel closed without EOF
    never reports EOF, so a reader waiting for EOF would wait forever."""
    if LIB is None or type(channel) is not ssh2.channel.Channel:
        return None
    channel_ptr = pointer(channel)
    if not channel_ptr or not _layout_matches(channel_ptr):
        return None
    flag = ctypes.c_char.from_address(channel_ptr + _REMOTE_CLOSE_OFFSET)
    # ``flag`` points into the channel: only valid while the ssh2 Channel object lives.
    return lambda: flag.value != b"\0"
