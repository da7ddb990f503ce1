# ssh2-python object access: cached types and type-checked extraction of raw
# libssh2 pointers, through the structs src/libssh2_api.pxi declares.
#
# Why raw pointers: going through ssh2-python's Python methods costs an
# attribute lookup, argument parsing, a bytes allocation and a GIL round trip
# per libssh2 call; the whole point of this module is to run the hot loops in C.
# Why our own structs: ssh2-python's .pxd files need <libssh2.h> (not present,
# and it would describe the wrong libssh2 anyway).  They are generated from
# pssh/core/libssh2_declarations.py, the list pssh.core.libssh2's ctypes
# structures come from, and checked against the types at import
# (libssh2_table.pxi).

import ssh2.session
import ssh2.channel
import ssh2.sftp
import ssh2.sftp_handle

# Exact types, cached once: `type(x) is T` is a pointer compare, and exactness
# matters because a subclass could carry a different layout.
cdef object _SessionType = ssh2.session.Session
cdef object _ChannelType = ssh2.channel.Channel
cdef object _SFTPType = ssh2.sftp.SFTP
cdef object _SFTPHandleType = ssh2.sftp_handle.SFTPHandle


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
