# SFTP file loops: sftp_write_file() uploads a buffer through an open remote
# handle, sftp_read_file() downloads a remote handle into a local descriptor.
#
# Why: libssh2 1.11 pipelines SFTP itself when it is given big buffers --
# sftp_write splits a buffer into ~30 KB WRITE requests and keeps all of them
# in flight, sftp_read asks for up to 4x the buffer ahead.  The pure loop has
# to hand it Python bytes copies; here libssh2 reads the caller's buffer (an
# mmap shared by every host of an upload) in place with the GIL released, and
# downloads go straight from libssh2 into the local file descriptor.

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.errno cimport errno, EINTR, EAGAIN
from libc.stdlib cimport malloc, free
from posix.unistd cimport write as posix_write

cdef enum:
    # Bytes offered to one libssh2_sftp_write call: what libssh2 may keep in
    # flight (about 140 WRITE requests of 30000 bytes).  The server's SFTP
    # channel window (2 MiB for OpenSSH) bounds what is on the wire anyway;
    # the rest is queued inside libssh2, ready to go when the window opens.
    _SFTP_WRITE_AHEAD = 4 * 1024 * 1024
    # Buffer of one libssh2_sftp_read call; libssh2 requests 4x this ahead
    # (capped at 8 MiB by libssh2 itself).
    _SFTP_READ_BUFFER = 2 * 1024 * 1024
    # Progress callbacks at most once per this many bytes.
    _PROGRESS_STEP = 1024 * 1024


cdef int _write_fd(int fd, const char *buf, Py_ssize_t length) except -1:
    """Write all of buf to fd (blocking local file), GIL released."""
    cdef ssize_t rc
    cdef int err = 0
    while length > 0:
        with nogil:
            rc = posix_write(fd, buf, <size_t>length)
            if rc < 0:
                err = errno
        if rc < 0:
            if err == EINTR:
                continue
            raise OSError(err, os.strerror(err))
        if rc == 0:
            raise OSError(EAGAIN, "write to local file returned 0")
        buf += rc
        length -= rc
    return 0


def sftp_write_file(session, handle, data, Py_ssize_t offset, wait, progress):
    """Upload data[offset:] through the open SFTP `handle`.

    `data` is any C-contiguous buffer (bytes, mmap); it must not change while
    the call runs.  On EAGAIN calls wait(libssh2_session_block_directions()).
    Calls progress(bytes_done_from_0) at most every 1 MiB when progress is
    not None.  Returns the number of bytes written (len(data) - offset) or
    the negative libssh2 error code of the failed write.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *h = _sftp_handle_ptr(handle)
    cdef Py_buffer view
    cdef const char *base
    cdef Py_ssize_t total, done, chunk, reported
    cdef ssize_t rc
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        base = <const char *>view.buf
        total = view.len
        if offset < 0 or offset > total:
            raise ValueError("offset out of range")
        done = offset
        reported = offset
        while done < total:
            chunk = total - done
            if chunk > _SFTP_WRITE_AHEAD:
                chunk = _SFTP_WRITE_AHEAD
            with nogil:
                rc = _api.sftp_write(h, base + done, <size_t>chunk)
            if rc > 0:
                done += rc
                if progress is not None and done - reported >= _PROGRESS_STEP:
                    reported = done
                    progress(done)
            elif rc == _EAGAIN or rc == 0:
                wait(_api.session_block_directions(sess))
            else:
                return rc
        return total - offset
    finally:
        PyBuffer_Release(&view)


def sftp_read_file(session, handle, int fd, wait, progress,
                   Py_ssize_t buffer_size=_SFTP_READ_BUFFER):
    """Download the open SFTP `handle` from its current offset to EOF into
    the local file descriptor `fd`.

    On EAGAIN calls wait(libssh2_session_block_directions()); progress(done)
    at most every 1 MiB when not None.  Returns the number of bytes copied or
    the negative libssh2 error code of the failed read.  Local write errors
    raise OSError.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *h = _sftp_handle_ptr(handle)
    if buffer_size < 4096:
        buffer_size = 4096
    cdef char *buf = <char *>malloc(buffer_size)
    cdef Py_ssize_t done = 0, reported = 0
    cdef ssize_t rc
    if buf is NULL:
        raise MemoryError()
    try:
        while True:
            with nogil:
                rc = _api.sftp_read(h, buf, <size_t>buffer_size)
            if rc > 0:
                _write_fd(fd, buf, rc)
                done += rc
                if progress is not None and done - reported >= _PROGRESS_STEP:
                    reported = done
                    progress(done)
            elif rc == 0:
                return done
            elif rc == _EAGAIN:
                wait(_api.session_block_directions(sess))
            else:
                return rc
    finally:
        free(buf)


def forget_sftp_handle(handle):
    """Mark an ssh2-python SFTPHandle closed without calling libssh2.

    For handles whose connection is gone: ssh2-python's deallocator would
    otherwise call libssh2_sftp_close_handle on a dead session, which can
    crash.  libssh2 releases the handle's memory with its session.
    """
    if type(handle) is not _SFTPHandleType:
        raise TypeError("handle must be ssh2.sftp_handle.SFTPHandle, not "
                        + type(handle).__name__)
    (<pssh_ssh2_SFTPHandle *><void *>handle)._closed = 1
