# libssh2's cipher method descriptors and packet state, as pssh's crypt
# wrapper (src/gcm.pxi) sees them: the structures of libssh2 1.11.x, finding
# a descriptor in the loaded libssh2 by its exact signature, replacing its
# crypt function, and locating a session's packet state.

from libc.string cimport memcmp, memcpy, memset, strcmp
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport uintptr_t

# The C side (thread-local batching state, the install mutex, system
# headers) is src/gcm_guard.c; setup.py compiles it into the extension.
cdef extern from "gcm_guard.h":
    void *pssh_gcm_batch_ctx
    unsigned char *pssh_gcm_batch_start
    unsigned char *pssh_gcm_batch_end
    void **pssh_gcm_sessions
    unsigned char **pssh_gcm_packets
    unsigned int pssh_gcm_next
    int pssh_block_packet_start
    int PSSH_GCM_SESSIONS
    int mprotect(void *addr, size_t len, int prot) nogil
    long sysconf(int name) nogil
    int _SC_PAGESIZE
    int PROT_READ
    int PROT_WRITE
    unsigned int ntohl(unsigned int) nogil
    ctypedef struct pthread_mutex_t:
        pass
    pthread_mutex_t pssh_gcm_install_lock
    int pthread_mutex_lock(pthread_mutex_t *m) nogil
    int pthread_mutex_unlock(pthread_mutex_t *m) nogil

ctypedef int (*crypt_f)(void *session, unsigned int seqno,
                        unsigned char *block, size_t blocksize,
                        void **abstract, int firstlast) noexcept nogil
ctypedef void *(*evp_cipher_f)() noexcept nogil
ctypedef int (*evp_cipher_call_f)(void *ctx, unsigned char *out,
                                  const unsigned char *inp,
                                  unsigned int inl) noexcept nogil
ctypedef int (*evp_ctrl_f)(void *ctx, int type, int arg,
                           void *ptr) noexcept nogil
ctypedef void *(*evp_ctx_new_f)() noexcept nogil
ctypedef void (*evp_ctx_free_f)(void *ctx) noexcept nogil
ctypedef int (*evp_init_f)(void *ctx, const void *cipher,
                           const unsigned char *key,
                           const unsigned char *iv, int enc) noexcept nogil

# libssh2_priv.h: struct _LIBSSH2_CRYPT_METHOD (1.11.x)
ctypedef struct crypt_method:
    const char *name
    const char *pem_annotation
    int blocksize
    int iv_len
    int secret_len
    int auth_len
    long flags
    void *init
    void *get_len
    crypt_f crypt
    void *dtor
    evp_cipher_f algo

# crypt.c: struct crypt_ctx (its leading fields)
ctypedef struct crypt_ctx:
    int encrypt
    evp_cipher_f algo
    void *h

cdef enum:
    _FIRST_BLOCK = 1
    _MIDDLE_BLOCK = 0
    _LAST_BLOCK = 2
    _FLAGS_GCM = 3                      # INTEGRATED_MAC | PKTLEN_AAD
    _EVP_CTRL_GCM_IV_GEN = 0x13
    _EVP_CTRL_AEAD_SET_IV_FIXED = 0x12
    _MAX_PACKET = 256 * 1024
    _GCM_BLOCK = 16
    _GCM_TAG = 16
    # Smallest honest packet: padding length byte, one payload byte and at
    # least 4 padding bytes, rounded up to the block.
    _GCM_MIN_PACKET = 16
    # libssh2 1.11.1 LIBSSH2_PACKET_MAXPAYLOAD: bound on length - 1 + tag.
    _LIBSSH2_MAX_PAYLOAD = 40000
    # _libssh2_cipher_crypt's stack buffer (EVP_MAX_BLOCK_LENGTH).
    _LIBSSH2_CRYPT_BUF = 32

cdef inline unsigned int htonl_(unsigned int v) noexcept nogil:
    return ntohl(v)


# libssh2 1.11.1 libssh2_priv.h, struct transportpacket: buf[35000],
# init[5], size_t writeidx, readidx, uint32 packet_length, uint8
# padding_length, size_t data_num, total_num, payload, wptr, outbuf[35000].
cdef enum:
    _PACKETBUFSIZE = 35000
    _OFF_WRITEIDX = 35008
    _OFF_READIDX = 35016
    _OFF_DATA_NUM = 35032
    _OFF_TOTAL_NUM = 35040
    _OFF_PAYLOAD = 35048
    _OFF_OUTBUF = 35064

# libssh2's own crypt function for the EVP ciphers (AES-GCM, -ctr, -cbc):
# recorded once, before any descriptor is patched.
cdef crypt_f _orig_crypt = NULL

cdef inline void _remember_packet(void *session, unsigned char *p) noexcept nogil:
    global pssh_gcm_next
    cdef unsigned int i
    for i in range(PSSH_GCM_SESSIONS):
        if pssh_gcm_sessions[i] == session:
            pssh_gcm_packets[i] = p
            return
    i = pssh_gcm_next % PSSH_GCM_SESSIONS
    pssh_gcm_next += 1
    pssh_gcm_sessions[i] = session
    pssh_gcm_packets[i] = p


cdef inline unsigned char *_packet_of(void *session) noexcept nogil:
    cdef unsigned int i
    for i in range(PSSH_GCM_SESSIONS):
        if pssh_gcm_sessions[i] == session:
            return pssh_gcm_packets[i]
    return NULL


cdef list _readable_regions(bytes path):
    regions = []
    with open("/proc/self/maps", "rb") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == path and fields[1][:1] == b"r":
                start, end = fields[0].split(b"-")
                regions.append((int(start, 16), int(end, 16)))
    return regions


cdef uintptr_t _find_string(list regions, bytes text):
    cdef const char *p
    for start, end in regions:
        p = <const char *><uintptr_t>start
        data = (<char *>p)[:end - start]
        at = data.find(text + b"\0")
        while at >= 0:
            if at == 0 or data[at - 1] == 0:
                return start + at
            at = data.find(text + b"\0", at + 1)
    return 0


cdef crypt_method *_find_method(list regions, bytes name, int secret_len,
                                evp_cipher_f algo, int iv_len=12,
                                int auth_len=16, long flags=_FLAGS_GCM):
    cdef uintptr_t name_at = _find_string(regions, name)
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
                if m.blocksize == 16 and m.iv_len == iv_len and \
                        m.secret_len == secret_len and \
                        m.auth_len == auth_len and \
                        m.flags == flags and m.get_len == NULL and \
                        m.init != NULL and m.crypt != NULL and \
                        m.dtor != NULL and m.algo == algo:
                    if found != NULL:
                        return NULL     # ambiguous: touch nothing
                    found = m
            a += sizeof(void *)
    return found


cdef int _patch(crypt_method *m, crypt_f wrapper) except -1:
    cdef long page = sysconf(_SC_PAGESIZE)
    cdef uintptr_t field = <uintptr_t>&m.crypt
    cdef uintptr_t first = field & ~(<uintptr_t>page - 1)
    cdef size_t span = <size_t>(field + sizeof(void *) - first)
    if mprotect(<void *>first, span, PROT_READ | PROT_WRITE) != 0:
        raise OSError("mprotect failed")
    m.crypt = wrapper
    mprotect(<void *>first, span, PROT_READ)
    return 0
