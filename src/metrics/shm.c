/*
 * shm.c — the live metrics segment: creation, attach, seqlocked slots.
 *
 * Runs in: modelhubd (shm_create), scraper and monitor (writers), runners
 * and modelhub-fcgi workers (readers).
 * Called by: see shm.h.
 * Owns: one mmap of the segment and one scratch copy buffer per
 * struct metrics_seg (freed by shm_close).
 * Shared state: the segment; the locking protocol is described in shm.h
 * (DESIGN — seqlock).
 *
 * NOTES. The seqlock follows Boehm, "Can seqlocks get along with
 * programming language memory models?" (2012): the writer makes the
 * sequence odd, issues a release fence, writes the data, and publishes the
 * next even value with a release store; the reader loads the sequence with
 * acquire, copies, issues an acquire fence and reloads it relaxed. The data
 * copy itself is a plain memcpy of a possibly-changing region, which is why
 * the copy is discarded unless both sequence loads agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/shm.h"

#define READ_SPINS 2000         /* reader retries before sleeping */
#define READ_TRIES_SLEEP 50     /* then up to this many 100 us sleeps */
#define STALE_CHECK_MS 2000
#define SHM_DEFAULT_NODES 1024      /* 1,000 nodes */
#define SHM_DEFAULT_INSTANCES 110000 /* 1,000 nodes x 110 pods (the kubelet's default max) */
#define SHM_MAX_SLOTS 1000000

struct metrics_seg {
	char name[256];
	int readonly;
	unsigned char *base;
	size_t size;
	struct shm_header *hdr;
	dev_t dev;
	ino_t ino;
	int64_t last_check_ms;
	int stale;              /* latched once shm_seg_stale said so */
	unsigned char *scratch; /* slot_size bytes for reader copies */
};

/* ---- sizes ---- */

static uint32_t slot_size_for(uint32_t samples)
{
	size_t s = sizeof(struct shm_slot) + (size_t)samples * sizeof(struct shm_sample);

	return (uint32_t)((s + 63) & ~(size_t)63);
}

static size_t header_size(void)
{
	return (sizeof(struct shm_header) + 63) & ~(size_t)63;
}

size_t shm_size_of(const struct shm_dims *dims)
{
	return header_size() +
	       (size_t)(dims->max_nodes + dims->max_instances) * slot_size_for(dims->samples);
}

void shm_dims_from_config(struct shm_dims *dims)
{
	long n = cfg_int("metrics.max_nodes", SHM_DEFAULT_NODES);
	long i = cfg_int("metrics.max_instances", SHM_DEFAULT_INSTANCES);
	long s = cfg_int("metrics.samples", 200);

	dims->max_nodes = (uint32_t)(n < 1 ? 1 : n > SHM_MAX_SLOTS ? SHM_MAX_SLOTS : n);
	dims->max_instances = (uint32_t)(i < 1 ? 1 : i > SHM_MAX_SLOTS ? SHM_MAX_SLOTS : i);
	dims->samples = (uint32_t)(s < 2 ? 2 : s > 100000 ? 100000 : s);
}

void shm_name_from_config(char *out, size_t n, const char *replica_id)
{
	const char *name = cfg_str("hub.shm_name", NULL);
	char clean[128];
	size_t j = 0;

	if (name && *name) {
		snprintf(out, n, "%s%s", name[0] == '/' ? "" : "/", name);
		return;
	}
	/* the replica id becomes part of a file name: keep it to [A-Za-z0-9._-] */
	for (const char *p = replica_id ? replica_id : "local"; *p && j + 1 < sizeof(clean); p++)
		clean[j++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
						    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
						    *p == '_'
					    ? *p
					    : '_');
	clean[j] = '\0';
	snprintf(out, n, "/modelhub-%s", clean);
}

static struct shm_slot *slot_at(const struct metrics_seg *seg, enum shm_kind kind, int idx)
{
	const struct shm_header *h = seg->hdr;
	uint64_t off = kind == SHM_NODE ? h->nodes_off : h->instances_off;
	uint32_t n = kind == SHM_NODE ? h->max_nodes : h->max_instances;

	if (idx < 0 || (uint32_t)idx >= n)
		return NULL;
	return (struct shm_slot *)(seg->base + off + (uint64_t)idx * h->slot_size);
}

static struct shm_sample *ring_of(struct shm_slot *s)
{
	return (struct shm_sample *)(s + 1);
}

/* ---- create / attach ---- */

static int check_header(const struct shm_header *h, size_t size)
{
	size_t need;

	if (size < sizeof(*h) || h->magic != SHM_MAGIC || h->version != SHM_LAYOUT_VERSION ||
	    h->header_size != header_size() || h->total_size != size)
		return -1;
	if (h->slot_size != slot_size_for(h->samples))
		return -1;
	need = h->header_size + (size_t)(h->max_nodes + h->max_instances) * h->slot_size;
	if (need != size || h->nodes_off != h->header_size ||
	    h->instances_off != h->nodes_off + (uint64_t)h->max_nodes * h->slot_size)
		return -1;
	return 0;
}

/* Set the retired flag of the segment called name, if it is one of ours. */
static void mark_retired(const char *name)
{
	int fd = shm_open(name, O_RDWR, 0);
	struct stat st;
	void *p;

	if (fd < 0)
		return;
	/* a segment shorter than a header would SIGBUS on access */
	if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct shm_header)) {
		p = mmap(NULL, sizeof(struct shm_header), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 0);
		if (p != MAP_FAILED) {
			struct shm_header *h = p;

			if (h->magic == SHM_MAGIC)
				atomic_store_explicit(&h->retired, 1, memory_order_release);
			munmap(p, sizeof(struct shm_header));
		}
	}
	close(fd);
}

static void retire_old(const char *name)
{
	mark_retired(name);
	if (shm_unlink(name) == 0)
		log_info("shm retired old segment name=%s", name);
}

/* A new, empty handle for the segment called name. NULL when out of memory. */
static struct metrics_seg *seg_new(const char *name)
{
	struct metrics_seg *seg = calloc(1, sizeof(*seg));

	if (seg)
		snprintf(seg->name, sizeof(seg->name), "%s", name);
	return seg;
}

/* Map the open segment fd (size bytes) into seg and record its identity
 * (device and inode, which shm_seg_stale compares). 0 / -1 with errno. */
static int map_segment(struct metrics_seg *seg, int fd, size_t size, int writable,
		       const struct stat *st)
{
	seg->base = mmap(NULL, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (seg->base == MAP_FAILED) {
		seg->base = NULL;
		return -1;
	}
	seg->size = size;
	seg->dev = st->st_dev;
	seg->ino = st->st_ino;
	seg->hdr = (struct shm_header *)seg->base;
	return 0;
}

/* Layout fields of a fresh header; the magic is left for the caller to
 * publish last. ftruncate gave zeroed memory: every slot is FREE, seq 0. */
static void init_header(struct shm_header *h, size_t size, const struct shm_dims *dims,
			const char *replica_id)
{
	h->version = SHM_LAYOUT_VERSION;
	h->header_size = (uint32_t)header_size();
	h->total_size = size;
	h->max_nodes = dims->max_nodes;
	h->max_instances = dims->max_instances;
	h->samples = dims->samples;
	h->slot_size = slot_size_for(dims->samples);
	h->nodes_off = h->header_size;
	h->instances_off = h->nodes_off + (uint64_t)h->max_nodes * h->slot_size;
	h->created_ms = mh_wall_ms();
	h->generation = ((uint64_t)h->created_ms << 16) ^ (uint64_t)getpid();
	h->creator_pid = getpid();
	snprintf(h->replica_id, sizeof(h->replica_id), "%s", replica_id ? replica_id : "");
}

struct metrics_seg *shm_create(const char *name, const struct shm_dims *dims,
			       const char *replica_id)
{
	struct metrics_seg *seg = NULL;
	size_t size = shm_size_of(dims);
	struct stat st;
	const char *errpos = "calloc";
	int fd = -1;

	retire_old(name);
	seg = seg_new(name);
	if (!seg)
		goto failed;
	errpos = "shm_open";
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		goto failed;
	errpos = "ftruncate";
	if (ftruncate(fd, (off_t)size) < 0)
		goto failed;
	errpos = "fstat";
	if (fstat(fd, &st) < 0)
		goto failed;
	errpos = "mmap";
	if (map_segment(seg, fd, size, 1, &st) < 0)
		goto failed;
	close(fd);
	fd = -1;
	init_header(seg->hdr, size, dims, replica_id);
	errpos = "calloc scratch";
	seg->scratch = calloc(1, seg->hdr->slot_size);
	if (!seg->scratch)
		goto failed;
	atomic_thread_fence(memory_order_release);
	seg->hdr->magic = SHM_MAGIC; /* last: attachers check it */
	log_info("shm created name=%s size=%zu nodes=%u instances=%u samples=%u", name, size,
		 seg->hdr->max_nodes, seg->hdr->max_instances, seg->hdr->samples);
	return seg;
failed:
	log_error("shm create name=%s failed at %s", name, errpos);
	if (fd >= 0) {
		close(fd);
		shm_unlink(name);
	}
	shm_close(seg);
	return NULL;
}

int shm_unlink_name(const char *name)
{
	/* mark it retired first, so attached readers drop it at once */
	mark_retired(name);
	if (shm_unlink(name) < 0 && errno != ENOENT) {
		log_warn("shm unlink name=%s", name);
		return -1;
	}
	return 0;
}

/* Readers retry attaching every cycle until the hub has created the
 * segment: log each distinct failure once, not every retry. errpos NULL
 * (a success) re-arms the message. errno is preserved. */
static void attach_failure(const char *name, const char *errpos)
{
	static char last_err[64];
	int saved = errno;

	if (!errpos) {
		last_err[0] = '\0';
	} else if (strcmp(last_err, errpos) != 0) {
		snprintf(last_err, sizeof(last_err), "%s", errpos);
		log_warn("shm attach name=%s failed at %s", name, errpos);
	}
	errno = saved;
}

struct metrics_seg *shm_attach(const char *name, int readonly)
{
	struct metrics_seg *seg = NULL;
	const char *errpos = "calloc";
	struct stat st;
	int fd = -1, saved;

	seg = seg_new(name);
	if (!seg)
		goto failed;
	seg->readonly = readonly;
	errpos = "shm_open";
	fd = shm_open(name, readonly ? O_RDONLY : O_RDWR, 0);
	if (fd < 0)
		goto failed;
	errpos = "fstat";
	if (fstat(fd, &st) < 0)
		goto failed;
	errpos = "size";
	errno = EINVAL;
	if ((size_t)st.st_size < sizeof(struct shm_header))
		goto failed;
	errpos = "mmap";
	/* readers map read-write only for the atomics' sake when asked to */
	if (map_segment(seg, fd, (size_t)st.st_size, !readonly, &st) < 0)
		goto failed;
	close(fd);
	fd = -1;
	atomic_thread_fence(memory_order_acquire);
	errpos = "header";
	errno = EINVAL;
	if (check_header(seg->hdr, seg->size) < 0)
		goto failed;
	errpos = "calloc scratch";
	seg->scratch = calloc(1, seg->hdr->slot_size);
	if (!seg->scratch)
		goto failed;
	seg->last_check_ms = mh_mono_ms();
	attach_failure(name, NULL);
	log_debug("shm attached name=%s size=%zu generation=%llu ro=%d", name, seg->size,
		 (unsigned long long)seg->hdr->generation, readonly);
	return seg;
failed:
	attach_failure(name, errpos);
	saved = errno;
	if (fd >= 0)
		close(fd);
	shm_close(seg);
	errno = saved;
	return NULL;
}

void shm_close(struct metrics_seg *seg)
{
	if (!seg)
		return;
	if (seg->base)
		munmap(seg->base, seg->size);
	free(seg->scratch);
	free(seg);
}

int shm_seg_stale(struct metrics_seg *seg)
{
	struct stat st;
	int64_t now;
	int fd;

	if (seg->stale || atomic_load_explicit(&seg->hdr->retired, memory_order_acquire))
		return seg->stale = 1;
	now = mh_mono_ms();
	if (now - seg->last_check_ms < STALE_CHECK_MS)
		return 0;
	seg->last_check_ms = now;
	fd = shm_open(seg->name, O_RDONLY, 0);
	if (fd < 0)
		return seg->stale = 1;
	if (fstat(fd, &st) < 0 || st.st_ino != seg->ino || st.st_dev != seg->dev) {
		close(fd);
		return seg->stale = 1;
	}
	close(fd);
	return 0;
}

struct metrics_seg *shm_keep(struct metrics_seg **segp, const char *name, int readonly,
			     int retry_ms)
{
	static int64_t last_try;
	int64_t now;

	if (*segp && shm_seg_stale(*segp)) {
		log_info("shm segment replaced, reattaching name=%s", name);
		shm_close(*segp);
		*segp = NULL;
		last_try = 0;
	}
	if (*segp)
		return *segp;
	now = mh_mono_ms();
	if (last_try && now - last_try < retry_ms)
		return NULL;
	last_try = now;
	*segp = shm_attach(name, readonly);
	return *segp;
}

int shm_child_seg(struct metrics_seg **segp, int *own, struct metrics_seg *given,
		  const char *name, int retry_ms)
{
	if (given && !*own) {
		*segp = given;
		return 0;
	}
	*own = 1;
	return shm_keep(segp, name, 0, retry_ms) ? 0 : -1;
}

const struct shm_header *shm_header(const struct metrics_seg *seg)
{
	return seg->hdr;
}

int shm_nslots(const struct metrics_seg *seg, enum shm_kind kind)
{
	uint32_t hw = atomic_load_explicit(kind == SHM_NODE ? &seg->hdr->hw_nodes
							    : &seg->hdr->hw_instances,
					   memory_order_acquire);
	uint32_t cap = kind == SHM_NODE ? seg->hdr->max_nodes : seg->hdr->max_instances;

	return (int)(hw < cap ? hw : cap);
}

int shm_capacity(const struct metrics_seg *seg, enum shm_kind kind)
{
	return (int)(kind == SHM_NODE ? seg->hdr->max_nodes : seg->hdr->max_instances);
}

/* Raise the kind's high-water mark to cover slot idx. */
static void hw_cover(struct metrics_seg *seg, enum shm_kind kind, int idx)
{
	_Atomic uint32_t *hw = kind == SHM_NODE ? &seg->hdr->hw_nodes : &seg->hdr->hw_instances;
	uint32_t cur = atomic_load_explicit(hw, memory_order_relaxed);

	while (cur < (uint32_t)idx + 1 &&
	       !atomic_compare_exchange_weak_explicit(hw, &cur, (uint32_t)idx + 1,
						      memory_order_release, memory_order_relaxed))
		;
}

int shm_max_samples(const struct metrics_seg *seg)
{
	return (int)seg->hdr->samples;
}

/* ---- seqlock ---- */

static int pid_gone(int32_t pid)
{
	return pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH);
}

static void sleep_us(long us)
{
	struct timespec ts = {0, us * 1000};

	nanosleep(&ts, NULL);
}

/* Take the slot's write side. Returns 0; -1 only for a read-only mapping. */
static int write_begin(struct metrics_seg *seg, struct shm_slot *s)
{
	int64_t stuck_since = 0;
	uint64_t stuck_seq = 0;

	if (seg->readonly)
		return -1;
	for (;;) {
		uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);

		if (!(q & 1)) {
			if (atomic_compare_exchange_weak_explicit(&s->seq, &q, q + 1,
								  memory_order_acquire,
								  memory_order_relaxed))
				break;
			continue;
		}
		/* odd: someone writes, or a writer died holding it */
		if (q != stuck_seq) {
			stuck_seq = q;
			stuck_since = mh_mono_ms();
		} else if (mh_mono_ms() - stuck_since > SHM_STUCK_MS &&
			   pid_gone(atomic_load_explicit(&s->writer_pid, memory_order_relaxed))) {
			/* q odd -> q + 2 keeps it odd and makes it ours */
			if (atomic_compare_exchange_strong_explicit(&s->seq, &q, q + 2,
								    memory_order_acquire,
								    memory_order_relaxed)) {
				atomic_fetch_add_explicit(&seg->hdr->recoveries, 1,
							  memory_order_relaxed);
				log_warn_x("shm seqlock taken over from dead writer pid=%d",
					   (int)atomic_load(&s->writer_pid));
				atomic_store_explicit(&s->writer_pid, getpid(),
						      memory_order_relaxed);
				atomic_thread_fence(memory_order_release);
				return 0;
			}
		}
		sleep_us(50);
	}
	atomic_store_explicit(&s->writer_pid, getpid(), memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return 0;
}

static void write_end(struct shm_slot *s)
{
	uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);

	atomic_store_explicit(&s->seq, q + 1, memory_order_release);
}

int shm_slot_snapshot(const struct metrics_seg *seg, enum shm_kind kind, int idx,
		      struct shm_snap *out, struct shm_sample *samples, int max_samples,
		      int64_t since_ms)
{
	struct shm_slot *s = slot_at(seg, kind, idx);
	struct shm_slot *copy = (struct shm_slot *)seg->scratch;
	uint32_t size = seg->hdr->slot_size;
	uint64_t q1, q2;
	uint32_t state, nring = seg->hdr->samples, next, count;
	int tries = 0;

	if (!s)
		return -1;
	/* only the slot header unless samples are wanted: scans stay cheap */
	if (!samples || max_samples <= 0)
		size = sizeof(struct shm_slot);
	for (;;) {
		q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (!(q1 & 1)) {
			state = atomic_load_explicit(&s->state, memory_order_relaxed);
			if (state != SHM_SLOT_ACTIVE)
				break; /* FREE: nothing to copy (out says so below) */
			memcpy(copy, s, size);
			atomic_thread_fence(memory_order_acquire);
			q2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
			if (q1 == q2)
				break;
		}
		if (++tries > READ_SPINS + READ_TRIES_SLEEP)
			return -1;
		if (tries > READ_SPINS)
			sleep_us(100);
	}
	memset(out, 0, sizeof(*out));
	out->index = idx;
	out->kind = kind;
	out->seq = q1;
	if (state != SHM_SLOT_ACTIVE)
		return 0;
	out->d = copy->d;
	out->samples = samples;
	if (!samples || max_samples <= 0)
		return 1;
	next = copy->d.ring_next % nring;
	count = copy->d.ring_count > nring ? nring : copy->d.ring_count;
	/* oldest first: the ring holds count entries ending just before next */
	{
		uint32_t first = (next + nring - count) % nring, skip = 0, eligible = 0;

		for (uint32_t k = 0; k < count; k++)
			if (ring_of(copy)[(first + k) % nring].t_ms > since_ms)
				eligible++;
		if (eligible > (uint32_t)max_samples)
			skip = eligible - (uint32_t)max_samples;
		for (uint32_t k = 0; k < count; k++) {
			const struct shm_sample *sm = &ring_of(copy)[(first + k) % nring];

			if (sm->t_ms <= since_ms)
				continue;
			if (skip) {
				skip--;
				continue;
			}
			samples[out->nsamples++] = *sm;
		}
	}
	return 1;
}

/* ---- registration ---- */

static void copy_ident(struct shm_slot_data *d, const struct shm_slot_data *src)
{
	d->instance_id = src->instance_id;
	memcpy(d->model_id, src->model_id, sizeof(d->model_id));
	d->model_id[sizeof(d->model_id) - 1] = '\0';
	memcpy(d->name, src->name, sizeof(d->name));
	d->name[sizeof(d->name) - 1] = '\0';
	memcpy(d->node, src->node, sizeof(d->node));
	d->node[sizeof(d->node) - 1] = '\0';
	d->pid = src->pid;
}

static void copy_resources(struct shm_slot_data *d, const struct shm_slot_data *src)
{
	d->cpu_request_m = src->cpu_request_m;
	d->cpu_limit_m = src->cpu_limit_m;
	d->mem_request_mib = src->mem_request_mib;
	d->mem_limit_mib = src->mem_limit_mib;
	d->cpu_capacity_m = src->cpu_capacity_m;
	d->cpu_allocatable_m = src->cpu_allocatable_m;
	d->mem_capacity_mib = src->mem_capacity_mib;
	d->mem_allocatable_mib = src->mem_allocatable_mib;
	d->instance_count = src->instance_count;
}

static int slot_matches(enum shm_kind kind, const struct shm_slot_data *d,
			const struct shm_slot_data *want)
{
	if (kind == SHM_INSTANCE)
		return d->instance_id == want->instance_id;
	return strncmp(d->name, want->name, sizeof(d->name)) == 0;
}

static int do_register(struct metrics_seg *seg, enum shm_kind kind,
		       const struct shm_slot_data *ident)
{
	int n = shm_nslots(seg, kind);
	int free_idx = -1;

	if (seg->readonly)
		return -1;
	for (int i = 0; i < n; i++) {
		struct shm_slot *s = slot_at(seg, kind, i);

		if (atomic_load_explicit(&s->state, memory_order_acquire) != SHM_SLOT_ACTIVE) {
			if (free_idx < 0)
				free_idx = i;
			continue;
		}
		write_begin(seg, s);
		if (atomic_load_explicit(&s->state, memory_order_relaxed) == SHM_SLOT_ACTIVE &&
		    slot_matches(kind, &s->d, ident)) {
			copy_resources(&s->d, ident);
			write_end(s);
			return i;
		}
		write_end(s);
	}
	for (int i = free_idx < 0 ? n : free_idx; i < shm_capacity(seg, kind); i++) {
		struct shm_slot *s = slot_at(seg, kind, i);
		uint64_t keep_gen;

		write_begin(seg, s);
		if (atomic_load_explicit(&s->state, memory_order_relaxed) == SHM_SLOT_ACTIVE) {
			write_end(s);
			continue;
		}
		keep_gen = s->d.reg_gen;
		memset(&s->d, 0, sizeof(s->d));
		memset(ring_of(s), 0, (size_t)seg->hdr->samples * sizeof(struct shm_sample));
		s->d.reg_gen = keep_gen + 1;
		copy_ident(&s->d, ident);
		copy_resources(&s->d, ident);
		s->d.registered_ms = mh_wall_ms();
		atomic_store_explicit(&s->state, SHM_SLOT_ACTIVE, memory_order_relaxed);
		hw_cover(seg, kind, i); /* before the slot is visible as ours: never active above it */
		write_end(s);
		return i;
	}
	return -1;
}

int shm_instance_register(struct metrics_seg *seg, const struct shm_slot_data *ident)
{
	int i;

	if (ident->instance_id <= 0)
		return -1;
	i = do_register(seg, SHM_INSTANCE, ident);
	if (i < 0)
		log_warn_x("shm no free instance slot instance=%lld",
			   (long long)ident->instance_id);
	return i;
}

int shm_node_register(struct metrics_seg *seg, const struct shm_slot_data *ident)
{
	struct shm_slot_data d = *ident;
	int i;

	d.instance_id = 0;
	if (!d.name[0])
		return -1;
	i = do_register(seg, SHM_NODE, &d);
	if (i < 0)
		log_warn_x("shm no free node slot node=%s", d.name);
	return i;
}

/* Lock slot idx if it is ACTIVE and holds instance_id (nodes: any). */
static struct shm_slot *lock_owned(struct metrics_seg *seg, enum shm_kind kind, int idx,
				   int64_t instance_id)
{
	struct shm_slot *s = slot_at(seg, kind, idx);

	if (!s || seg->readonly)
		return NULL;
	if (atomic_load_explicit(&s->state, memory_order_acquire) != SHM_SLOT_ACTIVE)
		return NULL;
	write_begin(seg, s);
	if (atomic_load_explicit(&s->state, memory_order_relaxed) != SHM_SLOT_ACTIVE ||
	    (kind == SHM_INSTANCE && s->d.instance_id != instance_id)) {
		write_end(s);
		return NULL;
	}
	return s;
}

int shm_slot_set_resources(struct metrics_seg *seg, enum shm_kind kind, int idx,
			   int64_t instance_id, const struct shm_slot_data *res)
{
	struct shm_slot *s = lock_owned(seg, kind, idx, instance_id);

	if (!s)
		return -1;
	copy_resources(&s->d, res);
	if (res->pid)
		s->d.pid = res->pid;
	if (res->node[0])
		memcpy(s->d.node, res->node, sizeof(s->d.node));
	if (kind == SHM_INSTANCE && res->name[0])
		memcpy(s->d.name, res->name, sizeof(s->d.name));
	write_end(s);
	return 0;
}

int shm_slot_release(struct metrics_seg *seg, enum shm_kind kind, int idx, int64_t instance_id)
{
	struct shm_slot *s = lock_owned(seg, kind, idx, instance_id);

	if (!s)
		return -1;
	atomic_store_explicit(&s->state, SHM_SLOT_FREE, memory_order_relaxed);
	write_end(s);
	return 0;
}

int shm_slot_set_flags(struct metrics_seg *seg, enum shm_kind kind, int idx,
		       int64_t instance_id, int set, int clear)
{
	struct shm_slot *s = lock_owned(seg, kind, idx, instance_id);

	if (!s)
		return -1;
	s->d.flags = (s->d.flags & ~clear) | set;
	write_end(s);
	return 0;
}

/* ---- ingest ---- */

double shm_agg_avg(const struct shm_agg *a)
{
	return a->count ? a->sum / (double)a->count : 0.0;
}

static int busy_bucket(double v)
{
	int b;

	if (!(v >= 1.0))
		return 0;
	b = 1 + (int)floor(log(v) / log(SHM_BUSY_RATIO));
	return b < SHM_BUSY_BUCKETS ? b : SHM_BUSY_BUCKETS - 1;
}

static void busy_add(struct shm_busy *b, double cpu_m, double mem_mib)
{
	b->count++;
	b->cpu[busy_bucket(cpu_m)]++;
	b->mem[busy_bucket(mem_mib)]++;
}

double shm_busy_percentile(const struct shm_busy *b, int cpu, double pct)
{
	const uint32_t *h = cpu ? b->cpu : b->mem;
	uint64_t rank, seen = 0;

	if (!b->count)
		return NAN;
	if (pct < 0)
		pct = 0;
	/* nearest rank: the smallest value with at least pct % at or below */
	rank = (uint64_t)ceil(pct / 100.0 * (double)b->count);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < SHM_BUSY_BUCKETS; i++) {
		seen += h[i];
		if (seen >= rank)
			return i == 0 ? 0.0 : pow(SHM_BUSY_RATIO, (double)i - 0.5);
	}
	return NAN;
}

double shm_throttled_pct(const struct shm_slot_data *d)
{
	if (!d->cfs_known || !(d->cfs_periods > 0))
		return NAN;
	return 100.0 * d->cfs_throttled / d->cfs_periods;
}

static void agg_add(struct shm_agg *a, double v)
{
	if (a->count == 0 || v < a->min)
		a->min = v;
	if (a->count == 0 || v > a->max)
		a->max = v;
	a->sum += v;
	a->count++;
}

/* Recompute the window aggregates from the ring (newest sample at t_end). */
static void window_update(struct shm_slot_data *d, const struct shm_sample *ring, uint32_t nring,
			  int64_t t_end)
{
	uint32_t count = d->ring_count > nring ? nring : d->ring_count;
	double csum = 0, msum = 0;
	uint32_t n = 0;

	for (uint32_t k = 0; k < count; k++) {
		const struct shm_sample *sm = &ring[(d->ring_next + nring - 1 - k) % nring];

		if (t_end - sm->t_ms >= SHM_WINDOW_MS)
			break;
		if (n == 0 || sm->cpu_m < d->cpu.w_min)
			d->cpu.w_min = sm->cpu_m;
		if (n == 0 || sm->cpu_m > d->cpu.w_max)
			d->cpu.w_max = sm->cpu_m;
		if (n == 0 || sm->mem_mib < d->mem.w_min)
			d->mem.w_min = sm->mem_mib;
		if (n == 0 || sm->mem_mib > d->mem.w_max)
			d->mem.w_max = sm->mem_mib;
		csum += sm->cpu_m;
		msum += sm->mem_mib;
		n++;
	}
	d->cpu.w_count = d->mem.w_count = n;
	d->cpu.w_avg = n ? csum / n : 0;
	d->mem.w_avg = n ? msum / n : 0;
	if (!n)
		d->cpu.w_min = d->cpu.w_max = d->mem.w_min = d->mem.w_max = 0;
}

int shm_slot_ingest(struct metrics_seg *seg, enum shm_kind kind, int idx,
		    int64_t instance_id, const struct shm_obs *o)
{
	struct shm_slot *s;
	struct shm_slot_data *d;
	struct shm_sample sm;
	uint32_t nring;
	double cpu = NAN;

	s = lock_owned(seg, kind, idx, instance_id);
	if (!s)
		return -1;
	d = &s->d;
	nring = seg->hdr->samples;
	if (o->start_ms > 0) {
		if (!d->source_start_ms) {
			d->source_start_ms = o->start_ms;
		} else if (o->same_source &&
			   (o->start_ms - d->source_start_ms > SHM_START_SLACK_MS ||
			    d->source_start_ms - o->start_ms > SHM_START_SLACK_MS)) {
			write_end(s);
			return -2;
		}
	}
	if (o->has_cpu_m && isfinite(o->cpu_m)) {
		cpu = o->cpu_m < 0 ? 0 : o->cpu_m;
	} else if (o->has_cpu_counter && isfinite(o->cpu_counter_s)) {
		/* A rate only between two observations of this slot: the first
		 * one is a baseline, never a rate averaged from the process or
		 * container start (that average holds the start-up, e.g. the
		 * interpreter's imports, and set the peak; issue 16). A
		 * counter that went back (process exited, container
		 * restarted) just starts a new baseline. */
		if (d->cpu_counter_ms && o->t_ms > d->cpu_counter_ms &&
		    o->cpu_counter_s >= d->cpu_counter_s)
			cpu = (o->cpu_counter_s - d->cpu_counter_s) * 1e6 /
			      (double)(o->t_ms - d->cpu_counter_ms);
		d->cpu_counter_s = o->cpu_counter_s;
		d->cpu_counter_ms = o->t_ms;
	}
	if (o->has_cfs && isfinite(o->cfs_periods) && isfinite(o->cfs_throttled)) {
		d->cfs_known = 1;
		d->cfs_periods = o->cfs_periods;
		d->cfs_throttled = o->cfs_throttled;
	}
	if (isnan(cpu) || !o->has_mem || !isfinite(o->mem_mib) || o->t_ms <= d->last_sample_ms) {
		write_end(s);
		return 0;
	}
	sm.t_ms = o->t_ms;
	sm.cpu_m = cpu;
	sm.mem_mib = o->mem_mib < 0 ? 0 : o->mem_mib;
	ring_of(s)[d->ring_next % nring] = sm;
	d->ring_next = (d->ring_next + 1) % nring;
	if (d->ring_count < nring)
		d->ring_count++;
	d->last_sample_ms = sm.t_ms;
	agg_add(&d->cpu, sm.cpu_m);
	agg_add(&d->mem, sm.mem_mib);
	if (kind == SHM_INSTANCE && (d->flags & SHM_F_BUSY))
		busy_add(&d->busy, sm.cpu_m, sm.mem_mib);
	window_update(d, ring_of(s), nring, sm.t_ms);
	write_end(s);
	return 1;
}

/* ---- child table and scrape stats (plain atomics, no seqlock) ---- */

void shm_child_set(struct metrics_seg *seg, int idx, const char *role, int32_t pid,
		   uint32_t restarts)
{
	struct shm_child *c;

	if (!seg || seg->readonly || idx < 0 || idx >= SHM_MAX_CHILDREN)
		return;
	c = &seg->hdr->children[idx];
	snprintf(c->role, sizeof(c->role), "%s", role ? role : "");
	atomic_store(&c->restarts, restarts);
	atomic_store(&c->started_ms, mh_wall_ms());
	atomic_store(&c->pid, pid);
}

void shm_scrape_stat(struct metrics_seg *seg, uint64_t us, int error)
{
	struct shm_header *h;

	if (!seg || seg->readonly)
		return;
	h = seg->hdr;
	atomic_fetch_add(&h->scrape_cycles, 1);
	atomic_fetch_add(&h->scrape_us_total, us);
	atomic_store(&h->scrape_us_last, us);
	atomic_store(&h->scrape_last_ms, mh_wall_ms());
	if (error)
		atomic_fetch_add(&h->scrape_errors, 1);
}

/* ---- lookups ---- */

int shm_find_instance(const struct metrics_seg *seg, int64_t instance_id)
{
	int n = shm_nslots(seg, SHM_INSTANCE);

	for (int i = 0; i < n; i++) {
		struct shm_slot *s = slot_at(seg, SHM_INSTANCE, i);

		if (atomic_load_explicit(&s->state, memory_order_acquire) == SHM_SLOT_ACTIVE &&
		    s->d.instance_id == instance_id)
			return i;
	}
	return -1;
}

int shm_find_node(const struct metrics_seg *seg, const char *name)
{
	int n = shm_nslots(seg, SHM_NODE);
	char buf[SHM_NAME_LEN];

	for (int i = 0; i < n; i++) {
		struct shm_slot *s = slot_at(seg, SHM_NODE, i);

		if (atomic_load_explicit(&s->state, memory_order_acquire) != SHM_SLOT_ACTIVE)
			continue;
		memcpy(buf, s->d.name, sizeof(buf));
		buf[sizeof(buf) - 1] = '\0';
		if (strcmp(buf, name) == 0)
			return i;
	}
	return -1;
}
