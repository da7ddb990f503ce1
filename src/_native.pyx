# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, embedsignature=True
"""pssh._native: C hot loops for the pssh "native" backend.

Same API as pssh._pure.  Operates on ssh2-python objects by reading their
raw libssh2 pointers and calling the libssh2 copy ssh2-python loaded, through
pssh.core.libssh2's binding (see libssh2_table.pxi).  Importing runs a
self-check and raises ImportError on any mismatch so the backend selector can
fall back to the pure backend.

No gevent here on purpose: blocking is delegated to the `wait` callable the
caller passes, so this module stays event-loop agnostic.
"""

cdef enum:
    # From libssh2.h (not available here); part of libssh2's stable ABI.
    # A C constant so the hot-loop comparisons stay in C.
    _EAGAIN = -37

BACKEND_NAME = "native"
LIBSSH2_ERROR_EAGAIN = _EAGAIN

# Order matters: later parts use names declared by earlier ones.
include "libssh2_api.pxi"      # generated: prototypes, table, object structs
include "ssh2_objects.pxi"     # cached types, pointer extraction
include "libssh2_table.pxi"    # the table filled and self-checked, self_check_info()
include "read.pxi"             # pump_channel()
include "write.pxi"            # write_all()
include "sftp.pxi"             # sftp_write_file(), sftp_read_file()
include "scp.pxi"              # scp_send_file(), scp_recv_file()
include "crypt_methods.pxi"    # libssh2 cipher descriptors, packet state
include "chacha_guard.pxi"     # chacha20-poly1305: a failed check is an error
include "gcm.pxi"              # install_gcm_wrapper(): length guards, batching

# API parity with pssh._pure: mapping ssh2-python exceptions to libssh2 codes
# is not a hot path, so reuse the single pure definition instead of a copy.
from pssh._pure import error_code

# Bind libssh2 and run the self-check; raises ImportError on any failure.
_init_libssh2_api()
