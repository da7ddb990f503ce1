# libssh2's cipher method descriptors as pssh's crypt wrappers see them:
# finding one in the loaded libssh2 by its exact signature and replacing its
# crypt function.  The wrappers themselves, the structs of libssh2 1.11.x and
# their shared state are C: src/crypt_guard.c/.h (setup.py compiles them in).

from libc.string cimport memcmp, memcpy
from libc.stdint cimport uintptr_t

cdef extern from "crypt_guard.h":
    ctypedef int (*pssh_crypt_f)(void *session, unsigned int seqno,
                                 unsigned char *block, size_t blocksize,
                                 void **abstract, int firstlast) noexcept nogil
    ctypedef void *(*pssh_evp_cipher_f)() noexcept nogil
    ctypedef int (*pssh_evp_cipher_call_f)(void *ctx, unsigned char *out,
                                           const unsigned char *inp,
                                           unsigned int inl) noexcept nogil
    ctypedef int (*pssh_evp_ctrl_f)(void *ctx, int type, int arg,
                                    void *ptr) noexcept nogil
    ctypedef struct pssh_crypt_method:
        int blocksize
        int iv_len
        int secret_len
        int auth_len
        long flags
        void *init
        void *get_len
        pssh_crypt_f crypt
        void *dtor
        pssh_evp_cipher_f algo
    int _FLAGS_GCM "PSSH_FLAGS_GCM"
    int _FLAGS_FULL_PACKET "PSSH_FLAGS_FULL_PACKET"
    int _EVP_CTRL_AEAD_SET_IV_FIXED "PSSH_EVP_CTRL_AEAD_SET_IV_FIXED"

    ctypedef struct pthread_mutex_t:
        pass
    pthread_mutex_t pssh_gcm_install_lock
    int pthread_mutex_lock(pthread_mutex_t *m) nogil
    int pthread_mutex_unlock(pthread_mutex_t *m) nogil
    void pssh_gcm_forget_batch() noexcept nogil

    pssh_crypt_f pssh_orig_crypt
    pssh_crypt_f pssh_chacha_orig_crypt
    pssh_evp_cipher_call_f pssh_evp_cipher
    pssh_evp_ctrl_f pssh_evp_ctrl
    pssh_evp_cipher_f pssh_aes128gcm
    pssh_evp_cipher_f pssh_aes256gcm
    int pssh_encrypt_batching
    int pssh_decrypt_batching

    int pssh_gcm_crypt(void *session, unsigned int seqno, unsigned char *block,
                       size_t blocksize, void **abstract, int firstlast) noexcept nogil
    int pssh_chacha_crypt(void *session, unsigned int seqno, unsigned char *block,
                          size_t blocksize, void **abstract, int firstlast) noexcept nogil
    int pssh_run_packets(pssh_crypt_f crypt, pssh_evp_cipher_f algo, void *ctx,
                         unsigned char *buf, int plen) noexcept nogil

    int mprotect(void *addr, size_t len, int prot) nogil
    long sysconf(int name) nogil
    int _SC_PAGESIZE
    int PROT_READ
    int PROT_WRITE
    unsigned int htonl(unsigned int) nogil

ctypedef pssh_crypt_f crypt_f
ctypedef pssh_evp_cipher_f evp_cipher_f
ctypedef pssh_crypt_method crypt_method

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


cdef crypt_method *_find_method(list regions, bytes name, int blocksize,
                                int iv_len, int secret_len, int auth_len,
                                long flags, bint has_get_len,
                                evp_cipher_f algo):
    """The one descriptor named `name` with exactly this signature (`algo`
    NULL: any); NULL when there is none or more than one."""
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
                if m.blocksize == blocksize and m.iv_len == iv_len and \
                        m.secret_len == secret_len and \
                        m.auth_len == auth_len and m.flags == flags and \
                        (m.get_len != NULL) == has_get_len and \
                        m.init != NULL and m.crypt != NULL and \
                        m.dtor != NULL and (algo == NULL or m.algo == algo):
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
