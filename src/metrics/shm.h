/*
 * shm.h — layout and API of the live metrics segment (POSIX shm).
 *
 * Runs in: modelhubd (creates it, never writes slot data), its children
 * (scraper writes samples, monitor registers and releases instance slots,
 * runners read), modelhub-fcgi workers (attach read-only).
 * Called by: hubd/supervisor.c (shm_create), hubd/scraper.c, hubd/monitor.c,
 * fcgi/api_instances.c, fcgi/api_metrics.c.
 * Owns: the mapping of one segment per struct metrics_seg.
 *
 * Layout (all offsets and sizes are in the header, so a reader never uses
 * its own configuration to interpret a segment):
 *
 *   struct shm_header   magic, layout version, sizes, created-at,
 *                       generation, retired flag, child table, scrape stats
 *   node slots          max_nodes × slot_size
 *   instance slots      max_instances × slot_size
 *
 * A slot is struct shm_slot followed by a ring of `samples` struct
 * shm_sample; slot_size is rounded up to 64 bytes.
 *
 * Who writes what:
 *   header sizes, magic, generation   modelhubd, once at creation
 *   header.retired                    the next modelhubd, before unlinking
 *   header.children[]                 supervisor (role, pid, restarts),
 *                                     atomics (heartbeats: lib/sup.h)
 *   header scrape stats               scraper, atomics
 *   node slots                        scraper only (register, ingest, release)
 *   instance slots: identity,
 *     resources, state                monitor (register, release)
 *   instance slots: samples and
 *     aggregates                      scraper (ingest)
 *
 * DESIGN — seqlock. Every slot has a 64-bit sequence word. A writer takes
 * it from even to odd with a compare-and-swap (so the monitor and the scraper
 * never write one slot at the same time), writes, and releases it to the next
 * even value. A reader loads the word (acquire), copies the slot, issues an
 * acquire fence and loads the word again; the copy is good only when both
 * loads are equal and even. Readers never block the writer; they retry a
 * bounded number of times and then report EAGAIN instead of spinning forever.
 * A writer killed (SIGKILL) while holding the word leaves it odd: the next
 * writer that finds it odd for longer than SHM_STUCK_MS with the recorded
 * writer pid gone takes it over (the slot content may then be torn; the taker
 * rewrites what it owns and counts the recovery in header.recoveries).
 *
 * DESIGN — recreation. modelhubd always creates a fresh segment. Before
 * unlinking an old segment of the same name it sets the old header's
 * `retired` flag, so attached readers notice (shm_seg_stale) and reattach.
 * Readers also compare the inode of the name with theirs every few seconds,
 * in case the old segment was removed by other means.
 */
#ifndef MH_SHM_H
#define MH_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC 0x3154454d424855ULL /* "UHBMET1" little endian */
#define SHM_LAYOUT_VERSION 4
#define SHM_MAX_CHILDREN 32
#define SHM_STUCK_MS 200        /* odd seq this long + dead writer = take over */
#define SHM_WINDOW_MS 60000     /* the "last 60 s" aggregate window */

#define SHM_ID_LEN 64
#define SHM_NAME_LEN 128

enum shm_slot_state { SHM_SLOT_FREE = 0, SHM_SLOT_ACTIVE = 1 };
enum shm_kind { SHM_NODE = 0, SHM_INSTANCE = 1 };

struct shm_sample {
	int64_t t_ms;           /* wall clock, ms since epoch */
	double cpu_m;           /* millicores over the interval ending at t_ms */
	double mem_mib;         /* working set */
};

/* Busy-phase samples of an instance (issue 16): those ingested while the
 * slot had SHM_F_BUSY (the instance served a request). A log-scale
 * histogram per resource, so a low percentile over the whole life costs
 * a fixed size: bucket 0 holds values < 1, bucket b >= 1 holds
 * [SHM_BUSY_RATIO^(b-1), SHM_BUSY_RATIO^b); the last bucket is open. */
#define SHM_BUSY_BUCKETS 240
#define SHM_BUSY_RATIO 1.06     /* bucket width 6 %: up to ~1.1e6 m / MiB */
#define SHM_BUSY_PCT 10.0       /* the percentile persisted as cpu_busy_m / mem_busy_mib */
struct shm_busy {
	uint32_t count;
	uint32_t cpu[SHM_BUSY_BUCKETS];
	uint32_t mem[SHM_BUSY_BUCKETS];
};

struct shm_agg {
	uint64_t count;         /* all-time */
	double min, max, sum;   /* all-time; avg = sum / count */
	uint32_t w_count;       /* samples in the last SHM_WINDOW_MS */
	double w_min, w_max, w_avg;
};

/* Everything a reader copies out of a slot (the ring is copied separately). */
struct shm_slot_data {
	uint64_t reg_gen;       /* bumped at every register, tells reuse apart */
	int64_t instance_id;    /* 0 for node slots */
	char model_id[SHM_ID_LEN];
	char name[SHM_NAME_LEN];        /* instance/pod name, or node name */
	char node[SHM_NAME_LEN];        /* node an instance runs on */
	int32_t pid;            /* local backend: process-group leader, else 0 */
	int32_t cpu_request_m, cpu_limit_m;       /* 0 = unknown */
	int32_t mem_request_mib, mem_limit_mib;
	/* node slots only */
	double cpu_capacity_m, cpu_allocatable_m;
	double mem_capacity_mib, mem_allocatable_mib;
	int32_t instance_count;
	int32_t flags;          /* SHM_F_* */
	int64_t registered_ms;
	int64_t last_sample_ms;
	int64_t source_start_ms; /* start of the process/container first sampled:
				  * a different one later means a reused pid */
	/* CPU counter baseline, for deltas */
	double cpu_counter_s;
	int64_t cpu_counter_ms;
	struct shm_agg cpu;     /* millicores */
	struct shm_agg mem;     /* MiB */
	struct shm_busy busy;   /* instance slots: samples taken while BUSY */
	/* CFS bandwidth counters of the instance's cgroup/container as last
	 * read (cumulative since its start); cfs_known 0 = never read */
	int32_t cfs_known;
	double cfs_periods, cfs_throttled;
	uint32_t ring_next;     /* index of the next sample to write */
	uint32_t ring_count;    /* valid samples in the ring */
};

#define SHM_F_CGROUP 1          /* memory read from a dedicated cgroup */
#define SHM_F_OOM 2             /* memory limit exceeded (scraper killed it / cgroup OOM) */
#define SHM_F_SHARED_CG 4       /* its cgroup holds other processes: RSS used */
#define SHM_F_BUSY 8            /* serving a request now (model_instance.state
				 * BUSY): its samples enter d.busy. Set and
				 * cleared by the scraper each cycle */

struct shm_slot {
	_Atomic uint64_t seq;
	_Atomic uint32_t state;     /* enum shm_slot_state */
	_Atomic int32_t writer_pid; /* holder of an odd seq */
	struct shm_slot_data d;
	/* followed by struct shm_sample ring[samples] */
};

struct shm_child {
	char role[16];                  /* "" = unused entry */
	_Atomic int32_t pid;
	_Atomic uint32_t restarts;
	_Atomic int64_t started_ms;
};

struct shm_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint64_t total_size;
	uint32_t max_nodes, max_instances, samples, slot_size;
	uint64_t nodes_off, instances_off;
	int64_t created_ms;
	uint64_t generation;
	int32_t creator_pid;
	_Atomic uint32_t retired;
	char replica_id[SHM_ID_LEN];
	/* scraper statistics (atomics, scraper writes) */
	_Atomic uint64_t scrape_cycles;
	_Atomic uint64_t scrape_us_total;
	_Atomic uint64_t scrape_us_last;
	_Atomic uint64_t scrape_errors;
	_Atomic int64_t scrape_last_ms;
	_Atomic uint64_t recoveries;    /* stuck seqlocks taken over */
	/* high-water marks: every slot ever ACTIVE lies below them (the
	 * registering writer raises them), so scans stop there and the pages
	 * of a large, mostly unused capacity are never touched */
	_Atomic uint32_t hw_nodes, hw_instances;
	struct shm_child children[SHM_MAX_CHILDREN];
};

/* A slot as copied out by a reader. samples[] is in time order. */
struct shm_snap {
	int index;
	enum shm_kind kind;
	uint64_t seq;           /* the even sequence the copy was taken at */
	struct shm_slot_data d;
	int nsamples;
	struct shm_sample *samples; /* caller-provided buffer (may be NULL) */
};

struct metrics_seg;

/* Sizes used by shm_create. */
struct shm_dims {
	uint32_t max_nodes, max_instances, samples;
};

/* From config metrics.max_nodes/max_instances/samples (1024, 110000, 200:
 * a cluster of 1,000 nodes running 110 pods each). The segment is sparse:
 * only slots used so far take memory (see the high-water marks). */
void shm_dims_from_config(struct shm_dims *dims);
/* hub.shm_name, default "/modelhub-<replica>", into out (size n). */
void shm_name_from_config(char *out, size_t n, const char *replica_id);
size_t shm_size_of(const struct shm_dims *dims);

/* modelhubd: retire and unlink any old segment of this name, create a new
 * one. NULL on failure (logged). Free with shm_close (does not unlink). */
struct metrics_seg *shm_create(const char *name, const struct shm_dims *dims,
			       const char *replica_id);
/* Mark the segment retired and unlink the name (modelhubd at shutdown),
 * so attached readers let go of it at once. 0 / -1. */
int shm_unlink_name(const char *name);

/* Attach an existing segment. NULL if missing or invalid (no log spam: the
 * failure is logged once per distinct cause). */
struct metrics_seg *shm_attach(const char *name, int readonly);
void shm_close(struct metrics_seg *seg);

/* Readers: 1 if the segment was retired/replaced and should be reattached,
 * 0 if still current. Checks the name's inode at most every 2 s. */
int shm_seg_stale(struct metrics_seg *seg);
/* Keep *segp attached and current: attach if NULL (at most every
 * retry_ms), reattach if stale. Returns *segp (may be NULL). */
struct metrics_seg *shm_keep(struct metrics_seg **segp, const char *name, int readonly,
			     int retry_ms);
/* A modelhubd child's segment (read-write): the supervisor's attachment
 * (given) while it has one and the child never had to attach its own;
 * otherwise the child keeps its own attachment of name (shm_keep, *own set
 * so the child shm_close()s it at exit). 0 with *segp usable, -1 not
 * attached yet. */
int shm_child_seg(struct metrics_seg **segp, int *own, struct metrics_seg *given,
		  const char *name, int retry_ms);

const struct shm_header *shm_header(const struct metrics_seg *seg);
/* Slots worth scanning: every slot ever registered lies in [0, n). Grows
 * while the segment lives; loops use it, never the capacity. */
int shm_nslots(const struct metrics_seg *seg, enum shm_kind kind);
/* Slots the segment was created with (metrics.max_nodes/max_instances). */
int shm_capacity(const struct metrics_seg *seg, enum shm_kind kind);
int shm_max_samples(const struct metrics_seg *seg);

/* ---- writers (one process per role; the seqlock makes them exclusive) ---- */

/* Register an instance slot (monitor). If a slot with this instance id is
 * already ACTIVE its identity/resources are refreshed and its index
 * returned; else a FREE slot is taken. Returns index or -1 (full). */
int shm_instance_register(struct metrics_seg *seg, const struct shm_slot_data *ident);
/* Register a node slot by name (scraper). Same semantics. */
int shm_node_register(struct metrics_seg *seg, const struct shm_slot_data *ident);
/* Update resources (and node capacity fields; pid, node and, for
 * instances, name when given) of an ACTIVE slot. */
int shm_slot_set_resources(struct metrics_seg *seg, enum shm_kind kind, int idx,
			   int64_t instance_id, const struct shm_slot_data *res);
/* Free a slot if it still holds instance_id (nodes: pass 0). 0, -1 if not. */
int shm_slot_release(struct metrics_seg *seg, enum shm_kind kind, int idx, int64_t instance_id);
/* Set or clear flag bits. */
int shm_slot_set_flags(struct metrics_seg *seg, enum shm_kind kind, int idx,
		       int64_t instance_id, int set, int clear);

/* One observation from any source (local /proc, kubelet Prometheus). */
struct shm_obs {
	int64_t t_ms;           /* observation time (wall ms) */
	int has_cpu_counter;    /* cpu_counter_s is a cumulative counter */
	double cpu_counter_s;   /* CPU seconds since the process/container start */
	int64_t start_ms;       /* process/container start (wall ms), 0 unknown:
				 * tells a reused pid apart (same_source); the
				 * first observation of a counter is a baseline
				 * only, never a rate from this start */
	int same_source;        /* start_ms must match the first observation's
				 * (local pids can be reused; containers restart) */
	int has_cpu_m;          /* cpu_m already in millicores (no delta) */
	double cpu_m;
	int has_mem;
	double mem_mib;
	int has_cfs;            /* CFS counters read (cgroup cpu.stat, kubelet) */
	double cfs_periods, cfs_throttled; /* cumulative periods, throttled periods */
};

/* Scraper: turn an observation into a sample (CPU from the counter delta
 * against the slot's baseline) and update the aggregates. Returns 1 if a
 * sample was added, 0 if only a baseline was recorded, -1 if the slot no
 * longer holds instance_id or is not ACTIVE, -2 if obs->same_source and
 * obs->start_ms differs
 * from the start recorded at the first observation by more than
 * SHM_START_SLACK_MS (another process now has the pid: nothing recorded). */
#define SHM_START_SLACK_MS 2000
int shm_slot_ingest(struct metrics_seg *seg, enum shm_kind kind, int idx,
		    int64_t instance_id, const struct shm_obs *obs);

/* Child table (supervisor, at each start). idx < SHM_MAX_CHILDREN. */
void shm_child_set(struct metrics_seg *seg, int idx, const char *role, int32_t pid,
		   uint32_t restarts);
void shm_scrape_stat(struct metrics_seg *seg, uint64_t us, int error);

/* ---- readers ---- */

/* Index of the ACTIVE slot holding instance_id (or node name), -1 if none.
 * Unlocked scan; confirm with a snapshot. */
int shm_find_instance(const struct metrics_seg *seg, int64_t instance_id);
int shm_find_node(const struct metrics_seg *seg, const char *name);

/* Consistent copy of a slot. samples (room for max_samples, may be NULL)
 * receives the ring samples with t_ms > since_ms, oldest first.
 * Returns 1 copied (ACTIVE), 0 slot FREE, -1 EAGAIN (writer busy too long)
 * or bad index. */
int shm_slot_snapshot(const struct metrics_seg *seg, enum shm_kind kind, int idx,
		      struct shm_snap *out, struct shm_sample *samples, int max_samples,
		      int64_t since_ms);

/* Average of an aggregate (0 when empty). */
double shm_agg_avg(const struct shm_agg *a);
/* The pct percentile (0..100) of the busy samples of one resource (cpu 1,
 * memory 0): the geometric middle of the bucket holding it (within 3 %),
 * 0 for the bucket of values < 1. NaN when there are no busy samples. */
double shm_busy_percentile(const struct shm_busy *b, int cpu, double pct);
/* Percent of CFS periods throttled, from the counters last read; NaN when
 * never read or no period ran (no CPU quota: nothing can throttle). */
double shm_throttled_pct(const struct shm_slot_data *d);

#endif
