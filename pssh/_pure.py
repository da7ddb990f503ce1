"""The pure-Python backend: the reference semantics of the hot loops.

Same functions and results as the compiled ``pssh._native``; they drive
ssh2-python's Python API instead of calling libssh2 directly. Errors are
returned as libssh2's negative codes in both backends.
"""
import ssh2.error_codes as _codes
from ssh2.exceptions import SSH2Error
from ssh2.utils import handle_error_codes

__all__ = ["BACKEND_NAME", "LIBSSH2_ERROR_EAGAIN", "pump_channel", "write_all", "error_code"]

BACKEND_NAME = "pure"
LIBSSH2_ERROR_EAGAIN = _codes.LIBSSH2_ERROR_EAGAIN
_CHUNK = 65536


def _exception_codes():
    # ssh2-python turns each libssh2 error code into one exception class;
    # invert that mapping by asking it, so the two backends report the same codes.
    table = {}
    for name in dir(_codes):
        code = getattr(_codes, name)
        if not name.startswith("LIBSSH2_ERROR_") or not isinstance(code, int) or code >= 0:
            continue
        try:
            handle_error_codes(code)
        except SSH2Error as exc:
            table.setdefault(type(exc), code)
        except Exception:  # noqa: BLE001 - an unexpected class is simply not mapped
            pass
    return table


_EXCEPTION_CODES = _exception_codes()


def error_code(exc):
    """libssh2 error code for an ssh2-python exception (-1 when unknown)."""
    return _EXCEPTION_CODES.get(type(exc), _codes.LIBSSH2_ERROR_SOCKET_NONE)


def pump_channel(session, channel, out, err, wait, on_data):
    """Drain stdout and stderr of ``channel`` into ``out``/``err`` until remote EOF.

    Returns 0 at EOF or a negative libssh2 error code. ``on_data()`` is called
    after every pass that appended bytes; ``wait(directions)`` on EAGAIN.
    """
    eagain = LIBSSH2_ERROR_EAGAIN
    read_ex = channel.read_ex
    rechecked = False
    while True:
        appended = False
        try:
            rc_out, data = read_ex(_CHUNK, 0)
            while rc_out > 0:
                out += data
                appended = True
                rc_out, data = read_ex(_CHUNK, 0)
            rc_err, data = read_ex(_CHUNK, 1)
            while rc_err > 0:
                err += data
                appended = True
                rc_err, data = read_ex(_CHUNK, 1)
        except SSH2Error as exc:
            if appended:
                on_data()
            return error_code(exc)
        if appended:
            rechecked = False
            on_data()
        if rc_out < 0 and rc_out != eagain:
            return rc_out
        if rc_err < 0 and rc_err != eagain:
            return rc_err
        if rc_out == 0 and rc_err == 0 and channel.eof():
            return 0
        # Reading one stream runs libssh2's transport loop, which may queue
        # packets of the other stream (or EOF) after that one was read: look
        # at the queue before sleeping on a socket that is already drained.
        # poll_channel_read(1) looks at queued data of both streams. One retry
        # without progress at most, so an unreadable queued packet cannot spin.
        if not rechecked and (channel.poll_channel_read(1) or channel.eof()):
            rechecked = True
            continue
        rechecked = False
        wait(session.block_directions())


def write_all(session, channel, data, stream_id, wait):
    """Write all of ``data``; returns ``len(data)`` or a negative libssh2 error code."""
    eagain = LIBSSH2_ERROR_EAGAIN
    view = memoryview(data).cast("B")
    total = len(view)
    offset = 0
    write_ex = channel.write_ex
    while offset < total:
        try:
            rc, written = write_ex(stream_id, bytes(view[offset:offset + 1048576]))
        except SSH2Error as exc:
            return error_code(exc)
        # ssh2-python reports what it wrote before an EAGAIN as well.
        offset += written
        # A write of 0 bytes means the remote window is full: wait like EAGAIN.
        if rc == eagain or (rc >= 0 and written == 0):
            wait(session.block_directions())
            continue
        if rc < 0:
            return rc
    return total
