# SCP file loops: scp_send_file() writes a local file descriptor to an SCP
# upload channel, scp_recv_file() copies exactly `size` bytes of an SCP
# download channel into a local descriptor.  The SCP protocol bytes around
# the data (the trailing status byte, acknowledgements) are handled by the
# caller.
#
# Why: the data goes from the file through one reusable buffer (pread, see
# _SourceWindow in sftp.pxi) to libssh2 without Python calls per packet, and
# downloads go from libssh2 straight to the file descriptor, with the GIL
# released around the crypto.

cdef enum:
    # Bytes per libssh2_channel_read_ex call of a download.  libssh2 widens
    # the receive window by about this much, so bigger reads keep more data
    # in flight.
    _SCP_READ_BUFFER = 2 * 1024 * 1024


def scp_send_file(session, channel, int fd, long long size, wait, progress):
    """Write the first `size` bytes of the local file descriptor `fd` (read
    with pread) to stream 0 of `channel`.

    On EAGAIN (or a 0-byte write: remote window full) calls
    wait(libssh2_session_block_directions()); progress(done) at most every
    1 MiB when not None.  Returns the number of bytes written: `size`, or
    less if the file ended before (it shrank meanwhile), or a negative
    libssh2 error code.  Local read errors raise OSError.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *chan = _channel_ptr(channel)
    cdef _SourceWindow w
    cdef long long done = 0, reported = 0
    cdef Py_ssize_t chunk
    cdef ssize_t rc
    if size <= 0:
        return 0
    _window_open(&w, fd, size, _SCP_WRITE_CHUNK)
    try:
        while done < size:
            chunk = _window_at(&w, done, _SCP_WRITE_CHUNK)
            if chunk == 0:
                return done
            with nogil:
                rc = _api.channel_write_ex(chan, 0, w.buf + (done - w.start),
                                           <size_t>chunk)
            if rc > 0:
                done += rc
                if progress is not None and done - reported >= _PROGRESS_STEP:
                    reported = done
                    progress(done)
            elif rc == 0 or rc == _EAGAIN:
                wait(_api.session_block_directions(sess))
            else:
                return rc
        return done
    finally:
        free(w.buf)


def scp_recv_file(session, channel, int fd, long long size, wait, progress):
    """Copy exactly `size` bytes of stream 0 of `channel` into `fd`.

    Never reads past `size` (the SCP status byte that follows stays in the
    channel).  On EAGAIN calls wait(libssh2_session_block_directions());
    progress(done) at most every 1 MiB when not None.  Returns the number of
    bytes copied -- less than `size` if the channel reached EOF first -- or a
    negative libssh2 error code.  Local write errors raise OSError.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *chan = _channel_ptr(channel)
    cdef char *buf
    cdef long long done = 0, reported = 0
    cdef size_t want
    cdef ssize_t rc
    cdef bint rechecked = False
    if size <= 0:
        return 0
    buf = <char *>malloc(_SCP_READ_BUFFER)
    if buf is NULL:
        raise MemoryError()
    try:
        while done < size:
            want = _SCP_READ_BUFFER
            if size - done < <long long>want:
                want = <size_t>(size - done)
            with nogil:
                rc = _api.channel_read_ex(chan, 0, buf, want)
            if rc > 0:
                rechecked = False
                _write_fd(fd, buf, rc)
                done += rc
                if progress is not None and done - reported >= _PROGRESS_STEP:
                    reported = done
                    progress(done)
            elif rc == 0 or rc == _EAGAIN:
                if rc == 0 and _api.channel_eof(chan):
                    return done
                # A read of stream 0 can queue packets without returning
                # them (see read.pxi): look once more before sleeping.
                if not rechecked and _api.poll_channel_read(chan, 0) > 0:
                    rechecked = True
                    continue
                rechecked = False
                wait(_api.session_block_directions(sess))
            else:
                return rc
        return done
    finally:
        free(buf)
