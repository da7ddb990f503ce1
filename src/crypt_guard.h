/*
 * pssh's wrappers around libssh2 1.11's crypt functions (the C half; the
 * Cython half in src/gcm.pxi, src/chacha_guard.pxi and src/crypt_methods.pxi
 * finds libssh2's cipher descriptors, self-tests and installs these).
 *
 *  - pssh_gcm_crypt: AES-GCM (and, through pssh_block_crypt, aes-ctr/aes-cbc):
 *    the packet-length guards that keep a tampered length away from
 *    libssh2's asserts, and AES-GCM whole-packet batching;
 *  - pssh_chacha_crypt: chacha20-poly1305, a failed check made an error.
 *
 * Why C: these run for every block of every packet, inside libssh2, with no
 * Python involved; the state they share is per thread (a packet's crypt()
 * calls all run in one thread, in order), which Cython cannot declare.
 * Everything here is read by the wrappers and written only by the installer,
 * under pssh_gcm_install_lock, before any descriptor points at a wrapper.
 */
#ifndef PSSH_CRYPT_GUARD_H
#define PSSH_CRYPT_GUARD_H

#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <pthread.h>

#if defined(__GNUC__)
#define PSSH_HIDDEN __attribute__((visibility("hidden")))
#else
#define PSSH_HIDDEN
#endif

/* libssh2 1.11's crypt() and the libcrypto calls the wrappers make. */
typedef int (*pssh_crypt_f)(void *session, unsigned int seqno, unsigned char *block,
                            size_t blocksize, void **abstract, int firstlast);
typedef void *(*pssh_evp_cipher_f)(void);
typedef int (*pssh_evp_cipher_call_f)(void *ctx, unsigned char *out,
                                      const unsigned char *in, unsigned int inl);
typedef int (*pssh_evp_ctrl_f)(void *ctx, int type, int arg, void *ptr);

/* libssh2_priv.h: struct _LIBSSH2_CRYPT_METHOD (1.11.x). */
typedef struct {
    const char *name;
    const char *pem_annotation;
    int blocksize;
    int iv_len;
    int secret_len;
    int auth_len;
    long flags;
    void *init;
    void *get_len;
    pssh_crypt_f crypt;
    void *dtor;
    pssh_evp_cipher_f algo;
} pssh_crypt_method;

/* crypt.c: struct crypt_ctx (its leading fields). */
typedef struct {
    int encrypt;
    pssh_evp_cipher_f algo;
    void *h;
} pssh_crypt_ctx;

/* crypt()'s firstlast argument. */
#define PSSH_MIDDLE_BLOCK 0
#define PSSH_FIRST_BLOCK 1
#define PSSH_LAST_BLOCK 2
/* Descriptor flags: INTEGRATED_MAC | PKTLEN_AAD (AES-GCM); REQUIRES_FULL_PACKET. */
#define PSSH_FLAGS_GCM 3
#define PSSH_FLAGS_FULL_PACKET 4
#define PSSH_EVP_CTRL_GCM_IV_GEN 0x13
#define PSSH_EVP_CTRL_AEAD_SET_IV_FIXED 0x12
#define PSSH_LIBSSH2_ERROR_INVALID_MAC (-4)

/* Serialises install_gcm_wrapper() across threads. */
PSSH_HIDDEN extern pthread_mutex_t pssh_gcm_install_lock;

/* Forget this thread's batched packet (the self-test's packets are not
   libssh2's). */
PSSH_HIDDEN void pssh_gcm_forget_batch(void);

/* Set by the installer. */
PSSH_HIDDEN extern pssh_crypt_f pssh_orig_crypt;        /* libssh2's EVP crypt() */
PSSH_HIDDEN extern pssh_crypt_f pssh_chacha_orig_crypt; /* libssh2's chacha20 crypt() */
PSSH_HIDDEN extern pssh_evp_cipher_call_f pssh_evp_cipher;
PSSH_HIDDEN extern pssh_evp_ctrl_f pssh_evp_ctrl;
PSSH_HIDDEN extern pssh_evp_cipher_f pssh_aes128gcm;
PSSH_HIDDEN extern pssh_evp_cipher_f pssh_aes256gcm;
PSSH_HIDDEN extern int pssh_encrypt_batching;
PSSH_HIDDEN extern int pssh_decrypt_batching;

/* The wrappers installed into libssh2's descriptors. */
PSSH_HIDDEN int pssh_gcm_crypt(void *session, unsigned int seqno, unsigned char *block,
                               size_t blocksize, void **abstract, int firstlast);
PSSH_HIDDEN int pssh_chacha_crypt(void *session, unsigned int seqno, unsigned char *block,
                                  size_t blocksize, void **abstract, int firstlast);

/* Encrypt buf[0:plen] and its tag with `crypt` as _libssh2_transport_send
   does (for the self-test); 0 on success. */
PSSH_HIDDEN int pssh_run_packets(pssh_crypt_f crypt, pssh_evp_cipher_f algo, void *ctx,
                                 unsigned char *buf, int plen);

#endif /* PSSH_CRYPT_GUARD_H */
