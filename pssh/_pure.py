"""The pure-Python backend: the reference semantics of the hot loops.

Same functions and results as the compiled ``pssh._native``; they drive
ssh2-python's Python API instead of calling libssh2 directly. Errors are
returned as libssh2's negative codes in both backends.
"""
import ctypes

import ssh2.error_codes as _codes
from ssh2.exceptions import SSH2Error
from ssh2.utils import handle_error_codes

from pssh.core.libssh2 import mark_sftp_handle_closed

__all__ = ["BACKEND_NAME", "LIBSSH2_ERROR_EAGAIN", "BUFFER_FULL", "PASS_DONE", "pump_channel",
           "write_all", "error_code"]

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


# pump_channel's answers besides libssh2's codes (<= 0), the same as src/read.pxi's: a buffer
# holds ``limit`` bytes; a pass appended _PASS_BYTES to a stream (the readers run first).
BUFFER_FULL = 1
PASS_DONE = 2
_PASS_BYTES = 262144


def _drain(read_ex, stream_id, buf, limit):
    """Read ``stream_id`` into ``buf`` until a read returns <= 0, as src/read.pxi's ``_drain``:
    (that last code, ``BUFFER_FULL`` once ``buf`` holds ``limit`` bytes (0: no limit) or
    ``PASS_DONE`` once this call appended ``_PASS_BYTES``; the number of bytes appended)."""
    start = len(buf)
    while True:
        # Checked per read: data streaming in keeps a drain going, and each libssh2 read
        # re-opens the SSH window, so only not reading bounds it.
        if limit and len(buf) >= limit:
            return BUFFER_FULL, len(buf) - start
        if len(buf) - start >= _PASS_BYTES:
            return PASS_DONE, len(buf) - start
        try:
            rc, data = read_ex(_CHUNK, stream_id)
        except SSH2Error as exc:
            return error_code(exc), len(buf) - start
        if rc <= 0:
            return rc, len(buf) - start
        buf += data


def pump_channel(session, channel, out, err, wait, on_data, limit=0):
    """Drain stdout and stderr of ``channel`` into ``out``/``err`` until remote EOF.

    Returns 0 at EOF or a negative libssh2 error code, or ``BUFFER_FULL`` (1) as soon as
    ``out`` or ``err`` holds ``limit`` bytes (0: no limit): the channel is then not read
    until the next call; ``PASS_DONE`` (2) after a pass appended 256 KiB to a stream (the
    caller lets the readers run, then calls again). ``on_data()`` is called after every pass
    that appended bytes;
    ``wait(directions)`` on EAGAIN. Step for step the loop of src/read.pxi.
    """
    eagain = LIBSSH2_ERROR_EAGAIN
    read_ex = channel.read_ex
    rechecked = False
    while True:
        rc_out, appended = _drain(read_ex, 0, out, limit)
        if rc_out == BUFFER_FULL:
            rc_err = BUFFER_FULL
        else:
            rc_err, more = _drain(read_ex, 1, err, limit)
            appended += more
        if rc_out > 0 or rc_err > 0:  # a buffer full, or a pass done: BUFFER_FULL first
            if appended:
                on_data()
            return BUFFER_FULL if BUFFER_FULL in (rc_out, rc_err) else PASS_DONE
        if appended:
            rechecked = False
            on_data()
        if rc_out < 0 and rc_out != eagain:
            return rc_out
        if rc_err < 0 and rc_err != eagain:
            return rc_err
        if rc_out == 0 and rc_err == 0:
            if channel.eof():
                return 0
            if appended:
                # 0 without EOF right after data: libssh2 may have more queued; another
                # pass is cheaper than a wait.
                continue
        # Reading one stream runs libssh2's transport loop, which may queue packets of the
        # other stream (or EOF) after that one was read: look at the queue (no I/O) before
        # sleeping on a socket that is already drained. One retry without progress at most,
        # so an unreadable queued packet cannot spin.
        if not rechecked and (channel.poll_channel_read(1) > 0 or channel.eof()):
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


# ---------------------------------------------------------------------------------------------
# File transfer loops (SFTP and SCP): same contracts as src/sftp.pxi and src/scp.pxi.
# ---------------------------------------------------------------------------------------------

import os as _os

__all__ += ["sftp_write_file", "sftp_read_file", "scp_send_file", "scp_recv_file"]

# ssh2-python wants ``bytes`` for writes, so every call copies what it offers: 1 MiB keeps
# about 35 SFTP WRITE requests in flight without copying megabytes per acknowledgement. The
# native loop keeps the same bound (why not more: src/sftp.pxi).
_SFTP_WRITE_AHEAD = 1024 * 1024
_SFTP_READ_BUFFER = 2 * 1024 * 1024
_SCP_WRITE_CHUNK = 1024 * 1024
_SCP_READ_BUFFER = 2 * 1024 * 1024
_PROGRESS_STEP = 1024 * 1024


def _write_fd(fd, data):
    view = memoryview(data)
    while view:
        written = _os.write(fd, view)
        view = view[written:]


def _upload(session, write, chunk, fd, size, wait, progress):
    """The upload loop of SFTP and SCP: the first ``size`` bytes of ``fd`` (read with pread,
    as the native loops do: no mapping, so a file that shrinks meanwhile is a short read, not
    SIGBUS) go to ``write(bytes) -> (rc, bytes written)``."""
    eagain = LIBSSH2_ERROR_EAGAIN
    pread = _os.pread
    done = reported = 0
    while done < size:
        # From ``done`` each time, a whole chunk: libssh2 skips what it has already queued
        # (SFTP keeps requests in flight beyond ``done``) and needs the bytes after it.
        data = pread(fd, min(chunk, size - done), done)
        if not data:
            return done
        try:
            rc, written = write(data)
        except SSH2Error as exc:
            return error_code(exc)
        # ssh2-python loops until EAGAIN and reports what was accepted before it.
        done += written
        if progress is not None and done - reported >= _PROGRESS_STEP:
            reported = done
            progress(done)
        if rc == eagain or (rc >= 0 and written == 0):
            if done < size:
                wait(session.block_directions())
            continue
        if rc < 0:
            return rc
    return done


def sftp_write_file(session, handle, fd, size, wait, progress):
    """Upload the first ``size`` bytes of the local descriptor ``fd`` through the open SFTP
    ``handle``.

    Returns the bytes written (``size``, or less if the file ended first: it shrank) or a
    negative libssh2 error code; ``wait(directions)`` on EAGAIN; ``progress(bytes_done)`` at
    most every 1 MiB (never at the end: the caller does). Local read errors raise OSError.
    """
    return _upload(session, handle.write, _SFTP_WRITE_AHEAD, fd, size, wait, progress)


def sftp_read_file(session, handle, fd, wait, progress, buffer_size=_SFTP_READ_BUFFER):
    """Download the open SFTP ``handle`` to EOF into file descriptor ``fd``.

    Returns the byte count or a negative libssh2 error code; local write errors raise OSError.
    ``buffer_size``: bytes per libssh2_sftp_read (libssh2 reads up to 4x that ahead).
    """
    eagain = LIBSSH2_ERROR_EAGAIN
    read = handle.read
    done = reported = 0
    buffer_size = max(int(buffer_size), 4096)
    while True:
        try:
            rc, data = read(buffer_size)
        except SSH2Error as exc:
            return error_code(exc)
        if rc > 0:
            _write_fd(fd, data)
            done += rc
            if progress is not None and done - reported >= _PROGRESS_STEP:
                reported = done
                progress(done)
        elif rc == 0:
            return done
        elif rc == eagain:
            wait(session.block_directions())
        else:
            return rc


def scp_send_file(session, channel, fd, size, wait, progress):
    """Write the first ``size`` bytes of ``fd`` to stream 0 of ``channel``; returns the count
    (less than ``size`` if the file shrank) or an error code."""
    write_ex = channel.write_ex
    return _upload(session, lambda chunk: write_ex(0, chunk), _SCP_WRITE_CHUNK, fd, size,
                   wait, progress)


def scp_recv_file(session, channel, fd, size, wait, progress):
    """Copy exactly ``size`` bytes of stream 0 of ``channel`` into ``fd``.

    Never reads past ``size``. Returns the count (less than ``size`` at an early EOF) or a
    negative libssh2 error code; local write errors raise OSError.
    """
    eagain = LIBSSH2_ERROR_EAGAIN
    read_ex = channel.read_ex
    done = reported = 0
    rechecked = False
    while done < size:
        try:
            rc, data = read_ex(min(_SCP_READ_BUFFER, size - done), 0)
        except SSH2Error as exc:
            return error_code(exc)
        if rc > 0:
            rechecked = False
            _write_fd(fd, data)
            done += rc
            if progress is not None and done - reported >= _PROGRESS_STEP:
                reported = done
                progress(done)
        elif rc == 0 or rc == eagain:
            if rc == 0 and channel.eof():
                return done
            if not rechecked and channel.poll_channel_read(0):
                rechecked = True
                continue
            rechecked = False
            wait(session.block_directions())
        else:
            return rc
    return done


__all__ += ["forget_sftp_handle"]


def forget_sftp_handle(handle):
    """Mark ``handle`` (an SFTPHandle whose connection is gone) closed without calling libssh2.

    ssh2-python's deallocator would call libssh2_sftp_close_handle on a dead session, which
    can crash; libssh2 frees the handle with its session. As in the native backend, the
    handle's ``_closed`` flag is set (through the layout checked in :mod:`pssh.core.libssh2`).
    Only if that layout check failed is the handle leaked instead: one extra reference that
    nothing releases, so its deallocator never runs.
    """
    if not mark_sftp_handle_closed(handle):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))


__all__ += ["enable_gcm_batching"]


def enable_gcm_batching():
    """Native-only optimisation (see src/gcm.pxi); the pure backend leaves libssh2 alone."""
    return "not available in the pure backend"
