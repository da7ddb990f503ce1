# SFTP file loops: sftp_write_file() uploads a local file descriptor through
# an open remote handle, sftp_read_file() downloads a remote handle into a
# local descriptor.  Also the upload source window (_SourceWindow) that the
# SCP upload loop shares.
#
# Why: libssh2 1.11 pipelines SFTP itself when it is given big buffers --
# sftp_write splits a buffer into ~30 KB WRITE requests and keeps all of them
# in flight (how much: _SFTP_WRITE_AHEAD), sftp_read asks for up to 4x the
# buffer ahead.  The pure loop has to hand it Python bytes copies; here
# libssh2 reads one reusable C buffer, filled with pread (GIL released), and
# downloads go straight from libssh2 into the local file descriptor.
# Uploads do not map the file: a mapped file that shrinks meanwhile raises
# SIGBUS; pread just returns less.

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.errno cimport errno, EINTR, EAGAIN
from libc.stdlib cimport malloc, free
from libc.string cimport memmove
from posix.types cimport off_t
from posix.unistd cimport write as posix_write, pread as posix_pread

cdef enum:
    # Bytes offered to one libssh2_sftp_write call, which is what libssh2
    # keeps in flight (about 35 WRITE requests of 30000 bytes): each call
    # returns after one acknowledgement and the next offers this much again
    # from there.  The same bound as the pure backend's.  Measured on
    # loopback (one host, first 32 MiB upload of a connection) and through a
    # 20 ms round trip (16 MiB): 2 MiB, the OpenSSH channel window, made the
    # server stall ~100 ms the first time its queue got that deep (10 hosts
    # at once: 1.0 s wall against 0.72 s for the pure backend); 512 KiB was
    # fastest on loopback but at 20 ms slower than the pure backend (25 MiB/s
    # at most); 1 MiB is at least as fast as the pure backend on both.  Each
    # upload holds twice this in its source window plus libssh2's copies of
    # what it queued: 3 MiB.
    _SFTP_WRITE_AHEAD = 1024 * 1024
    # Buffer of one libssh2_sftp_read call; libssh2 requests 4x this ahead
    # (capped at 8 MiB by libssh2 itself).
    _SFTP_READ_BUFFER = 2 * 1024 * 1024
    # Progress callbacks at most once per this many bytes.
    _PROGRESS_STEP = 1024 * 1024
    # Bytes offered to one libssh2_channel_write_ex call of an SCP upload.
    _SCP_WRITE_CHUNK = 1024 * 1024


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


cdef struct _SourceWindow:
    # File bytes [start, end) are in buf[0, end - start); end <= size.
    int fd
    char *buf
    Py_ssize_t capacity
    long long start
    long long end
    long long size


cdef int _window_open(_SourceWindow *w, int fd, long long size,
                      Py_ssize_t chunk) except -1:
    w.fd = fd
    w.size = size
    w.start = 0
    w.end = 0
    # Twice the chunk: a refill moves less than one chunk of unsent bytes to
    # the front and reads at least one chunk behind them.
    w.capacity = 2 * chunk
    if size < w.capacity:
        w.capacity = <Py_ssize_t>size if size > 0 else 1
    w.buf = <char *>malloc(w.capacity)
    if w.buf is NULL:
        raise MemoryError()
    return 0


cdef Py_ssize_t _window_at(_SourceWindow *w, long long done,
                           Py_ssize_t chunk) except -1:
    """Make file bytes from `done` on available at w.buf + (done - w.start);
    returns how many (at most `chunk`), 0 if the file ends before w.size (it
    shrank).  Bytes before `done` are never needed again: libssh2 copies what
    it accepts.  Read errors raise OSError."""
    cdef long long want = w.size - done
    cdef Py_ssize_t keep
    cdef long long room
    cdef ssize_t rc
    cdef int err = 0
    if want > chunk:
        want = chunk
    if w.end - done >= want:
        return <Py_ssize_t>want
    keep = <Py_ssize_t>(w.end - done) if w.end > done else 0
    if keep:
        memmove(w.buf, w.buf + (done - w.start), keep)
    w.start = done
    w.end = done + keep
    while w.end < w.size and w.end - w.start < w.capacity:
        room = w.capacity - (w.end - w.start)
        if room > w.size - w.end:
            room = w.size - w.end
        with nogil:
            rc = posix_pread(w.fd, w.buf + (w.end - w.start), <size_t>room,
                             <off_t>w.end)
            if rc < 0:
                err = errno
        if rc < 0:
            if err == EINTR:
                continue
            raise OSError(err, os.strerror(err))
        if rc == 0:
            break
        w.end += rc
    if w.end - done < want:
        want = w.end - done
    return <Py_ssize_t>want


def sftp_write_file(session, handle, int fd, long long size, wait, progress):
    """Upload the first `size` bytes of the local file descriptor `fd` (read
    with pread, its position untouched) through the open SFTP `handle`.

    On EAGAIN calls wait(libssh2_session_block_directions()).  Calls
    progress(bytes_done) at most every 1 MiB when progress is not None.
    Returns the number of bytes written: `size`, or less if the file ended
    before (it shrank meanwhile), or the negative libssh2 error code of the
    failed write.  Local read errors raise OSError.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *h = _sftp_handle_ptr(handle)
    cdef _SourceWindow w
    cdef long long done = 0, reported = 0
    cdef Py_ssize_t chunk
    cdef ssize_t rc
    if size <= 0:
        return 0
    _window_open(&w, fd, size, _SFTP_WRITE_AHEAD)
    try:
        while done < size:
            chunk = _window_at(&w, done, _SFTP_WRITE_AHEAD)
            if chunk == 0:
                return done
            with nogil:
                rc = _api.sftp_write(h, w.buf + (done - w.start), <size_t>chunk)
            if rc > 0:
                done += rc
                if progress is not None and done - reported >= _PROGRESS_STEP:
                    reported = done
                    progress(done)
            elif rc == _EAGAIN or rc == 0:
                wait(_api.session_block_directions(sess))
            else:
                return rc
        return done
    finally:
        free(w.buf)


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
