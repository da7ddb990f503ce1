# libssh2 function table: prototypes, runtime binding, import-time self-check.
#
# Why dlsym instead of linking: ssh2-python's wheel ships a private, renamed
# libssh2 (ssh2_python.libs/libssh2-<hash>.so).  The LIBSSH2_SESSION /
# LIBSSH2_CHANNEL objects we get from ssh2-python were created by *that* copy,
# so we must call exactly that copy.  We ask the dynamic loader for the
# already-loaded ssh2/session*.so (RTLD_NOLOAD: never load anything new) and
# look symbols up through its handle, which also searches its dependencies,
# i.e. the bundled libssh2.  No libssh2 headers or link-time dependency needed.

import os

cdef extern from "<dlfcn.h>" nogil:
    # Python.h (included first by Cython) defines _GNU_SOURCE on Linux,
    # which is what exposes dladdr/Dl_info/RTLD_NOLOAD there.
    ctypedef struct Dl_info:
        const char *dli_fname
        void *dli_fbase
        const char *dli_sname
        void *dli_saddr
    void *dlopen(const char *filename, int flags)
    void *dlsym(void *handle, const char *symbol)
    char *dlerror()
    int dladdr(const void *addr, Dl_info *info)
    int RTLD_NOW
    int RTLD_NOLOAD

# Prototypes as in libssh2 1.11 (libssh2.h); libssh2 handles are opaque, so
# plain void* is ABI-identical to LIBSSH2_SESSION* etc.
ctypedef ssize_t (*channel_read_ex_f)(void *channel, int stream_id,
                                      char *buf, size_t buflen) noexcept nogil
ctypedef ssize_t (*channel_write_ex_f)(void *channel, int stream_id,
                                       const char *buf,
                                       size_t buflen) noexcept nogil
ctypedef int (*channel_eof_f)(void *channel) noexcept nogil
ctypedef int (*poll_channel_read_f)(void *channel,
                                    int extended) noexcept nogil
ctypedef int (*session_block_directions_f)(void *session) noexcept nogil
ctypedef void (*session_set_timeout_f)(void *session,
                                       long timeout) noexcept nogil
ctypedef long (*session_get_timeout_f)(void *session) noexcept nogil
ctypedef const char *(*version_f)(int req_version) noexcept nogil
# SFTP (libssh2_sftp.h); LIBSSH2_SFTP_HANDLE is opaque as well.
ctypedef ssize_t (*sftp_write_f)(void *handle, const char *buffer,
                                 size_t count) noexcept nogil
ctypedef ssize_t (*sftp_read_f)(void *handle, char *buffer,
                                size_t buffer_maxlen) noexcept nogil

ctypedef struct Libssh2Api:
    channel_read_ex_f channel_read_ex
    channel_write_ex_f channel_write_ex
    channel_eof_f channel_eof
    poll_channel_read_f poll_channel_read
    session_block_directions_f session_block_directions
    session_set_timeout_f session_set_timeout
    session_get_timeout_f session_get_timeout
    version_f version
    sftp_write_f sftp_write
    sftp_read_f sftp_read

# The one process-wide table; filled once by _init_libssh2_api() at import.
cdef Libssh2Api _api

# What self_check_info() reports; set by _init_libssh2_api().
cdef dict _info = {}


cdef void *_bind(void *handle, const char *name, list bound,
                 list missing) except? NULL:
    cdef void *p = dlsym(handle, name)
    if p is NULL:
        missing.append(name.decode())
    else:
        bound.append(name.decode())
    return p


cdef int _init_libssh2_api() except -1:
    cdef bytes path = os.fsencode(ssh2.session.__file__)
    cdef void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD)
    cdef const char *err
    if handle is NULL:
        err = dlerror()
        raise ImportError(
            "cannot get a handle on the loaded ssh2.session module ("
            + (err.decode(errors="replace") if err is not NULL else "?")
            + ")")
    # The handle is intentionally never dlclose()d: the table must stay valid
    # for the life of the process (ssh2-python never unloads either).

    cdef list bound = [], missing = []
    _api.channel_read_ex = <channel_read_ex_f>_bind(
        handle, b"libssh2_channel_read_ex", bound, missing)
    _api.channel_write_ex = <channel_write_ex_f>_bind(
        handle, b"libssh2_channel_write_ex", bound, missing)
    _api.channel_eof = <channel_eof_f>_bind(
        handle, b"libssh2_channel_eof", bound, missing)
    _api.poll_channel_read = <poll_channel_read_f>_bind(
        handle, b"libssh2_poll_channel_read", bound, missing)
    _api.session_block_directions = <session_block_directions_f>_bind(
        handle, b"libssh2_session_block_directions", bound, missing)
    _api.session_set_timeout = <session_set_timeout_f>_bind(
        handle, b"libssh2_session_set_timeout", bound, missing)
    _api.session_get_timeout = <session_get_timeout_f>_bind(
        handle, b"libssh2_session_get_timeout", bound, missing)
    _api.version = <version_f>_bind(
        handle, b"libssh2_version", bound, missing)
    _api.sftp_write = <sftp_write_f>_bind(
        handle, b"libssh2_sftp_write", bound, missing)
    _api.sftp_read = <sftp_read_f>_bind(
        handle, b"libssh2_sftp_read", bound, missing)

    # Self-check (3): every symbol resolved.
    if missing:
        raise ImportError("libssh2 symbols not found via ssh2-python: "
                          + ", ".join(missing))

    # Self-check (1): struct layouts (ssh2_objects.pxi).
    _check_layouts()

    # Self-check (2): functional round trip.  Proves both that we read the
    # real LIBSSH2_SESSION* out of a Session and that the functions we bound
    # operate on the same libssh2 state ssh2-python uses.
    session = _SessionType()
    cdef void *sess = (<pssh_ssh2_Session *><void *>session)._session
    if sess is NULL:
        raise ImportError("self-check: ssh2.session.Session() has a NULL "
                          "session pointer at the expected offset")
    _api.session_set_timeout(sess, 4321)
    got = session.get_timeout()
    if got != 4321:
        raise ImportError(f"self-check: set_timeout via native table not "
                          f"seen by ssh2-python (got {got!r}, expected 4321)")
    session.set_timeout(1234)
    cdef long native_got = _api.session_get_timeout(sess)
    if native_got != 1234:
        raise ImportError(f"self-check: ssh2-python set_timeout not seen by "
                          f"native table (got {native_got}, expected 1234)")
    del session

    cdef Dl_info dl
    lib_path = None
    if dladdr(<const void *>_api.channel_read_ex, &dl) and \
            dl.dli_fname is not NULL:
        lib_path = os.fsdecode(<bytes>dl.dli_fname)
    cdef const char *ver = _api.version(0)
    _info.update({
        "libssh2_path": lib_path,
        "libssh2_version": ver.decode() if ver is not NULL else None,
        "ssh2_module": ssh2.session.__file__,
        "functions": len(bound),
        "symbols": tuple(bound),
    })
    return 0


def self_check_info():
    """Where the libssh2 functions came from and how many were bound.

    Returns a new dict: libssh2_path (the shared object the symbols live in,
    via dladdr), libssh2_version, ssh2_module, functions (count), symbols.
    """
    return dict(_info)
