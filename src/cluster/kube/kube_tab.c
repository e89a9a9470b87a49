/*
 * kube_tab.c — the published pod table: one file mapping, one writer (the
 * kubewatch child), many readers (runners, the scraper, the autoscaler).
 *
 * Runs in: the kubewatch child (writer: kube_tab_put/gone/sweep through
 * kube_watch.c) and every process of the kubernetes backend that reads pod
 * state (kube.c: cluster_get, cluster_pods; kube_scrape.c: the nodes that
 * run model pods). Called by: kube_watch.c, kube.c, kube_scrape.c; t/071.
 * Owns: the mapping of one table per struct kube_tab (the descriptor is
 * closed after mmap).
 * Shared state: the table file (kube.state_file, default
 * <hub.var_dir>/kube-pods.tab); writer-only fields are marked so below.
 *
 * Layout (sizes in the header: a reader never uses its own configuration):
 *
 *   struct tab_hdr          magic, version, capacity, bucket count,
 *                           heartbeat, synced, high-water mark, chain_gen
 *   uint32_t bucket[nbuckets]   index + 1 of the first entry of the chain
 *   struct tab_ent ent[nentries]
 *
 * DESIGN
 * - Sized from kube.max_pods (default KUBE_TAB_DEFAULT: 1,000 nodes × 110
 *   pods). The file is sparse and entries are handed out from the low end
 *   (a free list, then the high-water mark), so only pages of entries in
 *   use are ever touched, and scans stop at the high-water mark.
 * - Lookup by name is a hash chain (entry.next), so a put, a find and a
 *   relist's sweep cost O(1) per pod, not a scan of the table.
 * - Single writer, lock-free readers. Each entry has a sequence word (odd
 *   while written; readers copy and retry, as in the metrics segment).
 *   Linking a new entry at the head of a chain is safe for a reader walking
 *   it (the entry is complete before the bucket points at it). Unlinking
 *   one (forgetting a pod gone for KUBE_TAB_GONE_KEEP_MS, or reusing the
 *   oldest gone entry when full) makes chain_gen odd for the duration; a
 *   reader that found nothing trusts "absent" only if chain_gen was even
 *   and unchanged across its walk, else it walks again. A found entry is
 *   always confirmed by its consistent copy (name compared).
 * - A writer that starts (kubewatch restart) rebuilds the chains and the
 *   free list from the entries, so a writer killed mid-relink leaves
 *   nothing wrong behind. A writer whose kube.max_pods no longer matches
 *   the file makes a new file and renames it over the old one; the old
 *   header is marked replaced first, so readers reopen (kube_tab_replaced).
 */
#include "cluster/kube/kube_watch.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KUBE_TAB_MAGIC 0x4b55424554414232ULL /* "KUBETAB2" */
#define KUBE_TAB_VERSION 3 /* 3: cluster_pod.no_evict */
#define KUBE_TAB_MIN 16
#define KUBE_TAB_LIMIT 2000000
#define KUBE_READ_RETRIES 200

struct tab_hdr {
	uint64_t magic;
	uint32_t version, nentries, nbuckets, entry_size;
	int32_t writer_pid;
	uint32_t pad;
	_Atomic int64_t heartbeat_ms;
	_Atomic int64_t synced_ms;
	_Atomic uint32_t hw;            /* entries [0, hw) were ever used */
	_Atomic uint32_t replaced;      /* a new file took this one's name */
	_Atomic uint64_t chain_gen;     /* odd while the writer unlinks */
	uint32_t free_head;             /* writer only: index + 1, 0 none */
	uint32_t epoch;                 /* writer only: the sweep's mark */
};

struct tab_ent {
	_Atomic uint64_t seq;
	uint32_t used;
	_Atomic uint32_t next;          /* index + 1 in its chain (or the free list) */
	uint32_t epoch;                 /* writer only: last sweep that listed it */
	uint32_t pad;
	struct cluster_pod_row row;
};

struct kube_tab {
	struct tab_hdr *hdr;
	_Atomic uint32_t *bucket;
	struct tab_ent *ent;
	size_t size;
	int writer;
};

static size_t hdr_size(void)
{
	return (sizeof(struct tab_hdr) + 63) & ~(size_t)63;
}

static size_t file_size(uint32_t nentries, uint32_t nbuckets)
{
	return hdr_size() + (((size_t)nbuckets * sizeof(uint32_t) + 63) & ~(size_t)63) +
	       (size_t)nentries * sizeof(struct tab_ent);
}

static uint32_t buckets_for(uint32_t n)
{
	uint32_t b = 64;

	while (b < n)
		b <<= 1;
	return b;
}

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < 64 && s[i]; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

void kube_tab_path(char *out, size_t n)
{
	const char *p = cfg_str("kube.state_file", "");

	if (p[0])
		snprintf(out, n, "%s", p);
	else
		snprintf(out, n, "%s/kube-pods.tab", cfg_str("hub.var_dir", "var"));
}

static void tab_set(struct kube_tab *t, void *m, size_t size, int writer)
{
	t->hdr = m;
	t->bucket = (_Atomic uint32_t *)((char *)m + hdr_size());
	t->ent = (struct tab_ent *)((char *)m + hdr_size() +
				    (((size_t)t->hdr->nbuckets * sizeof(uint32_t) + 63) & ~(size_t)63));
	t->size = size;
	t->writer = writer;
}

/* Map fd if it holds a valid table (of want entries when want > 0). */
static int map_valid(struct kube_tab *t, int fd, int writer, uint32_t want)
{
	struct tab_hdr h;
	struct stat st;
	size_t size;
	void *m;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof h || pread(fd, &h, sizeof h, 0) != sizeof h)
		return -1;
	if (h.magic != KUBE_TAB_MAGIC || h.version != KUBE_TAB_VERSION ||
	    h.entry_size != sizeof(struct tab_ent) || h.nentries < 1 ||
	    h.nbuckets != buckets_for(h.nentries) || (want && h.nentries != want))
		return -1;
	size = file_size(h.nentries, h.nbuckets);
	if ((size_t)st.st_size != size)
		return -1;
	m = mmap(NULL, size, writer ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -1;
	tab_set(t, m, size, writer);
	return 0;
}

/* Writer: a fresh sparse file of n entries renamed over path; the old
 * table (if any) marked replaced first. 0, -1 (logged). */
static int tab_create(struct kube_tab *t, const char *path, uint32_t n)
{
	char tmp[600];
	size_t size = file_size(n, buckets_for(n));
	struct tab_hdr *h;
	int fd, old;
	void *m;

	snprintf(tmp, sizeof tmp, "%s.new.%d", path, (int)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		log_error("kube path=%s msg=\"cannot create the pod table\"", tmp);
		goto fail;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		log_error("kube path=%s msg=\"cannot map the pod table\"", tmp);
		goto fail;
	}
	h = m;
	h->version = KUBE_TAB_VERSION;
	h->nentries = n;
	h->nbuckets = buckets_for(n);
	h->entry_size = sizeof(struct tab_ent);
	atomic_thread_fence(memory_order_release);
	h->magic = KUBE_TAB_MAGIC;
	old = open(path, O_RDWR | O_CLOEXEC);
	if (old >= 0) {
		struct kube_tab o;
		if (map_valid(&o, old, 1, 0) == 0) {
			atomic_store(&o.hdr->heartbeat_ms, 0);
			atomic_store(&o.hdr->replaced, 1);
			munmap(o.hdr, o.size);
		}
		close(old);
	}
	if (rename(tmp, path) < 0) {
		log_error("kube path=%s msg=\"cannot install the pod table\"", path);
		munmap(m, size);
		goto fail;
	}
	close(fd);
	tab_set(t, m, size, 1);
	log_info("kube path=%s entries=%u bytes=%zu msg=\"pod table created (sparse)\"", path, n, size);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

/* Writer: chains and free list from the entries (after any restart). */
static void tab_rebuild(struct kube_tab *t)
{
	uint32_t hw = atomic_load(&t->hdr->hw);

	atomic_fetch_add(&t->hdr->chain_gen, 1);
	for (uint32_t b = 0; b < t->hdr->nbuckets; b++)
		atomic_store_explicit(&t->bucket[b], 0, memory_order_relaxed);
	t->hdr->free_head = 0;
	for (uint32_t i = hw; i-- > 0;) {
		struct tab_ent *e = &t->ent[i];

		if (atomic_load(&e->seq) & 1) /* left odd by a writer killed mid-update */
			atomic_fetch_add(&e->seq, 1);
		if (e->used) {
			uint32_t b = hash_name(e->row.pod.name) & (t->hdr->nbuckets - 1);
			atomic_store_explicit(&e->next, atomic_load_explicit(&t->bucket[b], memory_order_relaxed),
					      memory_order_relaxed);
			atomic_store_explicit(&t->bucket[b], i + 1, memory_order_relaxed);
		} else {
			atomic_store_explicit(&e->next, t->hdr->free_head, memory_order_relaxed);
			t->hdr->free_head = i + 1;
		}
	}
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add(&t->hdr->chain_gen, 1);
}

static uint32_t capacity_from_config(void)
{
	long n = cfg_int("kube.max_pods", KUBE_TAB_DEFAULT);

	return (uint32_t)(n < KUBE_TAB_MIN ? KUBE_TAB_MIN : n > KUBE_TAB_LIMIT ? KUBE_TAB_LIMIT : n);
}

struct kube_tab *kube_tab_open(const char *path, int writer)
{
	struct kube_tab *t = calloc(1, sizeof *t);
	int fd;

	if (!t)
		return NULL;
	fd = open(path, writer ? O_RDWR | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && map_valid(t, fd, writer, writer ? capacity_from_config() : 0) == 0) {
		close(fd);
	} else {
		if (fd >= 0)
			close(fd);
		if (!writer || tab_create(t, path, capacity_from_config()) < 0) {
			free(t);
			return NULL;
		}
	}
	if (writer) {
		t->hdr->writer_pid = (int32_t)getpid();
		tab_rebuild(t);
		atomic_store(&t->hdr->synced_ms, 0);
	}
	return t;
}

void kube_tab_close(struct kube_tab *t)
{
	if (!t)
		return;
	munmap(t->hdr, t->size);
	free(t);
}

int kube_tab_replaced(struct kube_tab *t)
{
	return atomic_load(&t->hdr->replaced) != 0;
}

int kube_tab_capacity(struct kube_tab *t)
{
	return (int)t->hdr->nentries;
}

int kube_tab_count(struct kube_tab *t)
{
	uint32_t hw = atomic_load_explicit(&t->hdr->hw, memory_order_acquire);

	return (int)(hw < t->hdr->nentries ? hw : t->hdr->nentries);
}

static void w_begin(struct tab_ent *e)
{
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_release);
}

static void w_end(struct tab_ent *e)
{
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
}

/* Writer: index of the entry holding name, -1. */
static int find_idx(struct kube_tab *t, const char *name)
{
	uint32_t i = atomic_load_explicit(&t->bucket[hash_name(name) & (t->hdr->nbuckets - 1)],
					  memory_order_relaxed);

	for (uint32_t steps = 0; i && i <= t->hdr->nentries && steps < t->hdr->nentries; steps++) {
		struct tab_ent *e = &t->ent[i - 1];
		if (e->used && strncmp(e->row.pod.name, name, sizeof e->row.pod.name) == 0)
			return (int)(i - 1);
		i = atomic_load_explicit(&e->next, memory_order_relaxed);
	}
	return -1;
}

/* Writer: take entry i out of its chain, free it (chain_gen odd meanwhile). */
static void forget(struct kube_tab *t, uint32_t i)
{
	struct tab_ent *e = &t->ent[i];
	_Atomic uint32_t *link = &t->bucket[hash_name(e->row.pod.name) & (t->hdr->nbuckets - 1)];

	atomic_fetch_add_explicit(&t->hdr->chain_gen, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_release);
	for (uint32_t steps = 0; steps < t->hdr->nentries; steps++) {
		uint32_t cur = atomic_load_explicit(link, memory_order_relaxed);
		if (!cur || cur > t->hdr->nentries)
			break;
		if (cur == i + 1) {
			atomic_store_explicit(link, atomic_load_explicit(&e->next, memory_order_relaxed),
					      memory_order_release);
			break;
		}
		link = &t->ent[cur - 1].next;
	}
	w_begin(e);
	e->used = 0;
	w_end(e);
	atomic_store_explicit(&e->next, t->hdr->free_head, memory_order_relaxed);
	t->hdr->free_head = i + 1;
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add_explicit(&t->hdr->chain_gen, 1, memory_order_release);
}

/* Writer: a free entry (free list, then the high-water mark, then the
 * oldest gone entry), -1 when every entry holds a live pod. */
static int alloc_idx(struct kube_tab *t)
{
	uint32_t hw = atomic_load(&t->hdr->hw);
	int oldest = -1;

	if (t->hdr->free_head) {
		uint32_t i = t->hdr->free_head - 1;
		t->hdr->free_head = atomic_load_explicit(&t->ent[i].next, memory_order_relaxed);
		return (int)i;
	}
	if (hw < t->hdr->nentries) {
		atomic_store_explicit(&t->hdr->hw, hw + 1, memory_order_release);
		return (int)hw;
	}
	for (uint32_t k = 0; k < hw; k++)
		if (t->ent[k].used && t->ent[k].row.gone &&
		    (oldest < 0 || t->ent[k].row.gone_ms < t->ent[oldest].row.gone_ms))
			oldest = (int)k;
	if (oldest < 0)
		return -1;
	forget(t, (uint32_t)oldest);
	return alloc_idx(t);
}

int kube_tab_put(struct kube_tab *t, const struct cluster_pod *p)
{
	int i = find_idx(t, p->name), fresh = i < 0;
	struct tab_ent *e;

	if (fresh && (i = alloc_idx(t)) < 0) {
		log_error_x("kube pod=%s entries=%u msg=\"pod table full (raise kube.max_pods)\"", p->name,
			    t->hdr->nentries);
		return -1;
	}
	e = &t->ent[i];
	w_begin(e);
	e->row.pod = *p;
	e->row.gone = 0;
	e->row.gone_ms = 0;
	e->row.updated_ms = mh_wall_ms();
	e->used = 1;
	e->epoch = t->hdr->epoch;
	w_end(e);
	if (fresh) {
		_Atomic uint32_t *b = &t->bucket[hash_name(e->row.pod.name) & (t->hdr->nbuckets - 1)];
		atomic_store_explicit(&e->next, atomic_load_explicit(b, memory_order_relaxed),
				      memory_order_relaxed);
		atomic_store_explicit(b, (uint32_t)i + 1, memory_order_release);
	}
	return 0;
}

static void mark_gone(struct tab_ent *e, int64_t now)
{
	w_begin(e);
	e->row.gone = 1;
	e->row.gone_ms = e->row.updated_ms = now;
	w_end(e);
}

int kube_tab_gone(struct kube_tab *t, const char *name)
{
	int i = find_idx(t, name);

	if (i < 0)
		return -1;
	if (!t->ent[i].row.gone)
		mark_gone(&t->ent[i], mh_wall_ms());
	return 0;
}

void kube_tab_sweep(struct kube_tab *t, char (*names)[64], int n)
{
	int64_t now = mh_wall_ms();
	uint32_t hw = atomic_load(&t->hdr->hw), ep = ++t->hdr->epoch;

	for (int k = 0; k < n; k++) {
		int i = find_idx(t, names[k]);
		if (i >= 0)
			t->ent[i].epoch = ep;
	}
	for (uint32_t i = 0; i < hw; i++) {
		struct tab_ent *e = &t->ent[i];

		if (!e->used)
			continue;
		if (e->row.gone) {
			if (now - e->row.gone_ms > KUBE_TAB_GONE_KEEP_MS)
				forget(t, i);
		} else if (e->epoch != ep) {
			mark_gone(e, now);
		}
	}
}

void kube_tab_heartbeat(struct kube_tab *t, int synced)
{
	int64_t now = mh_wall_ms();

	atomic_store(&t->hdr->heartbeat_ms, now);
	if (synced)
		atomic_store(&t->hdr->synced_ms, now);
}

void kube_tab_retire(struct kube_tab *t)
{
	atomic_store(&t->hdr->heartbeat_ms, 0);
	atomic_store(&t->hdr->synced_ms, 0);
}

int64_t kube_tab_heartbeat_ms(struct kube_tab *t)
{
	return atomic_load(&t->hdr->heartbeat_ms);
}

int64_t kube_tab_synced_ms(struct kube_tab *t)
{
	return atomic_load(&t->hdr->synced_ms);
}

/* Consistent copy of entry i: 1, 0 unused (or not want), -1 busy. */
static int read_ent(struct kube_tab *t, uint32_t i, struct cluster_pod_row *out, const char *want)
{
	struct tab_ent *e = &t->ent[i];

	for (int r = 0; r < KUBE_READ_RETRIES; r++) {
		uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire), s2;
		uint32_t used;

		if (s1 & 1)
			continue;
		used = e->used;
		if (used)
			memcpy(out, &e->row, sizeof *out);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (!used)
			return 0;
		out->pod.name[sizeof out->pod.name - 1] = '\0';
		if (want && strcmp(out->pod.name, want) != 0)
			return 0;
		return 1;
	}
	return -1;
}

/* One walk of name's chain: 1 found, 0 not on it, -1 an entry was busy. */
static int walk(struct kube_tab *t, const char *name, struct cluster_pod_row *out)
{
	uint32_t n = t->hdr->nentries, busy = 0;
	uint32_t i = atomic_load_explicit(&t->bucket[hash_name(name) & (t->hdr->nbuckets - 1)],
					  memory_order_acquire);

	for (uint32_t steps = 0; i && i <= n && steps < n; steps++) {
		struct tab_ent *e = &t->ent[i - 1];
		/* unlocked pre-check on the name; confirmed by the copy */
		if (e->used && strncmp(e->row.pod.name, name, sizeof e->row.pod.name) == 0) {
			int rc = read_ent(t, i - 1, out, name);
			if (rc == 1)
				return 1;
			busy |= rc < 0;
		}
		i = atomic_load_explicit(&e->next, memory_order_acquire);
	}
	return busy ? -1 : 0;
}

int kube_tab_find(struct kube_tab *t, const char *name, struct cluster_pod_row *out)
{
	for (int r = 0; r < KUBE_READ_RETRIES; r++) {
		uint64_t g1 = atomic_load_explicit(&t->hdr->chain_gen, memory_order_acquire);
		int rc;

		if (g1 & 1)
			continue;
		rc = walk(t, name, out);
		if (rc == 1)
			return 1;
		atomic_thread_fence(memory_order_acquire);
		if (rc == 0 && atomic_load_explicit(&t->hdr->chain_gen, memory_order_relaxed) == g1)
			return 0;
	}
	return -1;
}

int kube_tab_get(struct kube_tab *t, int idx, struct cluster_pod_row *out)
{
	if (idx < 0 || idx >= kube_tab_count(t))
		return -1;
	return read_ent(t, (uint32_t)idx, out, NULL);
}
