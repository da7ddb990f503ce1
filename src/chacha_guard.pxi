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
# The descriptor is found by its exact signature (name, block/IV/key/tag
# sizes, flags, its own get_len); nothing is changed unless it is unique.

cdef enum:
    _FLAGS_FULL_PACKET = 4              # LIBSSH2_CRYPT_FLAG_REQUIRES_FULL_PACKET
    _LIBSSH2_ERROR_INVALID_MAC = -4

cdef crypt_f _chacha_orig_crypt = NULL
cdef object _chacha_state = None        # None: not tried; True; or the reason


cdef int _chacha_crypt(void *session, unsigned int seqno, unsigned char *block,
                       size_t blocksize, void **abstract,
                       int firstlast) noexcept nogil:
    if _chacha_orig_crypt(session, seqno, block, blocksize, abstract,
                          firstlast):
        return _LIBSSH2_ERROR_INVALID_MAC
    return 0


cdef crypt_method *_find_chacha(list regions):
    cdef uintptr_t name_at = _find_string(regions, b"chacha20-poly1305@openssh.com")
    cdef uintptr_t a
    cdef crypt_method *m
    cdef crypt_method *found = NULL
    if not name_at:
        return NULL
    for start, end in regions:
        a = <uintptr_t>start
        while a + sizeof(crypt_method) <= <uintptr_t>end:
            if (<uintptr_t *>a)[0] == name_at:
                m = <crypt_method *>a
                if m.blocksize == 8 and m.iv_len == 0 and \
                        m.secret_len == 64 and m.auth_len == 16 and \
                        m.flags == _FLAGS_FULL_PACKET and \
                        m.get_len != NULL and m.init != NULL and \
                        m.crypt != NULL and m.dtor != NULL:
                    if found != NULL:
                        return NULL     # ambiguous: touch nothing
                    found = m
            a += sizeof(void *)
    return found


cdef _install_chacha_guard(list regions):
    """Called once, under the install lock of src/gcm.pxi."""
    global _chacha_orig_crypt, _chacha_state
    cdef crypt_method *m
    try:
        if _info.get("libssh2_version") != "1.11.1":
            raise RuntimeError("libssh2 %s, not 1.11.1" % (_info.get("libssh2_version"),))
        m = _find_chacha(regions)
        if m == NULL:
            raise RuntimeError("libssh2's chacha20-poly1305 descriptor not recognised")
        if m.crypt != _chacha_crypt:
            _chacha_orig_crypt = m.crypt
            _patch(m, _chacha_crypt)
    except Exception as exc:  # noqa: BLE001 - reported, libssh2 left as it was
        _chacha_state = "not installed: %s" % (exc,)
        return
    _chacha_state = True


def chacha_guard():
    """True when the chacha20-poly1305 failure wrapper is installed, else why
    not (None before install_gcm_wrapper() ran)."""
    return _chacha_state
