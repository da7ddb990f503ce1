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
# wrapper too, for their own guard (_guard_block_decrypt: a flipped bit of a
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
# _gcm_crypt below.  For encryption, the packet's first call encrypts the
# whole packet at once (same IV step, same AAD, same bytes as libssh2's own
# code) and the following per-block calls of that packet return at once;
# the final call (the tag) goes to libssh2's function.  For decryption,
# libssh2 decrypts whatever part of a packet it has received in one
# decrypt() run of per-block calls; the run's first middle-block call
# decrypts the whole run (its length recomputed from libssh2 1.11.1's packet
# state, which is located through the outbuf address seen when encrypting,
# and validated field by field), the others return at once.  First-block
# and last-block (tag) calls always go to libssh2's function, after the
# guard (PSSH_NO_GCM_DECRYPT_BATCH=1 turns off the decryption part alone).
#
# Safety: the descriptors are found by an exact signature (name string,
# block/IV/key/tag sizes, flags, NULL get_len, algo == the EVP_aes_*_gcm that
# libssh2's libcrypto exports), never by offsets into libssh2's private
# structs; before anything is patched, a self-test encrypts sample packets
# with libssh2's function and with ours and requires identical ciphertext
# and tags.  Any mismatch leaves libssh2 untouched (and pssh then stops
# offering AES-GCM, see pssh/_backend.py).  A wrong result could not go
# unnoticed anyway: GCM authenticates every packet, so the server would drop
# the connection ("corrupted MAC") rather than accept bad data.  Installing
# is serialised by a process-wide mutex: two threads connecting for the first
# time must not both patch, or the second would record the wrapper as
# libssh2's function and the wrapper would call itself forever.

cdef bint _encrypt_batching = False
cdef bint _decrypt_batching = False


cdef inline int _guard_gcm_decrypt(unsigned char *block, size_t blocksize,
                                   int firstlast) noexcept nogil:
    """The guard: 0 when the call may go on; 1 to fail it; 2 when the call
    is answered already (an invalid first block).

    A first block holds the clear 4-byte length (the AAD) and 12 encrypted
    bytes; a final call holds the last encrypted bytes and the 16-byte tag.
    A failed crypt() call makes libssh2 1.11 free its packet payload pointer,
    which at a first block still points at the previous packet (owned by
    the packet queue: a double free).  So an invalid first block is not
    failed: its length field is zeroed and the call succeeds, and libssh2
    rejects the zero length (LIBSSH2_ERROR_DECRYPT) before allocating
    anything.  A final call fails normally (its payload is the current one).
    """
    cdef unsigned int plen
    if firstlast & _FIRST_BLOCK:
        memcpy(&plen, block, 4)
        plen = ntohl(plen)
        if blocksize != _GCM_BLOCK or plen % _GCM_BLOCK or \
                plen < _GCM_MIN_PACKET or \
                plen - 1 + _GCM_TAG > _LIBSSH2_MAX_PAYLOAD:
            memset(block, 0, 4)
            return 2
    if firstlast & _LAST_BLOCK:
        if blocksize < _GCM_TAG or blocksize > _LIBSSH2_CRYPT_BUF:
            return 1
    return 0


cdef evp_cipher_call_f _evp_cipher = NULL
cdef evp_ctrl_f _evp_ctrl = NULL
cdef object _gcm_state = None          # None: not tried; True; or the reason


cdef int _decrypt_ahead(void *session, crypt_ctx *cctx, unsigned char *block,
                        size_t blocksize) noexcept nogil:
    """A MIDDLE decryption call: decrypt every block the current decrypt()
    run of _libssh2_transport_read will pass, in one call.  Returns 0 when
    done, 1 on a cipher error, -1 when it cannot tell (caller falls back).

    The run's length is recomputed from the packet state as
    _libssh2_transport_read computed it; every value is checked first.  A
    mistake could not pass unnoticed: the GCM tag of the packet would not
    verify and libssh2 would fail the read.
    """
    global pssh_gcm_batch_ctx, pssh_gcm_batch_start, pssh_gcm_batch_end
    cdef unsigned char *p = _packet_of(session)
    cdef size_t readidx, writeidx, data_num, total_num, numbytes, length, rest
    cdef size_t middle
    if p == NULL or blocksize != 16:
        return -1
    writeidx = (<size_t *>(p + _OFF_WRITEIDX))[0]
    readidx = (<size_t *>(p + _OFF_READIDX))[0]
    data_num = (<size_t *>(p + _OFF_DATA_NUM))[0]
    total_num = (<size_t *>(p + _OFF_TOTAL_NUM))[0]
    if p + readidx != block or readidx >= writeidx or \
            writeidx > _PACKETBUFSIZE or data_num >= total_num or \
            total_num > _PACKETBUFSIZE + 64:
        return -1
    numbytes = writeidx - readidx
    if numbytes > total_num - data_num:
        numbytes = total_num - data_num
    if data_num + numbytes >= total_num:
        # The packet's last run: decrypt() ends with one call of 16..31
        # bytes holding the tag; the blocks before it are MIDDLE calls.
        length = total_num - data_num
        rest = length
        while rest >= 32:
            rest -= 16
        middle = length - rest
    else:
        length = numbytes - numbytes % 16
        if total_num < 16 + data_num:
            return -1
        if length > total_num - 16 - data_num:
            length = total_num - 16 - data_num
        middle = length
    if middle < 32:
        return -1
    if _evp_cipher(cctx.h, block, block, <unsigned int>middle) == -1:
        return 1
    pssh_gcm_batch_ctx = cctx.h
    pssh_gcm_batch_start = block
    pssh_gcm_batch_end = block + middle
    return 0


cdef evp_cipher_f _aes128gcm = NULL
cdef evp_cipher_f _aes256gcm = NULL
# Where struct transportpacket sits in LIBSSH2_SESSION (0: not seen yet).
cdef ptrdiff_t _packet_offset = 0
cdef object _block_state = None         # None: not tried; True; or the reason


cdef int _guard_block_decrypt(void *session, unsigned char *block,
                              size_t blocksize) noexcept nogil:
    """The guard for aes-ctr/aes-cbc: a first block libssh2 just decrypted.

    With a MAC over the plaintext the length is encrypted, but ctr is
    malleable: one flipped bit gives a length whose packet is not a whole
    number of blocks, and libssh2's decrypt() asserts on that.  Such a length
    is zeroed (libssh2 rejects it before allocating, see _guard_gcm_decrypt).
    With an etm MAC the length is in clear before the block and checked only
    after the MAC, but a server can still send one that is not a multiple of
    the block: that call fails (the payload libssh2 then frees is the
    current packet's).  Which case applies is told by the packet state of
    libssh2 1.11.1: the block is buf + readidx, or payload + 4 (etm).  The
    state sits at a fixed offset in every session, learnt from the start of
    an encrypted packet (_block_crypt); both this offset and the one 4 bytes
    before are tried, in case it was learnt from a packet whose first call
    was missed.  (Not a per-session cache: with hundreds of sessions in one
    thread an evicted entry would switch the guard off.)
    """
    cdef unsigned char *seen = <unsigned char *>session + _packet_offset
    cdef unsigned char *p
    cdef unsigned int plen
    cdef size_t readidx
    cdef int shift
    if _packet_offset == 0 or session == NULL:
        return 0
    for shift in range(0, 8, 4):
        p = seen - shift
        readidx = (<size_t *>(p + _OFF_READIDX))[0]
        if readidx < _PACKETBUFSIZE and p + readidx == block:
            memcpy(&plen, block, 4)
            plen = ntohl(plen)
            if (plen + 4) % blocksize or plen > _LIBSSH2_MAX_PAYLOAD:
                memset(block, 0, 4)
            return 0
        if (<unsigned char **>(p + _OFF_PAYLOAD))[0] + 4 == block:
            memcpy(&plen, block - 4, 4)
            plen = ntohl(plen)
            return 1 if plen % blocksize or plen < blocksize else 0
    return 0


cdef int _block_crypt(void *session, unsigned int seqno, unsigned char *block,
                      size_t blocksize, void **abstract,
                      int firstlast) noexcept nogil:
    """The wrapper for aes-ctr/aes-cbc: libssh2's function, then the guard."""
    cdef crypt_ctx *cctx = (<crypt_ctx **>abstract)[0]
    cdef int rc
    global _packet_offset, pssh_block_packet_start
    if cctx.encrypt:
        # A packet's calls run in one thread, in order, ending with a last
        # block: the call after one starts a packet, at outbuf -- or at
        # outbuf + 4 with an etm MAC, whose calls have no first block.
        if pssh_block_packet_start and session != NULL:
            _packet_offset = (block - _OFF_OUTBUF) - <unsigned char *>session
            if not firstlast & _FIRST_BLOCK:
                _packet_offset -= 4
        pssh_block_packet_start = (firstlast & _LAST_BLOCK) != 0
    rc = _orig_crypt(session, seqno, block, blocksize, abstract, firstlast)
    if rc == 0 and not cctx.encrypt and firstlast & _FIRST_BLOCK and \
            blocksize >= 8:
        return _guard_block_decrypt(session, block, blocksize)
    return rc


cdef int _gcm_crypt(void *session, unsigned int seqno, unsigned char *block,
                    size_t blocksize, void **abstract,
                    int firstlast) noexcept nogil:
    global pssh_gcm_batch_ctx, pssh_gcm_batch_start, pssh_gcm_batch_end
    cdef crypt_ctx *cctx = (<crypt_ctx **>abstract)[0]
    cdef unsigned int plen
    cdef char lastiv[1]
    cdef int rc
    if cctx.algo != _aes128gcm and cctx.algo != _aes256gcm:
        return _block_crypt(session, seqno, block, blocksize, abstract,
                            firstlast)
    if not cctx.encrypt:
        rc = _guard_gcm_decrypt(block, blocksize, firstlast)
        if rc:
            pssh_gcm_batch_ctx = NULL
            return rc & 1               # 1: libssh2 fails the read
        if firstlast == _MIDDLE_BLOCK and _decrypt_batching:
            if pssh_gcm_batch_ctx == cctx.h and \
                    block > pssh_gcm_batch_start and \
                    block + blocksize <= pssh_gcm_batch_end:
                if block + blocksize == pssh_gcm_batch_end:
                    pssh_gcm_batch_ctx = NULL
                return 0                # decrypted with the run's first block
            pssh_gcm_batch_ctx = NULL
            rc = _decrypt_ahead(session, cctx, block, blocksize)
            if rc >= 0:
                return rc
        pssh_gcm_batch_ctx = NULL
        return _orig_crypt(session, seqno, block, blocksize, abstract,
                           firstlast)
    if firstlast == _FIRST_BLOCK:
        if session != NULL:
            _remember_packet(session, block - _OFF_OUTBUF)
        pssh_gcm_batch_ctx = NULL
        memcpy(&plen, block, 4)
        plen = ntohl(plen)
        if not _encrypt_batching or blocksize != 16 or plen < 12 or \
                plen > _MAX_PACKET:
            return _orig_crypt(session, seqno, block, blocksize, abstract,
                               firstlast)
        # As _libssh2_cipher_crypt's first block: next IV, the length as
        # AAD -- then the whole rest of the packet in one call.
        _evp_ctrl(cctx.h, _EVP_CTRL_GCM_IV_GEN, 1, lastiv)
        if _evp_cipher(cctx.h, NULL, block, 4) == -1:
            return 1
        if _evp_cipher(cctx.h, block + 4, block + 4, plen) == -1:
            return 1
        pssh_gcm_batch_ctx = cctx.h
        pssh_gcm_batch_start = block
        pssh_gcm_batch_end = block + 4 + plen
        return 0
    if firstlast == _MIDDLE_BLOCK and pssh_gcm_batch_ctx == cctx.h and \
            block > pssh_gcm_batch_start and \
            block + blocksize <= pssh_gcm_batch_end:
        return 0                        # already encrypted with the first
    pssh_gcm_batch_ctx = NULL
    return _orig_crypt(session, seqno, block, blocksize, abstract, firstlast)


cdef int _run_packets(crypt_f crypt, evp_cipher_f algo, void *ctx,
                      unsigned char *buf, int plen) noexcept nogil:
    """Encrypt buf[0:plen] + tag the way _libssh2_transport_send does."""
    cdef crypt_ctx cc
    cdef void *abstract = &cc
    cdef int i, firstlast, bsize
    cc.encrypt = 1
    cc.algo = algo
    cc.h = ctx
    i = 0
    while i < plen:
        firstlast = _FIRST_BLOCK if i == 0 else _MIDDLE_BLOCK
        bsize = plen - i if plen - i < 16 else 16
        if crypt(NULL, 0, buf + i, bsize, &abstract, firstlast):
            return 1
        i += 16
    return crypt(NULL, 0, buf + plen, 16, &abstract, _LAST_BLOCK)


cdef int _self_test(evp_cipher_f algo, void *lib, crypt_f orig) except -1:
    global pssh_gcm_batch_ctx
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
            if not init(ctx, algo(), key, iv, 1) or not _evp_ctrl(
                    ctx, _EVP_CTRL_AEAD_SET_IV_FIXED, -1, iv):
                raise RuntimeError("EVP init failed")
        for rounds in range(4):          # consecutive packets: IV steps too
            plen = (20, 68, 1012, 1988)[rounds]
            memcpy(a, <const char *>sample + 44, 2048)
            be = htonl_(plen - 4)
            memcpy(a, &be, 4)
            memcpy(b, a, 2048)
            if _run_packets(orig, algo, ca, a, plen):
                raise RuntimeError("libssh2 encryption failed in the self-test")
            if _run_packets(_gcm_crypt, algo, cb, b, plen):
                raise RuntimeError("batched encryption failed in the self-test")
            if memcmp(a, b, plen + 16) != 0:
                ok = 0
    finally:
        ctx_free(ca)
        ctx_free(cb)
        pssh_gcm_batch_ctx = NULL
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
            "encrypt_batching": installed and bool(_encrypt_batching),
            "decrypt_batching": installed and bool(_decrypt_batching),
            "reason": None if installed or _gcm_state is None else _gcm_state}


cdef _install_locked():
    global _gcm_state, _orig_crypt, _evp_cipher, _evp_ctrl, _block_state
    global _chacha_state
    global _encrypt_batching, _decrypt_batching, _aes128gcm, _aes256gcm
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
        _evp_cipher = <evp_cipher_call_f>dlsym(lib, b"EVP_Cipher")
        _evp_ctrl = <evp_ctrl_f>dlsym(lib, b"EVP_CIPHER_CTX_ctrl")
        if aes128 == NULL or aes256 == NULL or _evp_cipher == NULL or \
                _evp_ctrl == NULL:
            raise RuntimeError("libcrypto symbols not found")
        path = _info.get("libssh2_path")
        if not path:
            raise RuntimeError("libssh2 path unknown")
        regions = _readable_regions(os.fsencode(os.path.realpath(path)))
        m128 = _find_method(regions, b"aes128-gcm@openssh.com", 16, aes128)
        m256 = _find_method(regions, b"aes256-gcm@openssh.com", 32, aes256)
        if m128 == NULL or m256 == NULL or m128.crypt != m256.crypt:
            raise RuntimeError("libssh2's AES-GCM descriptors not recognised")
        if m128.crypt == _gcm_crypt:
            # Ours already (this module state was lost, the patch was not):
            # libssh2's own function is unknown now, so do not record it.
            if _orig_crypt == NULL:
                raise RuntimeError("wrapper installed but libssh2's function unknown")
            _gcm_state = True
            return
        _orig_crypt = m128.crypt
        _aes128gcm = aes128
        _aes256gcm = aes256
        _encrypt_batching = _batching_wanted("PSSH_NO_GCM_BATCH")
        _self_test(aes128, lib, _orig_crypt)
        _self_test(aes256, lib, _orig_crypt)
        _patch(m128, _gcm_crypt)
        _patch(m256, _gcm_crypt)
        # Decryption batching needs libssh2's packet state, whose layout is
        # known for this version only.
        _decrypt_batching = (_encrypt_batching and
                             _info.get("libssh2_version") == "1.11.1" and
                             _batching_wanted("PSSH_NO_GCM_DECRYPT_BATCH"))
    except Exception as exc:  # noqa: BLE001 - reported, libssh2 left as it was
        _encrypt_batching = False
        _gcm_state = "not installed: %s" % (exc,)
        _block_state = "not installed: the AES-GCM wrapper is not"
        _chacha_state = "not installed: the AES-GCM wrapper is not"
        return
    _gcm_state = True
    _install_block_guard(lib, regions)
    _install_chacha_guard(regions)


# The aes-ctr/aes-cbc descriptors the wrapper guards too: (name, key length,
# libcrypto cipher).  Only those pssh offers (pssh/_connect.py CIPHERS).
_BLOCK_CIPHERS = (
    (b"aes128-ctr", 16, b"EVP_aes_128_ctr"), (b"aes192-ctr", 24, b"EVP_aes_192_ctr"),
    (b"aes256-ctr", 32, b"EVP_aes_256_ctr"), (b"aes128-cbc", 16, b"EVP_aes_128_cbc"),
    (b"aes192-cbc", 24, b"EVP_aes_192_cbc"), (b"aes256-cbc", 32, b"EVP_aes_256_cbc"))


cdef _install_block_guard(void *lib, list regions):
    """Wrap libssh2's aes-ctr/aes-cbc descriptors with _gcm_crypt (which
    sends them to _block_crypt): all or none."""
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
            m = _find_method(regions, name, secret_len, algo, 16, 0, 0)
            if m == NULL or m.crypt != _orig_crypt:
                raise RuntimeError("libssh2's %s descriptor not recognised" % (name.decode(),))
            found.append(<uintptr_t>m)
        for address in found:
            _patch(<crypt_method *><uintptr_t>address, _gcm_crypt)
    except Exception as exc:  # noqa: BLE001 - reported; pssh then stops offering them
        _block_state = "not installed: %s" % (exc,)
        return
    _block_state = True


def block_cipher_guard():
    """True when the aes-ctr/aes-cbc length guard is installed, else why not
    (None before install_gcm_wrapper() ran)."""
    return _block_state
