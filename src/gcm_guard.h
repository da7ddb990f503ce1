/*
 * Process- and thread-level state of pssh's crypt wrappers (src/gcm.pxi,
 * src/crypt_methods.pxi, src/chacha_guard.pxi), defined in gcm_guard.c.
 *
 * Why C and not Cython module globals: the batching and packet-start state
 * must be per thread (a packet's crypt() calls all run in one thread, in
 * order, within one _libssh2_transport_send/read call, but several threads
 * may each drive their own sessions), and Cython has no thread-local storage.
 */
#ifndef PSSH_GCM_GUARD_H
#define PSSH_GCM_GUARD_H

#include <sys/mman.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <pthread.h>

#if defined(__GNUC__)
#define PSSH_HIDDEN __attribute__((visibility("hidden")))
#else
#define PSSH_HIDDEN
#endif

/* Serialises install_gcm_wrapper() across threads. */
PSSH_HIDDEN extern pthread_mutex_t pssh_gcm_install_lock;

/* The packet (or decrypt() run) whose blocks were done in one call. */
PSSH_HIDDEN extern __thread void *pssh_gcm_batch_ctx;
PSSH_HIDDEN extern __thread unsigned char *pssh_gcm_batch_start;
PSSH_HIDDEN extern __thread unsigned char *pssh_gcm_batch_end;

/* Session -> its struct transportpacket, learnt from the outbuf address of
   the session's last encrypted packet; a small ring, oldest entry replaced. */
#define PSSH_GCM_SESSIONS 16
PSSH_HIDDEN extern __thread void *pssh_gcm_sessions[PSSH_GCM_SESSIONS];
PSSH_HIDDEN extern __thread unsigned char *pssh_gcm_packets[PSSH_GCM_SESSIONS];
PSSH_HIDDEN extern __thread unsigned int pssh_gcm_next;

/* The next aes-ctr/aes-cbc encryption call starts a packet. */
PSSH_HIDDEN extern __thread int pssh_block_packet_start;

#endif /* PSSH_GCM_GUARD_H */
