# pssh's wrapper around libssh2's chacha20-poly1305 crypt function.
#
# Why: when a received packet fails its Poly1305 check, libssh2 1.11.1's
# chacha20 crypt() returns 1 and _libssh2_transport_read passes that on as
# its result -- where a positive number means "a packet of this type".
# Callers waiting for another type read again: the same packet, the same
# failure, a new payload buffer each time, forever, in C with the GIL held.
# One bit flipped by a man in the middle hangs the whole process.  The
# wrapper turns a failure into LIBSSH2_ERROR_INVALID_MAC, so the read fails
# and that connection ends with an error.
#
# The wrapper is pssh_chacha_crypt (src/crypt_guard.c).  The descriptor is
# found by its exact signature (name, block/IV/key/tag sizes, flags, its own
# get_len); nothing is changed unless it is unique.

cdef object _chacha_state = None        # None: not tried; True; or the reason


cdef _install_chacha_guard(list regions):
    """Called once, under the install lock of src/gcm.pxi."""
    global pssh_chacha_orig_crypt, _chacha_state
    cdef crypt_method *m
    try:
        if _info.get("libssh2_version") != "1.11.1":
            raise RuntimeError("libssh2 %s, not 1.11.1" % (_info.get("libssh2_version"),))
        m = _find_method(regions, b"chacha20-poly1305@openssh.com", 8, 0, 64,
                         16, _FLAGS_FULL_PACKET, True, NULL)
        if m == NULL:
            raise RuntimeError("libssh2's chacha20-poly1305 descriptor not recognised")
        if m.crypt != pssh_chacha_crypt:
            pssh_chacha_orig_crypt = m.crypt
            _patch(m, pssh_chacha_crypt)
    except Exception as exc:  # noqa: BLE001 - reported, libssh2 left as it was
        _chacha_state = "not installed: %s" % (exc,)
        return
    _chacha_state = True


def chacha_guard():
    """True when the chacha20-poly1305 failure wrapper is installed, else why
    not (None before install_gcm_wrapper() ran)."""
    return _chacha_state
