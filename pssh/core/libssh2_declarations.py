"""The one list of what pssh calls in libssh2 directly and of the ssh2-python objects it reads
libssh2 handles from; both ways of calling libssh2 are made from it and checked by it.

``setup.py`` generates the Cython declarations of ``pssh._native`` from this list
(``src/libssh2_api.pxi``: function pointer types, the function table, the object structs), and
:mod:`pssh.core.libssh2` builds its ctypes prototypes and structures from it at import. This
module imports nothing, so that ``setup.py`` can load it before ssh2-python is installed.
"""

__all__ = ["FUNCTIONS", "OBJECTS", "TYPES"]

# The C types the two lists use; handles of libssh2 (LIBSSH2_SESSION * and the like) are
# opaque, so ``void *`` is ABI-identical to them. ``object`` is a ``PyObject *`` field.
TYPES = ("void", "int", "long", "size_t", "ssize_t", "void *", "char *", "const char *",
         "object")

# (name without the ``libssh2_`` prefix, return type, parameter types): libssh2 1.11's
# prototypes (libssh2.h, libssh2_sftp.h).
FUNCTIONS = (
    ("channel_read_ex", "ssize_t", ("void *", "int", "char *", "size_t")),
    ("channel_write_ex", "ssize_t", ("void *", "int", "const char *", "size_t")),
    ("channel_eof", "int", ("void *",)),
    ("channel_free", "int", ("void *",)),
    # Not channel_get_exit_signal: it runs strlen over a name a hostile server can leave
    # unterminated (see pssh.connection.exit_signal).
    ("channel_get_exit_status", "int", ("void *",)),
    # RFC 4254's "signal" request (no reply asked); OpenSSH 7.8+ delivers it to a command
    # run without a forced command.
    ("channel_signal_ex", "int", ("void *", "const char *", "size_t")),
    ("poll_channel_read", "int", ("void *", "int")),
    ("session_block_directions", "int", ("void *",)),
    ("session_set_timeout", "void", ("void *", "long")),
    ("session_get_timeout", "long", ("void *",)),
    # The AUTHAGENT callback through which a server's agent channels arrive.
    ("session_callback_set2", "void *", ("void *", "int", "void *")),
    ("version", "const char *", ("int",)),
    ("sftp_read", "ssize_t", ("void *", "char *", "size_t")),
    ("sftp_write", "ssize_t", ("void *", "const char *", "size_t")),
    ("sftp_posix_rename_ex", "int",
     ("void *", "const char *", "size_t", "const char *", "size_t")),
)

# ssh2-python 1.2's extension types as C structs: (module, class, the fields after
# PyObject_HEAD in declaration order). The first field is the libssh2 handle.
OBJECTS = (
    ("ssh2.session", "Session",
     (("_session", "void *"), ("_sock", "int"), ("sock", "object"), ("_kbd_callback", "object"))),
    ("ssh2.channel", "Channel", (("_channel", "void *"), ("_session", "object"))),
    ("ssh2.sftp", "SFTP", (("_sftp", "void *"), ("_session", "object"))),
    ("ssh2.sftp_handle", "SFTPHandle",
     (("_handle", "void *"), ("_sftp", "object"), ("_closed", "int"))),
)
