"""The exit signal of a remote command, read from libssh2 itself.

ssh2-python 1.2's ``Channel.get_exit_signal()`` loses the signal name that
libssh2 stored (it always answers None), so a command killed by a signal
would look like a success. This calls ``libssh2_channel_get_exit_signal`` on
the libssh2 copy ssh2-python loaded, with the channel pointer taken from the
Channel object. The object layout is checked first (its ``tp_basicsize``);
if it does not match, exit signals are reported as unknown (None).
"""
import ctypes
import logging

import ssh2.channel
import ssh2.session

__all__ = ["exit_signal"]

logger = logging.getLogger("pssh")

_POINTER_OFFSET = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD
_EXPECTED_SIZES = {ssh2.channel.Channel: _POINTER_OFFSET + 2 * ctypes.sizeof(ctypes.c_void_p)}


def _bind():
    for cls, size in _EXPECTED_SIZES.items():
        if cls.__basicsize__ != size:
            logger.debug("ssh2-python object layout changed (%s): exit signals unavailable", cls)
            return None, None
    try:
        lib = ctypes.CDLL(ssh2.session.__file__, mode=ctypes.RTLD_LOCAL)
        get_signal = lib.libssh2_channel_get_exit_signal
        free = lib.libssh2_free
    except (OSError, AttributeError) as exc:
        logger.debug("libssh2 exit-signal functions unavailable: %s", exc)
        return None, None
    get_signal.restype = ctypes.c_int
    get_signal.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                           ctypes.POINTER(ctypes.c_size_t)] + [ctypes.c_void_p] * 4
    free.restype = None
    free.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return get_signal, free


_GET_SIGNAL, _FREE = _bind()


def _pointer(obj):
    return ctypes.c_void_p.from_address(id(obj) + _POINTER_OFFSET).value


def exit_signal(session, channel):
    """Signal name (e.g. ``"KILL"``) that ended the command on ``channel``, or None."""
    if _GET_SIGNAL is None or type(channel) is not ssh2.channel.Channel:
        return None
    channel_ptr = _pointer(channel)
    if not channel_ptr:
        return None
    name = ctypes.c_void_p()
    length = ctypes.c_size_t()
    if _GET_SIGNAL(channel_ptr, ctypes.byref(name), ctypes.byref(length),
                   None, None, None, None) != 0 or not name.value:
        return None
    try:
        return ctypes.string_at(name.value, length.value).decode("ascii", "replace")
    finally:
        _FREE(_pointer(session), name.value)
