# pssh's wrapper around libssh2's AES-GCM crypt function: a length guard,
# always on, and whole-packet batching, on unless opted out.
#
# Guard (why): the libssh2 1.11.1 in the ssh2-python wheel is built with
# asserts on.  AES-GCM sends the packet length in clear (it is the AAD), so
# a man in the middle can rewrite it before any host-key or MAC check: a
# length of 11 leaves a 15-byte final call, below the 16-byte tag, and
# `assert(cryptlen >= 0)` in libssh2's OpenSSL glue aborts the whole process.
# The wrapper sees every decryption call first and fails the ones no honest
# peer sends -- a first block whose clear length is not a multiple of 16
# between the minimum packet and libssh2's bound, a final call shorter than
# the tag -- so libssh2 fails that connection with LIBSSH2_ERROR_DECRYPT and
# no assert is reached.  The guard is installed whatever the batching
# settings (PSSH_NO_GCM_BATCH=1 turns batching off, not the guard).  The
# aes-ctr/aes-cbc descriptors share libssh2's crypt function and get the
# wrapper too, for their own guard (guard_block_decrypt in crypt_guard.c: a flipped bit of a
# ctr-encrypted length reaches another assert); they are never batched.
#
# Batching (why): libssh2 1.11's transport layer encrypts every outgoing
# packet in 16-byte steps, one crypt() call -- and one EVP_Cipher call -- per
# block ("some crypto back-ends ... cannot [encrypt in one call]").  For
# AES-GCM that is ~2000 OpenSSL calls per 32 KB packet, and OpenSSL cannot
# use its stitched AES-NI+GHASH code on 16-byte inputs: about half of the
# client CPU of an upload.  OpenSSL's GCM takes a whole packet in one call.
#
# What: install_gcm_wrapper() replaces the `crypt` function pointer of
# libssh2's two AES-GCM method descriptors (aes128-gcm, aes256-gcm) with
# pssh_gcm_crypt (src/crypt_guard.c, where the guards and the batching are;
# this file finds, self-tests and installs it).  For encryption, the packet's
# first call encrypts the whole packet at once (same IV step, same AAD, same
# bytes as libssh2's own code) and the following per-block calls of that
# packet return at once; the final call (the tag) goes to libssh2's function.
# For decryption, libssh2 decrypts whatever part of a packet it has received
# in one decrypt() run of per-block calls; the run's first middle-block call
# decrypts the whole run (its length recomputed from libssh2 1.11.1's packet
# state, which is located through the outbuf address seen when encrypting, and
# validated field by field), the others return at once.  First-block and
# last-block (tag) calls always go to libssh2's function, after the guard
# (PSSH_NO_GCM_DECRYPT_BATCH=1 turns off the decryption part alone).
#
# Safety: the descriptors are found by an exact signature (name string,
# block/IV/key/tag sizes, flags, NULL get_len, algo == the EVP_aes_*_gcm that
# libssh2's libcrypto exports), never by offsets into libssh2's private
# structs; before anything is patched, a self-test encrypts sample packets
# with libssh2's function and with ours and requires identical ciphertext
# and tags.  Any mismatch leaves libssh2 untouched (and pssh then stops
# offering AES-GCM, see pssh/core/backend.py).  A wrong result could not go
# unnoticed anyway: GCM authenticates every packet, so the server would drop
# the connection ("corrupted MAC") rather than accept bad data.  Installing
# is serialised by a process-wide mutex: two threads connecting for the first
# time must not both patch, or the second would record the wrapper as
# libssh2's function and the wrapper would call itself forever.

# The libcrypto calls of the self-test alone.
ctypedef void *(*evp_ctx_new_f)() noexcept nogil
ctypedef void (*evp_ctx_free_f)(void *ctx) noexcept nogil
ctypedef int (*evp_init_f)(void *ctx, const void *cipher,
                           const unsigned char *key,
                           const unsigned char *iv, int enc) noexcept nogil

cdef object _gcm_state = None          # None: not tried; True; or the reason
cdef object _block_state = None         # None: not tried; True; or the reason


cdef int _self_test(evp_cipher_f algo, void *lib, crypt_f orig) except -1:
    cdef evp_ctx_new_f ctx_new = <evp_ctx_new_f>dlsym(lib, b"EVP_CIPHER_CTX_new")
    cdef evp_ctx_free_f ctx_free = <evp_ctx_free_f>dlsym(lib, b"EVP_CIPHER_CTX_free")
    cdef evp_init_f init = <evp_init_f>dlsym(lib, b"EVP_CipherInit")
    if ctx_new == NULL or ctx_free == NULL or init == NULL:
        raise RuntimeError("libcrypto functions not found")
    cdef unsigned char key[32]
    cdef unsigned char iv[12]
    cdef unsigned char a[2048]
    cdef unsigned char b[2048]
    cdef void *ca = ctx_new()
    cdef void *cb = ctx_new()
    cdef int plen, rounds, ok = 1
    cdef unsigned int be
    sample = os.urandom(32 + 12 + 2048)
    memcpy(key, <const char *>sample, 32)
    memcpy(iv, <const char *>sample + 32, 12)
    cdef void *ctx
    try:
        if ca == NULL or cb == NULL:
            raise RuntimeError("EVP_CIPHER_CTX_new failed")
        for which in range(2):
            ctx = ca if which == 0 else cb
            if not init(ctx, algo(), key, iv, 1) or not pssh_evp_ctrl(
                    ctx, _EVP_CTRL_AEAD_SET_IV_FIXED, -1, iv):
                raise RuntimeError("EVP init failed")
        for rounds in range(4):          # consecutive packets: IV steps too
            plen = (20, 68, 1012, 1988)[rounds]
            memcpy(a, <const char *>sample + 44, 2048)
            be = htonl(plen - 4)
            memcpy(a, &be, 4)
            memcpy(b, a, 2048)
            if pssh_run_packets(orig, algo, ca, a, plen):
                raise RuntimeError("libssh2 encryption failed in the self-test")
            if pssh_run_packets(pssh_gcm_crypt, algo, cb, b, plen):
                raise RuntimeError("batched encryption failed in the self-test")
            if memcmp(a, b, plen + 16) != 0:
                ok = 0
    finally:
        ctx_free(ca)
        ctx_free(cb)
        pssh_gcm_forget_batch()
    if not ok:
        raise RuntimeError("batched encryption differs from libssh2's")
    return 0


def _batching_wanted(name):
    return os.environ.get(name, "") in ("", "0")


def install_gcm_wrapper():
    """Install pssh's AES-GCM crypt wrapper in libssh2: the length guard
    always, whole-packet batching unless PSSH_NO_GCM_BATCH=1.

    Idempotent and thread-safe; returns True when the wrapper (hence the
    guard) is in place, else a string saying why not (nothing was changed
    then).  See src/gcm.pxi.
    """
    if _gcm_state is not None:          # set once, under the lock
        return _gcm_state
    with nogil:                         # the holder may need the GIL
        pthread_mutex_lock(&pssh_gcm_install_lock)
    try:
        if _gcm_state is None:
            _install_locked()
        return _gcm_state
    finally:
        pthread_mutex_unlock(&pssh_gcm_install_lock)


def enable_gcm_batching():
    """Former name of install_gcm_wrapper() (same result)."""
    return install_gcm_wrapper()


def gcm_wrapper_state():
    """What the wrapper does in this process: a dict with ``guard``,
    ``encrypt_batching``, ``decrypt_batching`` (bools) and ``reason`` (why
    the guard is not installed, or None)."""
    installed = _gcm_state is True
    return {"guard": installed,
            "encrypt_batching": installed and bool(pssh_encrypt_batching),
            "decrypt_batching": installed and bool(pssh_decrypt_batching),
            "reason": None if installed or _gcm_state is None else _gcm_state}


cdef _install_locked():
    global _gcm_state, _block_state, _chacha_state
    global pssh_orig_crypt, pssh_evp_cipher, pssh_evp_ctrl
    global pssh_encrypt_batching, pssh_decrypt_batching
    global pssh_aes128gcm, pssh_aes256gcm
    cdef void *lib
    cdef evp_cipher_f aes128
    cdef evp_cipher_f aes256
    cdef crypt_method *m128
    cdef crypt_method *m256
    try:
        lib = dlopen(os.fsencode(ssh2.session.__file__), RTLD_NOW | RTLD_NOLOAD)
        if lib == NULL:
            raise RuntimeError("no handle on ssh2.session")
        aes128 = <evp_cipher_f>dlsym(lib, b"EVP_aes_128_gcm")
        aes256 = <evp_cipher_f>dlsym(lib, b"EVP_aes_256_gcm")
        pssh_evp_cipher = <pssh_evp_cipher_call_f>dlsym(lib, b"EVP_Cipher")
        pssh_evp_ctrl = <pssh_evp_ctrl_f>dlsym(lib, b"EVP_CIPHER_CTX_ctrl")
        if aes128 == NULL or aes256 == NULL or pssh_evp_cipher == NULL or \
                pssh_evp_ctrl == NULL:
            raise RuntimeError("libcrypto symbols not found")
        path = _info.get("libssh2_path")
        if not path:
            raise RuntimeError("libssh2 path unknown")
        regions = _readable_regions(os.fsencode(os.path.realpath(path)))
        m128 = _find_method(regions, b"aes128-gcm@openssh.com", 16, 12, 16, 16,
                            _FLAGS_GCM, False, aes128)
        m256 = _find_method(regions, b"aes256-gcm@openssh.com", 16, 12, 32, 16,
                            _FLAGS_GCM, False, aes256)
        if m128 == NULL or m256 == NULL or m128.crypt != m256.crypt:
            raise RuntimeError("libssh2's AES-GCM descriptors not recognised")
        if m128.crypt == pssh_gcm_crypt:
            # Ours already (this module state was lost, the patch was not):
            # libssh2's own function is unknown now, so do not record it.
            if pssh_orig_crypt == NULL:
                raise RuntimeError("wrapper installed but libssh2's function unknown")
            _gcm_state = True
            return
        pssh_orig_crypt = m128.crypt
        pssh_aes128gcm = aes128
        pssh_aes256gcm = aes256
        pssh_encrypt_batching = _batching_wanted("PSSH_NO_GCM_BATCH")
        _self_test(aes128, lib, pssh_orig_crypt)
        _self_test(aes256, lib, pssh_orig_crypt)
        _patch(m128, pssh_gcm_crypt)
        _patch(m256, pssh_gcm_crypt)
        # Decryption batching needs libssh2's packet state, whose layout is
        # known for this version only.
        pssh_decrypt_batching = (pssh_encrypt_batching and
                             _info.get("libssh2_version") == "1.11.1" and
                             _batching_wanted("PSSH_NO_GCM_DECRYPT_BATCH"))
    except Exception as exc:  # noqa: BLE001 - reported, libssh2 left as it was
        pssh_encrypt_batching = False
        _gcm_state = "not installed: %s" % (exc,)
        _block_state = "not installed: the AES-GCM wrapper is not"
        _chacha_state = "not installed: the AES-GCM wrapper is not"
        return
    _gcm_state = True
    _install_block_guard(lib, regions)
    _install_chacha_guard(regions)


# The aes-ctr/aes-cbc descriptors the wrapper guards too: (name, key length,
# libcrypto cipher).  Only those pssh offers (pssh/connection/connect.py CIPHERS).
_BLOCK_CIPHERS = (
    (b"aes128-ctr", 16, b"EVP_aes_128_ctr"), (b"aes192-ctr", 24, b"EVP_aes_192_ctr"),
    (b"aes256-ctr", 32, b"EVP_aes_256_ctr"), (b"aes128-cbc", 16, b"EVP_aes_128_cbc"),
    (b"aes192-cbc", 24, b"EVP_aes_192_cbc"), (b"aes256-cbc", 32, b"EVP_aes_256_cbc"))


cdef _install_block_guard(void *lib, list regions):
    """Wrap libssh2's aes-ctr/aes-cbc descriptors with pssh_gcm_crypt (which
    sends them to block_crypt): all or none."""
    global _block_state
    cdef crypt_method *m
    cdef evp_cipher_f algo
    cdef list found = []
    try:
        # The guard reads libssh2's packet state: this version's layout only.
        if _info.get("libssh2_version") != "1.11.1":
            raise RuntimeError("libssh2 %s, not 1.11.1" % (_info.get("libssh2_version"),))
        for name, secret_len, symbol in _BLOCK_CIPHERS:
            algo = <evp_cipher_f>dlsym(lib, symbol)
            if algo == NULL:
                raise RuntimeError("%s not found" % (symbol.decode(),))
            m = _find_method(regions, name, 16, 16, secret_len, 0, 0, False,
                             algo)
            if m == NULL or m.crypt != pssh_orig_crypt:
                raise RuntimeError("libssh2's %s descriptor not recognised" % (name.decode(),))
            found.append(<uintptr_t>m)
        for address in found:
            _patch(<crypt_method *><uintptr_t>address, pssh_gcm_crypt)
    except Exception as exc:  # noqa: BLE001 - reported; pssh then stops offering them
        _block_state = "not installed: %s" % (exc,)
        return
    _block_state = True


def block_cipher_guard():
    """True when the aes-ctr/aes-cbc length guard is installed, else why not
    (None before install_gcm_wrapper() ran)."""
    return _block_state
