/*
 * auth_cache.h — per-worker cache of resolved sessions, invalidated by a
 * revocation counter shared by every worker of one modelhub-fcgi master.
 *
 * Runs in: modelhub-fcgi (the shared page is mapped by the master before it
 * forks; each worker has its own table). Called by: api_auth.c,
 * t/015-auth-cache. Owns: the table (static, fixed size) and the shared page.
 *
 * An entry is valid while (a) its deadline (monotonic ms) has not passed —
 * the deadline is the session's earlier expiry as the database reported it,
 * capped at the configured maximum age — and (b) the shared counter still
 * holds the generation read BEFORE the database lookup that produced the
 * entry. Any revocation (logout, password reset) bumps the counter, which
 * makes every entry in every worker stale at once; the next request of each
 * session goes to the database again.
 */
#ifndef MH_AUTH_CACHE_H
#define MH_AUTH_CACHE_H

#include <stdint.h>

#include "fcgi/api.h"

#define AUTH_CACHE_KEY_LEN 32
#define AUTH_CACHE_SLOTS 1024 /* power of two */
#define AUTH_CACHE_WAYS 4     /* probe length */

/* Master, before forking: map the shared counter page. Without it (unit
 * tests, a single process) a process-local counter is used. 0 / -1. */
int auth_cache_shared_init(void);
/* Current revocation generation (atomic load). */
uint64_t auth_cache_generation(void);
/* Atomic increment: every cached session in every worker becomes stale. */
void auth_cache_bump(void);

/* Look up key at monotonic time now_ms. 1 hit (*out filled), 0 miss. */
int auth_cache_get(const unsigned char key[AUTH_CACHE_KEY_LEN], int64_t now_ms,
		   struct api_auth *out);
/* Store a resolved session valid until deadline_ms (monotonic) for the
 * generation gen read before the lookup. */
void auth_cache_put(const unsigned char key[AUTH_CACHE_KEY_LEN], const struct api_auth *a,
		    int64_t deadline_ms, uint64_t gen);
void auth_cache_drop(const unsigned char key[AUTH_CACHE_KEY_LEN]);
void auth_cache_clear(void);

/* Counters for tests and /metrics. */
struct auth_cache_stats {
	unsigned long hits, misses, stale, evictions;
};
void auth_cache_stats(struct auth_cache_stats *out);

#endif
