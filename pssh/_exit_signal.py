"""The exit signal of a remote command, read from libssh2 itself.

ssh2-python 1.2's ``Channel.get_exit_signal()`` loses the signal name that
libssh2 stored (it always answers None), so a command killed by a signal
would look like a success. This asks libssh2 directly (see pssh._libssh2);
where that binding is unavailable, exit signals are reported as unknown.
"""
import ctypes

import ssh2.channel

from pssh._libssh2 import LIB, pointer

__all__ = ["exit_signal"]


def exit_signal(session, channel):
    """Signal name (e.g. ``"KILL"``) that ended the command on ``channel``, or None."""
    if LIB is None or type(channel) is not ssh2.channel.Channel:
        return None
    channel_ptr = pointer(channel)
    if not channel_ptr:
        return None
    name = ctypes.c_void_p()
    length = ctypes.c_size_t()
    if LIB.channel_get_exit_signal(channel_ptr, ctypes.byref(name), ctypes.byref(length),
                                   None, None, None, None) != 0 or not name.value:
        return None
    try:
        return ctypes.string_at(name.value, length.value).decode("ascii", "replace")
    finally:
        LIB.free(pointer(session), name.value)
