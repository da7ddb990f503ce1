/*
 * pssh's crypt wrappers for libssh2 1.11.1; see crypt_guard.h, and src/gcm.pxi
 * for why each guard exists and how the wrappers are found and installed.
 */
#include <string.h>
#include "crypt_guard.h"

/* Bounds an honest peer keeps. */
#define MAX_PACKET (256 * 1024)
#define GCM_BLOCK 16
#define GCM_TAG 16
/* Smallest honest packet: padding length byte, one payload byte and at least
   4 padding bytes, rounded up to the block. */
#define GCM_MIN_PACKET 16
/* libssh2 1.11.1 LIBSSH2_PACKET_MAXPAYLOAD: bound on length - 1 + tag. */
#define LIBSSH2_MAX_PAYLOAD 40000
/* _libssh2_cipher_crypt's stack buffer (EVP_MAX_BLOCK_LENGTH). */
#define LIBSSH2_CRYPT_BUF 32

/* libssh2 1.11.1 libssh2_priv.h, struct transportpacket: buf[35000], init[5],
   size_t writeidx, readidx, uint32 packet_length, uint8 padding_length,
   size_t data_num, total_num, payload, wptr, outbuf[35000]. */
#define PACKETBUFSIZE 35000
#define OFF_WRITEIDX 35008
#define OFF_READIDX 35016
#define OFF_DATA_NUM 35032
#define OFF_TOTAL_NUM 35040
#define OFF_PAYLOAD 35048
#define OFF_OUTBUF 35064

/* How many sessions per thread the packet state is remembered for. */
#define GCM_SESSIONS 16

pthread_mutex_t pssh_gcm_install_lock = PTHREAD_MUTEX_INITIALIZER;

/* What the wrappers remember between the crypt() calls of one thread. One
   struct, so that a call finds it with one thread-local lookup (each
   separate thread-local variable of a shared object costs a __tls_get_addr
   call per access, several per block otherwise). */
struct thread_state {
    /* The packet (or decrypt() run) whose blocks were done in one call. */
    void *batch_ctx;
    unsigned char *batch_start;
    unsigned char *batch_end;
    /* Session -> its struct transportpacket, learnt from the outbuf address
       of the session's last encrypted packet: a small ring. */
    void *sessions[GCM_SESSIONS];
    unsigned char *packets[GCM_SESSIONS];
    unsigned int next;
    /* The next aes-ctr/aes-cbc encryption call starts a packet. */
    int block_packet_start;
};

static __thread struct thread_state tls = {.block_packet_start = 1};

/* Where struct transportpacket sits in LIBSSH2_SESSION (0: not seen yet). Not
   per session: with hundreds of sessions in one thread an evicted cache entry
   would switch the guard off. */
static ptrdiff_t packet_offset = 0;

pssh_crypt_f pssh_orig_crypt = NULL;
pssh_crypt_f pssh_chacha_orig_crypt = NULL;
pssh_evp_cipher_call_f pssh_evp_cipher = NULL;
pssh_evp_ctrl_f pssh_evp_ctrl = NULL;
pssh_evp_cipher_f pssh_aes128gcm = NULL;
pssh_evp_cipher_f pssh_aes256gcm = NULL;
int pssh_encrypt_batching = 0;
int pssh_decrypt_batching = 0;

static size_t load_size(const unsigned char *at)
{
    size_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

static unsigned int load_be32(const unsigned char *at)
{
    unsigned int value;
    memcpy(&value, at, 4);
    return ntohl(value);
}

static void remember_packet(struct thread_state *t, void *session, unsigned char *packet)
{
    unsigned int i;
    for (i = 0; i < GCM_SESSIONS; i++) {
        if (t->sessions[i] == session) {
            t->packets[i] = packet;
            return;
        }
    }
    i = t->next++ % GCM_SESSIONS;
    t->sessions[i] = session;
    t->packets[i] = packet;
}

static unsigned char *packet_of(struct thread_state *t, void *session)
{
    unsigned int i;
    for (i = 0; i < GCM_SESSIONS; i++) {
        if (t->sessions[i] == session)
            return t->packets[i];
    }
    return NULL;
}

/* The AES-GCM guard: 0 when the call may go on; 1 to fail it; 2 when the call
   is answered already (an invalid first block).

   A first block holds the clear 4-byte length (the AAD) and 12 encrypted
   bytes; a final call holds the last encrypted bytes and the 16-byte tag. A
   failed crypt() call makes libssh2 1.11 free its packet payload pointer,
   which at a first block still points at the previous packet (owned by the
   packet queue: a double free). So an invalid first block is not failed: its
   length field is zeroed and the call succeeds, and libssh2 rejects the zero
   length (LIBSSH2_ERROR_DECRYPT) before allocating anything. A final call
   fails normally (its payload is the current one). */
static int guard_gcm_decrypt(unsigned char *block, size_t blocksize, int firstlast)
{
    unsigned int plen;
    if (firstlast & PSSH_FIRST_BLOCK) {
        plen = load_be32(block);
        if (blocksize != GCM_BLOCK || plen % GCM_BLOCK || plen < GCM_MIN_PACKET ||
                plen - 1 + GCM_TAG > LIBSSH2_MAX_PAYLOAD) {
            memset(block, 0, 4);
            return 2;
        }
    }
    if (firstlast & PSSH_LAST_BLOCK) {
        if (blocksize < GCM_TAG || blocksize > LIBSSH2_CRYPT_BUF)
            return 1;
    }
    return 0;
}

/* A MIDDLE decryption call: decrypt every block the current decrypt() run of
   _libssh2_transport_read will pass, in one call. Returns 0 when done, 1 on a
   cipher error, -1 when it cannot tell (the caller falls back).

   The run's length is recomputed from the packet state as
   _libssh2_transport_read computed it; every value is checked first. A
   mistake could not pass unnoticed: the packet's GCM tag would not verify and
   libssh2 would fail the read. */
static int decrypt_ahead(struct thread_state *t, void *session, pssh_crypt_ctx *cctx,
                         unsigned char *block, size_t blocksize)
{
    unsigned char *p = packet_of(t, session);
    size_t readidx, writeidx, data_num, total_num, numbytes, length, rest, middle;
    if (p == NULL || blocksize != 16)
        return -1;
    writeidx = load_size(p + OFF_WRITEIDX);
    readidx = load_size(p + OFF_READIDX);
    data_num = load_size(p + OFF_DATA_NUM);
    total_num = load_size(p + OFF_TOTAL_NUM);
    if (p + readidx != block || readidx >= writeidx || writeidx > PACKETBUFSIZE ||
            data_num >= total_num || total_num > PACKETBUFSIZE + 64)
        return -1;
    numbytes = writeidx - readidx;
    if (numbytes > total_num - data_num)
        numbytes = total_num - data_num;
    if (data_num + numbytes >= total_num) {
        /* The packet's last run: decrypt() ends with one call of 16..31 bytes
           holding the tag; the blocks before it are MIDDLE calls. */
        length = total_num - data_num;
        rest = length;
        while (rest >= 32)
            rest -= 16;
        middle = length - rest;
    }
    else {
        length = numbytes - numbytes % 16;
        if (total_num < 16 + data_num)
            return -1;
        if (length > total_num - 16 - data_num)
            length = total_num - 16 - data_num;
        middle = length;
    }
    if (middle < 32)
        return -1;
    if (pssh_evp_cipher(cctx->h, block, block, (unsigned int)middle) == -1)
        return 1;
    t->batch_ctx = cctx->h;
    t->batch_start = block;
    t->batch_end = block + middle;
    return 0;
}

/* The aes-ctr/aes-cbc guard, on a first block libssh2 just decrypted.

   With a MAC over the plaintext the length is encrypted, but ctr is
   malleable: one flipped bit gives a length whose packet is not a whole
   number of blocks, and libssh2's decrypt() asserts on that. Such a length is
   zeroed (libssh2 rejects it before allocating, see guard_gcm_decrypt). With
   an etm MAC the length is in clear before the block and checked only after
   the MAC, but a server can still send one that is not a multiple of the
   block: that call fails (the payload libssh2 then frees is the current
   packet's). Which case applies is told by libssh2 1.11.1's packet state: the
   block is buf + readidx, or payload + 4 (etm). The state's offset in the
   session is learnt from the start of an encrypted packet (block_crypt); it
   and the offset 4 bytes before are tried, in case it was learnt from a packet
   whose first call was missed. */
static int guard_block_decrypt(void *session, unsigned char *block, size_t blocksize)
{
    unsigned char *seen = (unsigned char *)session + packet_offset;
    unsigned char *p;
    unsigned char *payload;
    unsigned int plen;
    size_t readidx;
    int shift;
    if (packet_offset == 0 || session == NULL)
        return 0;
    for (shift = 0; shift < 8; shift += 4) {
        p = seen - shift;
        readidx = load_size(p + OFF_READIDX);
        if (readidx < PACKETBUFSIZE && p + readidx == block) {
            plen = load_be32(block);
            if ((plen + 4) % blocksize || plen > LIBSSH2_MAX_PAYLOAD)
                memset(block, 0, 4);
            return 0;
        }
        memcpy(&payload, p + OFF_PAYLOAD, sizeof payload);
        if (payload + 4 == block) {
            plen = load_be32(block - 4);
            return (plen % blocksize || plen < blocksize) ? 1 : 0;
        }
    }
    return 0;
}

/* The wrapper for aes-ctr/aes-cbc: libssh2's function, then the guard. */
static int block_crypt(struct thread_state *t, void *session, unsigned int seqno,
                       unsigned char *block, size_t blocksize, void **abstract, int firstlast)
{
    pssh_crypt_ctx *cctx = *(pssh_crypt_ctx **)abstract;
    int rc;
    if (cctx->encrypt) {
        /* A packet's calls run in one thread, in order, ending with a last
           block: the call after one starts a packet, at outbuf -- or at
           outbuf + 4 with an etm MAC, whose calls have no first block. */
        if (t->block_packet_start && session != NULL) {
            packet_offset = (block - OFF_OUTBUF) - (unsigned char *)session;
            if (!(firstlast & PSSH_FIRST_BLOCK))
                packet_offset -= 4;
        }
        t->block_packet_start = (firstlast & PSSH_LAST_BLOCK) != 0;
    }
    rc = pssh_orig_crypt(session, seqno, block, blocksize, abstract, firstlast);
    if (rc == 0 && !cctx->encrypt && (firstlast & PSSH_FIRST_BLOCK) && blocksize >= 8)
        return guard_block_decrypt(session, block, blocksize);
    return rc;
}

static int in_batch(const struct thread_state *t, pssh_crypt_ctx *cctx,
                    unsigned char *block, size_t blocksize)
{
    return t->batch_ctx == cctx->h && block > t->batch_start &&
        block + blocksize <= t->batch_end;
}

void pssh_gcm_forget_batch(void)
{
    tls.batch_ctx = NULL;
}

int pssh_gcm_crypt(void *session, unsigned int seqno, unsigned char *block,
                   size_t blocksize, void **abstract, int firstlast)
{
    pssh_crypt_ctx *cctx = *(pssh_crypt_ctx **)abstract;
    struct thread_state *t = &tls;
    unsigned int plen;
    char lastiv[1];
    int rc;
    if (cctx->algo != pssh_aes128gcm && cctx->algo != pssh_aes256gcm)
        return block_crypt(t, session, seqno, block, blocksize, abstract, firstlast);
    if (!cctx->encrypt) {
        rc = guard_gcm_decrypt(block, blocksize, firstlast);
        if (rc) {
            t->batch_ctx = NULL;
            return rc & 1;                  /* 1: libssh2 fails the read */
        }
        if (firstlast == PSSH_MIDDLE_BLOCK && pssh_decrypt_batching) {
            if (in_batch(t, cctx, block, blocksize)) {
                if (block + blocksize == t->batch_end)
                    t->batch_ctx = NULL;
                return 0;                   /* decrypted with the run's first block */
            }
            t->batch_ctx = NULL;
            rc = decrypt_ahead(t, session, cctx, block, blocksize);
            if (rc >= 0)
                return rc;
        }
        t->batch_ctx = NULL;
        return pssh_orig_crypt(session, seqno, block, blocksize, abstract, firstlast);
    }
    if (firstlast == PSSH_FIRST_BLOCK) {
        if (session != NULL)
            remember_packet(t, session, block - OFF_OUTBUF);
        t->batch_ctx = NULL;
        plen = load_be32(block);
        if (!pssh_encrypt_batching || blocksize != 16 || plen < 12 || plen > MAX_PACKET)
            return pssh_orig_crypt(session, seqno, block, blocksize, abstract, firstlast);
        /* As _libssh2_cipher_crypt's first block: next IV, the length as AAD
           -- then the whole rest of the packet in one call. */
        pssh_evp_ctrl(cctx->h, PSSH_EVP_CTRL_GCM_IV_GEN, 1, lastiv);
        if (pssh_evp_cipher(cctx->h, NULL, block, 4) == -1)
            return 1;
        if (pssh_evp_cipher(cctx->h, block + 4, block + 4, plen) == -1)
            return 1;
        t->batch_ctx = cctx->h;
        t->batch_start = block;
        t->batch_end = block + 4 + plen;
        return 0;
    }
    if (firstlast == PSSH_MIDDLE_BLOCK && in_batch(t, cctx, block, blocksize))
        return 0;                           /* already encrypted with the first */
    t->batch_ctx = NULL;
    return pssh_orig_crypt(session, seqno, block, blocksize, abstract, firstlast);
}

int pssh_chacha_crypt(void *session, unsigned int seqno, unsigned char *block,
                      size_t blocksize, void **abstract, int firstlast)
{
    /* libssh2 returns 1 for a failed Poly1305 check, which its transport
       layer reads as a packet type: make it an error. */
    if (pssh_chacha_orig_crypt(session, seqno, block, blocksize, abstract, firstlast))
        return PSSH_LIBSSH2_ERROR_INVALID_MAC;
    return 0;
}

int pssh_run_packets(pssh_crypt_f crypt, pssh_evp_cipher_f algo, void *ctx,
                     unsigned char *buf, int plen)
{
    pssh_crypt_ctx cc;
    void *abstract = &cc;
    int i, bsize;
    cc.encrypt = 1;
    cc.algo = algo;
    cc.h = ctx;
    for (i = 0; i < plen; i += 16) {
        bsize = plen - i < 16 ? plen - i : 16;
        if (crypt(NULL, 0, buf + i, (size_t)bsize, &abstract,
                  i == 0 ? PSSH_FIRST_BLOCK : PSSH_MIDDLE_BLOCK))
            return 1;
    }
    return crypt(NULL, 0, buf + plen, 16, &abstract, PSSH_LAST_BLOCK);
}
