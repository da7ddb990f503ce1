/* Definitions of the crypt wrappers' shared state; see gcm_guard.h. */
#include "gcm_guard.h"

pthread_mutex_t pssh_gcm_install_lock = PTHREAD_MUTEX_INITIALIZER;

__thread void *pssh_gcm_batch_ctx = NULL;
__thread unsigned char *pssh_gcm_batch_start = NULL;
__thread unsigned char *pssh_gcm_batch_end = NULL;

__thread void *pssh_gcm_sessions[PSSH_GCM_SESSIONS];
__thread unsigned char *pssh_gcm_packets[PSSH_GCM_SESSIONS];
__thread unsigned int pssh_gcm_next = 0;

__thread int pssh_block_packet_start = 1;
