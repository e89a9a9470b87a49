/*
 * auth_cache.c — per-worker session cache with a shared revocation counter
 * (see auth_cache.h).
 *
 * Runs in: modelhub-fcgi master (auth_cache_shared_init only) and workers.
 * Called by: api_auth.c. Owns: `table` (static, this process only) and the
 * MAP_SHARED|MAP_ANONYMOUS page holding the counter (inherited by fork;
 * never unmapped, it lives as long as the process).
 * Shared state: `shared->generation`, a 64-bit counter incremented with
 * __atomic_add_fetch by any worker that revokes a session and read with
 * __atomic_load_n by every worker per request. No lock: the only invariant
 * is "a changed value means something was revoked".
 *
 * DESIGN: the table is open-addressed on the first bytes of the key (a
 * SHA-256, so uniformly spread) with a short probe; a full probe evicts the
 * entry with the earliest deadline. Entries store the whole struct api_auth
 * so a hit costs a memcmp and a memcpy. A stale entry is dropped when seen.
 */
#include "fcgi/auth_cache.h"
#include "lib/log.h"

#include <string.h>
#include <sys/mman.h>

struct shared_page {
	uint64_t generation;
};

struct entry {
	unsigned char key[AUTH_CACHE_KEY_LEN];
	int used;
	uint64_t gen;
	int64_t deadline_ms;
	struct api_auth auth;
};

static struct shared_page local_page;
static struct shared_page *shared = &local_page;
static struct entry table[AUTH_CACHE_SLOTS];
static struct auth_cache_stats stats;

int auth_cache_shared_init(void)
{
	void *p;

	if (shared != &local_page)
		return 0;
	p = mmap(NULL, sizeof(struct shared_page), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("auth msg=\"cannot map the session revocation page\"");
		return -1;
	}
	shared = p;
	shared->generation = 1;
	return 0;
}

uint64_t auth_cache_generation(void)
{
	return __atomic_load_n(&shared->generation, __ATOMIC_ACQUIRE);
}

void auth_cache_bump(void)
{
	__atomic_add_fetch(&shared->generation, 1, __ATOMIC_ACQ_REL);
}

static size_t slot_of(const unsigned char key[AUTH_CACHE_KEY_LEN])
{
	size_t h = (size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16;

	return h & (AUTH_CACHE_SLOTS - 1);
}

static struct entry *find(const unsigned char key[AUTH_CACHE_KEY_LEN])
{
	size_t s = slot_of(key);

	for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
		struct entry *e = &table[(s + (size_t)i) & (AUTH_CACHE_SLOTS - 1)];
		if (e->used && memcmp(e->key, key, AUTH_CACHE_KEY_LEN) == 0)
			return e;
	}
	return NULL;
}

int auth_cache_get(const unsigned char key[AUTH_CACHE_KEY_LEN], int64_t now_ms,
		   struct api_auth *out)
{
	struct entry *e = find(key);

	if (!e) {
		stats.misses++;
		return 0;
	}
	if (e->gen != auth_cache_generation() || now_ms >= e->deadline_ms) {
		stats.stale++;
		stats.misses++;
		memset(e, 0, sizeof *e);
		return 0;
	}
	stats.hits++;
	*out = e->auth;
	return 1;
}

void auth_cache_put(const unsigned char key[AUTH_CACHE_KEY_LEN], const struct api_auth *a,
		    int64_t deadline_ms, uint64_t gen)
{
	size_t s = slot_of(key);
	struct entry *e = find(key), *victim = NULL;

	for (int i = 0; !e && i < AUTH_CACHE_WAYS; i++) {
		struct entry *c = &table[(s + (size_t)i) & (AUTH_CACHE_SLOTS - 1)];
		if (!c->used) {
			e = c;
			break;
		}
		if (!victim || c->deadline_ms < victim->deadline_ms)
			victim = c;
	}
	if (!e) {
		e = victim;
		stats.evictions++;
	}
	memset(e, 0, sizeof *e);
	memcpy(e->key, key, AUTH_CACHE_KEY_LEN);
	e->used = 1;
	e->gen = gen;
	e->deadline_ms = deadline_ms;
	e->auth = *a;
}

void auth_cache_drop(const unsigned char key[AUTH_CACHE_KEY_LEN])
{
	struct entry *e = find(key);

	if (e)
		memset(e, 0, sizeof *e);
}

void auth_cache_clear(void)
{
	memset(table, 0, sizeof table);
}

void auth_cache_stats(struct auth_cache_stats *out)
{
	*out = stats;
}
