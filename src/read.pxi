# Channel reading: pump_channel() drains stdout+stderr until remote EOF.
#
# Why it exists: the pure-Python loop pays for a Python method call, a new
# bytes object and a copy for every libssh2 read (~16-32 KiB each).  Here each
# read lands directly in the tail of the caller's bytearray with the GIL
# released, and Python is only re-entered for on_data()/wait().

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_WRITABLE

cdef extern from "Python.h":
    # Declared here (not cimported) to get the `except -1` clause.
    int PyByteArray_Resize(object ba, Py_ssize_t size) except -1
    Py_ssize_t PyByteArray_GET_SIZE(object ba)

cdef enum:
    # Bytes requested per libssh2_channel_read_ex call.  libssh2 will fill it
    # from several queued packets, so this also bounds GIL round trips.
    _READ_CHUNK = 65536
    # pump_channel's answer when a buffer holds `limit` bytes (libssh2 codes are <= 0).
    _BUFFER_FULL = 1
    # pump_channel's answer after a pass appended _PASS_BYTES: the caller lets the readers
    # run before the next call.  A fast stream would otherwise pile up the whole SSH window
    # and socket backlog (megabytes) in one pass; the buffer then swings between empty and
    # megabytes, and every swing is memory given back to the OS and faulted in again.
    _PASS_DONE = 2
    _PASS_BYTES = 262144

# The answers above under the names pssh._pure gives them.
BUFFER_FULL = _BUFFER_FULL
PASS_DONE = _PASS_DONE


cdef ssize_t _drain(void *chan, int stream_id, bytearray buf,
                    Py_ssize_t *appended, Py_ssize_t limit) except? -1:
    """Read `stream_id` into the tail of `buf` until a read returns <= 0.

    Returns that last libssh2 return code (0, EAGAIN or another error),
    _BUFFER_FULL once `buf` holds `limit` bytes (0: no limit), or _PASS_DONE
    once this call appended _PASS_BYTES, and adds the number of bytes appended
    to *appended.  `buf` always ends up with exactly
    the bytes read (spare tail trimmed), even on exceptions.
    """
    cdef Py_ssize_t start = PyByteArray_GET_SIZE(buf)
    cdef Py_ssize_t used = start
    cdef ssize_t rc = 0
    cdef char *dst
    cdef Py_buffer view
    try:
        while True:
            # Checked per read: data streaming in keeps a drain going, and each
            # libssh2 read re-opens the SSH window, so only not reading bounds it.
            if limit and used >= limit:
                return _BUFFER_FULL
            if used - start >= _PASS_BYTES:
                return _PASS_DONE
            # Grow only when less than a chunk is spare: one grow per drain
            # in the common case; bytearray over-allocates, so repeated
            # pump calls on a growing buffer are amortised O(1) per byte.
            if PyByteArray_GET_SIZE(buf) - used < _READ_CHUNK:
                PyByteArray_Resize(buf, used + _READ_CHUNK)
            # Hold a buffer export across the GIL-free read: it makes any
            # other thread's attempt to resize `buf` fail with BufferError
            # instead of freeing the memory libssh2 is writing into.
            PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
            dst = <char *>view.buf + used
            with nogil:
                # Releasing the GIL: this is where decryption/MAC happens.
                rc = _api.channel_read_ex(chan, stream_id, dst, _READ_CHUNK)
            PyBuffer_Release(&view)
            if rc <= 0:
                return rc
            used += rc
    finally:
        appended[0] += used - start
        PyByteArray_Resize(buf, used)


def pump_channel(session, channel, bytearray out not None,
                 bytearray err not None, wait, on_data, Py_ssize_t limit=0):
    """Drain stdout (stream 0) into `out` and stderr (stream 1) into `err`
    until remote EOF.  Returns 0 at EOF, or the negative libssh2 error code
    of a failed read, or 1 as soon as `out` or `err` holds `limit` bytes
    (0: no limit); the channel is then not read until the next call.  Returns
    2 after a pass appended 256 KiB to a stream (on_data() called): the caller yields to
    the readers, then calls again.  Each pass drains stream 0 then stream 1 until EAGAIN
    or 0; calls on_data() if the pass appended anything; a stream returning
    0 without channel EOF counts as EAGAIN; on EAGAIN calls
    wait(libssh2_session_block_directions(session)) and loops.  Exceptions
    from wait()/on_data() propagate.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *chan = _channel_ptr(channel)
    cdef ssize_t rc_out, rc_err
    cdef Py_ssize_t appended
    cdef bint rechecked = False
    while True:
        appended = 0
        rc_out = _drain(chan, 0, out, &appended, limit)
        rc_err = _BUFFER_FULL if rc_out == _BUFFER_FULL else _drain(chan, 1, err, &appended,
                                                                   limit)
        if rc_out > 0 or rc_err > 0:  # a buffer full, or a pass done: BUFFER_FULL first
            if appended:
                on_data()
            return _BUFFER_FULL if _BUFFER_FULL in (rc_out, rc_err) else _PASS_DONE
        if appended:
            rechecked = False
            on_data()
        if rc_out < 0 and rc_out != _EAGAIN:
            return rc_out
        if rc_err < 0 and rc_err != _EAGAIN:
            return rc_err
        if rc_out == 0 and rc_err == 0:
            if _api.channel_eof(chan):
                return 0
            if appended:
                # 0 without EOF right after data: libssh2 may have more
                # queued; another pass is cheaper than a wait() round trip.
                continue
        # Every libssh2 read drains the socket into libssh2's packet queue,
        # so the stream-1 read may have queued stdout data that arrived after
        # the stream-0 read gave up.  The socket is then empty and wait()
        # could block forever although data is ready.  poll_channel_read
        # only inspects the queue (no I/O).  Retry at most once without
        # progress so an unreadable queued packet cannot make us spin.
        # EOF processed during the stream-1 read needs one more pass too.
        if not rechecked and (_api.poll_channel_read(chan, 1) > 0 or _api.channel_eof(chan)):
            rechecked = True
            continue
        rechecked = False
        wait(_api.session_block_directions(sess))
