# Channel writing: write_all() pushes a whole buffer through
# libssh2_channel_write_ex, handling partial writes and EAGAIN.
#
# Why: the pure-Python loop slices/re-wraps the data and re-enters
# ssh2-python per partial write; here the caller's buffer is used in place
# (no copies) and encryption runs with the GIL released.

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE


def write_all(session, channel, data, int stream_id, wait):
    """Write all of `data` (any C-contiguous buffer) to `stream_id` of
    `channel`.  On EAGAIN (or a 0-byte write, which libssh2 returns when the
    remote window is full) calls wait(libssh2_session_block_directions(
    session)) and retries with the remaining bytes.  Returns the number of
    bytes written (== len(data) for bytes-like objects) or the negative
    libssh2 error code.  Exceptions from wait() propagate.
    """
    cdef void *sess = _session_ptr(session)
    cdef void *chan = _channel_ptr(channel)
    cdef Py_buffer view
    cdef const char *base
    cdef Py_ssize_t total, done = 0
    cdef ssize_t rc
    # Holding the Py_buffer pins the memory (a bytearray cannot be resized
    # while exported), which is what makes the nogil write below safe.
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        base = <const char *>view.buf
        total = view.len
        while done < total:
            with nogil:
                rc = _api.channel_write_ex(chan, stream_id, base + done,
                                           <size_t>(total - done))
            if rc > 0:
                done += rc
            elif rc == 0 or rc == _EAGAIN:
                wait(_api.session_block_directions(sess))
            else:
                return rc
        return total
    finally:
        PyBuffer_Release(&view)
