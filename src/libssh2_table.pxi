# libssh2 function table: filled from pssh.core.libssh2, the one binding, and
# self-checked at import.  The prototypes, the table and the object structs are
# generated into src/libssh2_api.pxi from pssh/core/libssh2_declarations.py.
#
# Why look the functions up instead of linking: ssh2-python's wheel ships a
# private, renamed libssh2 (ssh2_python.libs/libssh2-<hash>.so).  The
# LIBSSH2_SESSION / LIBSSH2_CHANNEL objects we get from ssh2-python were
# created by *that* copy, so we must call exactly that copy.  We ask the dynamic loader for the
# already-loaded ssh2/session*.so (RTLD_NOLOAD: never load anything new) and
# look symbols up through its handle, which also searches its dependencies,
# i.e. the bundled libssh2.  No libssh2 headers or link-time dependency needed.
# pssh.core.libssh2 does that lookup (for the pure backend too); this module
# takes its checked addresses.  gcm.pxi still uses dlopen/dlsym for libcrypto.

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

from pssh.core import libssh2 as _binding

# What self_check_info() reports; set by _init_libssh2_api().
cdef dict _info = {}


def _table_set_timeout(session, long milliseconds):
    _api.session_set_timeout(_session_ptr(session), milliseconds)


def _table_get_timeout(session):
    return _api.session_get_timeout(_session_ptr(session))


cdef int _init_libssh2_api() except -1:
    """Fill the C table from pssh.core.libssh2's checked binding, then run its
    self-check on what this module compiled: the structs it reads handles
    through, and the round trip through the C table and those structs."""
    if _binding.LIB is None:
        raise ImportError(_binding.unavailable_reason)
    problems = _binding.layout_problems(_compiled_sizes())
    if problems:
        raise ImportError("ssh2-python object layout mismatch ("
                          + "; ".join(problems) + ")")
    cdef dict addresses = _binding.addresses()
    _fill_api(addresses)
    problem = _binding.round_trip_problem(_table_set_timeout, _table_get_timeout)
    if problem:
        raise ImportError("libssh2 self-check failed: " + problem)

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
        "functions": len(addresses),
        "symbols": tuple("libssh2_" + name for name in addresses),
    })
    return 0


def self_check_info():
    """Where the libssh2 functions came from and how many were bound.

    Returns a new dict: libssh2_path (the shared object the symbols live in,
    via dladdr), libssh2_version, ssh2_module, functions (count), symbols.
    """
    return dict(_info)
