/*
 * Memory layout of the ssh2-python (1.2.x) extension objects we read raw
 * libssh2 pointers from.
 *
 * Why: ssh2-python's .pxd files #include <libssh2.h>, which we neither have
 * nor want (we must use the private libssh2 copy bundled in its wheel, not a
 * system one), so we cannot cimport them.  Instead we mirror the C structs
 * Cython generates for those cdef classes.  The layout is verified at import
 * time (tp_basicsize comparison + a functional set/get timeout round trip in
 * libssh2_table.pxi); a mismatch raises ImportError and pssh falls back to
 * the pure-Python backend.
 *
 * libssh2 handles are treated as opaque pointers: we never look inside them.
 */
#ifndef PSSH_SSH2_LAYOUT_H
#define PSSH_SSH2_LAYOUT_H

#include <Python.h>

/* ssh2.session.Session */
typedef struct {
    PyObject_HEAD
    void *_session;            /* LIBSSH2_SESSION * */
    int _sock;
    PyObject *sock;
    PyObject *_kbd_callback;
} pssh_ssh2_Session;

/* ssh2.channel.Channel */
typedef struct {
    PyObject_HEAD
    void *_channel;            /* LIBSSH2_CHANNEL * */
    PyObject *_session;        /* owning ssh2.session.Session */
} pssh_ssh2_Channel;

/* ssh2.sftp.SFTP */
typedef struct {
    PyObject_HEAD
    void *_sftp;               /* LIBSSH2_SFTP * */
    PyObject *_session;
} pssh_ssh2_SFTP;

/* ssh2.sftp_handle.SFTPHandle */
typedef struct {
    PyObject_HEAD
    void *_handle;             /* LIBSSH2_SFTP_HANDLE * */
    PyObject *_sftp;
    int _closed;
} pssh_ssh2_SFTPHandle;

#endif /* PSSH_SSH2_LAYOUT_H */
