"""Direct calls into the libssh2 copy that ssh2-python loaded, for what its bindings lack.

ssh2-python 1.2 gives no access to a few libssh2 1.11 features pssh needs:
the exit status of a raw channel (pssh._exit_signal checks the channel layout with it), the
session callback through which a server's ``auth-agent@openssh.com`` channels arrive, and SFTP's
``posix-rename@openssh.com`` (a rename that replaces the target). Both backends use this
one ctypes binding for them (neither is a hot path).

Raw pointers are read from the ssh2-python objects, whose C layout is
checked first (``__basicsize__``); on a mismatch :data:`LIB` is None and the
callers degrade (exit signals unknown, agent forwarding refused clearly).
"""
import ctypes
import logging

import ssh2.channel
import ssh2.session
import ssh2.sftp
import ssh2.sftp_handle

__all__ = ["LIB", "unavailable_reason", "pointer", "mark_sftp_handle_closed",
           "AUTHAGENT_CALLBACK", "CALLBACK_AUTHAGENT", "ERROR_EAGAIN"]

logger = logging.getLogger(__name__)

_HEAD = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD
_PTR = ctypes.sizeof(ctypes.c_void_p)
# Each object starts with its libssh2 handle right after PyObject_HEAD.
_EXPECTED_SIZES = {
    ssh2.channel.Channel: _HEAD + 2 * _PTR,                        # _channel, _session
    ssh2.session.Session: _HEAD + 2 * _PTR + 2 * _PTR,             # _session, _sock(+pad), sock, kbd
    ssh2.sftp.SFTP: _HEAD + 2 * _PTR,                               # _sftp, _session
    ssh2.sftp_handle.SFTPHandle: _HEAD + 3 * _PTR,                  # _handle, _sftp, _closed(+pad)
}
_SFTP_HANDLE_CLOSED = _HEAD + 2 * _PTR  # offset of SFTPHandle._closed (int)

CALLBACK_AUTHAGENT = 7      # LIBSSH2_CALLBACK_AUTHAGENT
ERROR_EAGAIN = -37          # LIBSSH2_ERROR_EAGAIN

# void (LIBSSH2_SESSION *, LIBSSH2_CHANNEL *, void **abstract)
AUTHAGENT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

_VP, _INT, _SSIZE, _SIZE = ctypes.c_void_p, ctypes.c_int, ctypes.c_ssize_t, ctypes.c_size_t
_PROTOTYPES = {
    # Not libssh2_channel_get_exit_signal: it runs strlen over a name a hostile server can
    # leave uninitialised (see pssh._exit_signal).
    "libssh2_channel_get_exit_status": (_INT, [_VP]),
    "libssh2_session_callback_set2": (_VP, [_VP, _INT, _VP]),
    "libssh2_channel_read_ex": (_SSIZE, [_VP, _INT, ctypes.c_char_p, _SIZE]),
    "libssh2_channel_write_ex": (_SSIZE, [_VP, _INT, ctypes.c_char_p, _SIZE]),
    "libssh2_channel_free": (_INT, [_VP]),
    "libssh2_sftp_posix_rename_ex": (_INT, [_VP, ctypes.c_char_p, _SIZE, ctypes.c_char_p, _SIZE]),
}


class _Functions:
    """The bound libssh2 functions, as attributes named without the ``libssh2_`` prefix."""


def _bind():
    for cls, size in _EXPECTED_SIZES.items():
        if cls.__basicsize__ != size:
            return None, "ssh2-python object layout changed (%s)" % cls.__name__
    try:
        lib = ctypes.CDLL(ssh2.session.__file__, mode=ctypes.RTLD_LOCAL)
        functions = _Functions()
        for name, (restype, argtypes) in _PROTOTYPES.items():
            func = getattr(lib, name)
            func.restype = restype
            func.argtypes = argtypes
            setattr(functions, name[len("libssh2_"):], func)
    except (OSError, AttributeError) as exc:
        return None, "libssh2 functions unavailable: %s" % (exc,)
    return functions, None


LIB, unavailable_reason = _bind()
if LIB is None:
    logger.debug("direct libssh2 calls disabled: %s", unavailable_reason)


def mark_sftp_handle_closed(handle) -> bool:
    """Set the ``_closed`` flag of an ssh2-python SFTPHandle, so that its deallocator never
    calls libssh2 on it (the native backend's ``forget_sftp_handle`` does the same through
    the Cython layout); False when the checked layout is unavailable."""
    if LIB is None or type(handle) is not ssh2.sftp_handle.SFTPHandle:
        return False
    ctypes.c_int.from_address(id(handle) + _SFTP_HANDLE_CLOSED).value = 1
    return True


def pointer(obj):
    """The libssh2 handle inside an ssh2-python Session, Channel or SFTP object."""
    return ctypes.c_void_p.from_address(id(obj) + _HEAD).value
