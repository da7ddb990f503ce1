# ssh2-python object access: layout declarations, cached types, and
# type-checked extraction of raw libssh2 pointers.
#
# Why raw pointers: going through ssh2-python's Python methods costs an
# attribute lookup, argument parsing, a bytes allocation and a GIL round trip
# per libssh2 call; the whole point of this module is to run the hot loops in C.
# Why our own header: ssh2-python's .pxd files need <libssh2.h> (not present,
# and it would describe the wrong libssh2 anyway).  See ssh2_layout.h.

from cpython.object cimport PyTypeObject

import ssh2.session
import ssh2.channel
import ssh2.sftp
import ssh2.sftp_handle

cdef extern from "ssh2_layout.h":
    # Only the fields we touch are listed; sizeof() uses the real C struct.
    ctypedef struct pssh_ssh2_Session:
        void *_session
    ctypedef struct pssh_ssh2_Channel:
        void *_channel
    ctypedef struct pssh_ssh2_SFTP:
        void *_sftp
    ctypedef struct pssh_ssh2_SFTPHandle:
        void *_handle
        int _closed

# Exact types, cached once: `type(x) is T` is a pointer compare, and exactness
# matters because a subclass could carry a different layout.
cdef object _SessionType = ssh2.session.Session
cdef object _ChannelType = ssh2.channel.Channel
cdef object _SFTPType = ssh2.sftp.SFTP
cdef object _SFTPHandleType = ssh2.sftp_handle.SFTPHandle


cdef int _check_layouts() except -1:
    """Self-check (1): our struct sizes must equal the types' tp_basicsize.

    Catches an ssh2-python release that added/removed/reordered-by-size
    fields; reading the pointer from the wrong offset would crash later.
    """
    cdef list bad = []
    cdef tuple checks = (
        (_SessionType, sizeof(pssh_ssh2_Session)),
        (_ChannelType, sizeof(pssh_ssh2_Channel)),
        (_SFTPType, sizeof(pssh_ssh2_SFTP)),
        (_SFTPHandleType, sizeof(pssh_ssh2_SFTPHandle)),
    )
    for tp, expected in checks:
        actual = (<PyTypeObject *>tp).tp_basicsize
        if actual != expected:
            bad.append(f"{tp.__module__}.{tp.__qualname__}: "
                       f"tp_basicsize={actual}, expected {expected}")
    if bad:
        raise ImportError("ssh2-python object layout mismatch ("
                          + "; ".join(bad) + ")")
    return 0


cdef inline void *_session_ptr(object session) except NULL:
    if type(session) is not _SessionType:
        raise TypeError("session must be ssh2.session.Session, not "
                        + type(session).__name__)
    cdef void *p = (<pssh_ssh2_Session *><void *>session)._session
    if p is NULL:
        raise ValueError("ssh2 Session has no libssh2 session")
    return p


cdef inline void *_channel_ptr(object channel) except NULL:
    if type(channel) is not _ChannelType:
        raise TypeError("channel must be ssh2.channel.Channel, not "
                        + type(channel).__name__)
    cdef void *p = (<pssh_ssh2_Channel *><void *>channel)._channel
    if p is NULL:
        raise ValueError("ssh2 Channel has no libssh2 channel")
    return p


cdef inline void *_sftp_handle_ptr(object handle) except NULL:
    if type(handle) is not _SFTPHandleType:
        raise TypeError("handle must be ssh2.sftp_handle.SFTPHandle, not "
                        + type(handle).__name__)
    cdef pssh_ssh2_SFTPHandle *h = <pssh_ssh2_SFTPHandle *><void *>handle
    if h._handle is NULL or h._closed:
        raise ValueError("SFTP handle is closed")
    return h._handle
