/*
 * scraper.c — the scraper child: samples node and instance CPU/memory into
 * the metrics segment, enforces memory limits where no cgroup does, and
 * publishes compact live aggregates to Postgres.
 *
 * Runs in: modelhubd child "scraper" (one per replica). Called by: the
 * supervisor through scraper_main().
 * Owns: its /proc scan table; the samples and aggregates of every slot
 * (the segment's single writer of sample data, shm.h).
 * Shared state: reads model_instance (+ model.disable_memory_limit; state
 * BUSY each cycle: the slots' SHM_F_BUSY, whose samples form the busy
 * phase of the recommendations);
 * writes instance_live (upsert every LIVE_EVERY_MS, and at the first sample
 * of each new instance), and on a memory-limit
 * kill model_instance.termination_reason/detail and one instance_event
 * OOM_KILLED. Segment: instance slots it only ingests into (the monitor
 * registers and releases them); the node slot of this machine it owns.
 * On crash: the supervisor restarts it; sample baselines live in the slots,
 * so the next cycle continues the CPU deltas. A seqlock left odd by the
 * crash is taken over by the next writer (shm.c).
 *
 * DESIGN
 * - Sources feed one function, shm_slot_ingest(), with a struct shm_obs
 *   (cumulative CPU seconds + working set), so the kubernetes source
 *   (kubelet /metrics/resource through metrics/kubelet.h) only adds a
 *   producer: with hub.backend = kubernetes each cycle calls
 *   kubescrape_cycle() (kubernetes backend, weak) in the replica holding
 *   the hub lease (hubd_leader_token()), so kubelets are scraped once.
 * - Local instances: the process group of model_instance.pid (the leader,
 *   started with setsid by cluster/local.c). CPU = utime+stime of the group;
 *   memory = the instance's dedicated memory cgroup working set when it has
 *   one, else the sum of the group's RSS.
 * - Memory limit without a cgroup: the group is killed with SIGKILL when its
 *   two newest samples are over the limit (the local backend kills at the
 *   leader's RSS itself; the scraper also catches groups whose other
 *   members hold the memory). The reason is written to the row first
 *   (termination_reason = 'OOMKILLED' where still NULL) so the runner, which
 *   reaps the process, keeps it instead of FAILED.
 * - Busy phase (issue 16): before sampling, each instance slot's
 *   SHM_F_BUSY follows model_instance.state = 'BUSY' (a request in
 *   progress) at this cycle and the previous one, so shm_slot_ingest()
 *   files the samples of an instance that worked through the whole interval
 *   in its busy histogram; idle time between requests (and the interval in
 *   which a request began or ended) stays out of the request
 *   recommendations. One query per cycle, for both backends.
 * - Throttling: a local instance in a dedicated CPU cgroup reports its
 *   cpu.stat nr_periods/nr_throttled with each sample (proc.h); kubelet
 *   answers carry container_cpu_cfs_* when the kubelet exports them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "db/db_instance.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/proc.h"
#include "metrics/shm.h"
#include "metrics/view.h"

#define LIVE_EVERY_MS 15000     /* instance_live upsert period (DESIGN §6) */
#define ATTACH_RETRY_MS 2000    /* segment missing: try again this often */
#define MIN_INTERVAL_MS 200

struct scraper {
	struct hubd_child *c;
	struct metrics_seg *seg;
	int own_seg;            /* attached here (not given by the supervisor) */
	char seg_name[256];
	char node[SHM_NAME_LEN];
	struct proc_table pt;
	int64_t last_live_ms;
	int node_slot;
	uint64_t *written_gen;  /* per instance slot: reg_gen last in instance_live */
	int nwritten;
	int kube_leader, kube_warned;
	int64_t *busy_prev;     /* instance ids BUSY at the previous cycle, sorted */
	int nbusy_prev;
};

/* ---- the machine (node slot) ---- */

static void scrape_node(struct scraper *s, int ninstances)
{
	struct proc_machine m;
	struct shm_slot_data id;
	struct shm_obs o;

	if (proc_machine(&m) < 0)
		return;
	memset(&id, 0, sizeof(id));
	snprintf(id.name, sizeof(id.name), "%s", s->node);
	snprintf(id.node, sizeof(id.node), "%s", s->node);
	id.cpu_capacity_m = id.cpu_allocatable_m = m.ncpu * 1000.0;
	id.mem_capacity_mib = id.mem_allocatable_mib = (double)m.mem_total_bytes / 1048576.0;
	id.instance_count = ninstances;
	/* register also refreshes capacity and the instance count */
	s->node_slot = shm_node_register(s->seg, &id);
	if (s->node_slot < 0)
		return;
	memset(&o, 0, sizeof(o));
	o.t_ms = m.at_ms;
	o.has_cpu_counter = 1;
	o.cpu_counter_s = m.cpu_busy_s;
	o.has_mem = 1;
	o.mem_mib = (double)(m.mem_total_bytes - m.mem_available_bytes) / 1048576.0;
	shm_slot_ingest(s->seg, SHM_NODE, s->node_slot, 0, &o);
}

/* ---- memory limit without a cgroup ---- */

static void oom_kill(struct scraper *s, int64_t id, pid_t pgid, double mem_mib, int limit_mib,
		     int slot)
{
	char detail[160], ev[200];

	snprintf(detail, sizeof(detail),
		 "memory working set %.0f MiB over the limit of %d MiB (killed by the scraper)",
		 mem_mib, limit_mib);
	snprintf(ev, sizeof(ev), "{\"memory_mib\":%.1f,\"limit_mib\":%d,\"by\":\"scraper\"}",
		 mem_mib, limit_mib);
	/* reason first, so whoever reaps the process records OOMKILLED */
	db_inst_oom_mark(s->c->db, id, detail, ev);
	if (kill(-pgid, SIGKILL) < 0 && errno != ESRCH)
		log_warn("scraper instance=%lld pgid=%d msg=\"kill failed\"", (long long)id,
			 (int)pgid);
	shm_slot_set_flags(s->seg, SHM_INSTANCE, slot, id, SHM_F_OOM, 0);
	log_warn_x("scraper instance=%lld pgid=%d memory_mib=%.0f limit_mib=%d msg=\"over memory "
		   "limit without cgroup, killed\"",
		   (long long)id, (int)pgid, mem_mib, limit_mib);
}

static int sn_flags(struct scraper *s, int slot, int64_t id)
{
	struct shm_snap sn;

	if (shm_slot_snapshot(s->seg, SHM_INSTANCE, slot, &sn, NULL, 0, 0) != 1 ||
	    sn.d.instance_id != id)
		return 0;
	return sn.d.flags;
}

/* The two newest samples are both over limit_mib: the local backend's own
 * check (leader RSS, when its runner polls) had a full interval to act, so
 * what is left is a group whose other members hold the memory. */
static int last_two_over(struct scraper *s, int slot, int64_t id, int limit_mib)
{
	struct shm_sample last[2];
	struct shm_snap sn;

	if (shm_slot_snapshot(s->seg, SHM_INSTANCE, slot, &sn, last, 2, 0) != 1 ||
	    sn.d.instance_id != id || sn.nsamples < 2)
		return 0;
	return last[0].mem_mib > limit_mib && last[1].mem_mib > limit_mib;
}

/* ---- busy phase ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int has_id(const int64_t *ids, int n, int64_t id)
{
	return n > 0 && bsearch(&id, ids, (size_t)n, sizeof(*ids), cmp_i64) != NULL;
}

/* BUSY instance ids now, sorted; -1 on error. */
static int busy_ids(struct scraper *s, int64_t **out)
{
	PGresult *r = db_inst_busy_ids(s->c->db);
	int nb;

	*out = NULL;
	if (!r)
		return -1;
	nb = PQntuples(r);
	*out = calloc((size_t)nb + 1, sizeof(**out));
	for (int i = 0; *out && i < nb; i++)
		(*out)[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	if (!*out)
		return -1;
	qsort(*out, (size_t)nb, sizeof(**out), cmp_i64);
	return nb;
}

/* SHM_F_BUSY of every instance slot = its row was BUSY at the previous
 * cycle and is BUSY now: the next sample is a rate over the interval since
 * the previous one, so an interval that began idle (the first cycle of a
 * request) or ends idle stays out of the busy phase. */
static void mark_busy(struct scraper *s)
{
	int n = shm_nslots(s->seg, SHM_INSTANCE), nb;
	int64_t *ids;
	struct shm_snap sn;

	if ((nb = busy_ids(s, &ids)) < 0)
		return;
	for (int i = 0; i < n; i++) {
		int busy, was;

		if (shm_slot_snapshot(s->seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1)
			continue;
		busy = has_id(ids, nb, sn.d.instance_id) &&
		       has_id(s->busy_prev, s->nbusy_prev, sn.d.instance_id);
		was = (sn.d.flags & SHM_F_BUSY) != 0;
		if (busy != was)
			shm_slot_set_flags(s->seg, SHM_INSTANCE, i, sn.d.instance_id,
					   busy ? SHM_F_BUSY : 0, busy ? 0 : SHM_F_BUSY);
	}
	free(s->busy_prev);
	s->busy_prev = ids;
	s->nbusy_prev = nb;
}

/* ---- local instances ---- */

/* One row of db_inst_local_rows. */
struct local_row {
	int64_t id;
	pid_t pgid;
	int limit, no_limit, has_reason, starting;
};

static void local_row(PGresult *r, int i, struct local_row *lr)
{
	lr->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	lr->pgid = (pid_t)atoi(PQgetvalue(r, i, 1));
	lr->limit = atoi(PQgetvalue(r, i, 2));
	lr->no_limit = PQgetvalue(r, i, 3)[0] == 't';
	lr->has_reason = PQgetvalue(r, i, 4)[0] == 't';
	lr->starting = PQgetvalue(r, i, 5)[0] == 't';
}

/* The group's memory from its own cgroup (0, into *ws and *ooms), or not
 * (non-zero: use its RSS); flags the slot when the cgroup is shared. */
static int group_memory(struct scraper *s, const struct local_row *lr, int slot, int64_t *ws,
			int64_t *ooms)
{
	char cgdir[1100];
	int cg = proc_cgroup_memory(lr->pgid, ws, ooms, cgdir, sizeof(cgdir));

	if (cg == 0 && proc_cgroup_exclusive(cgdir, &s->pt, lr->pgid) == 0) {
		/* another process shares the cgroup (e.g. a name clash):
		 * its working set is not this instance's alone */
		if (!(sn_flags(s, slot, lr->id) & SHM_F_SHARED_CG))
			log_warn_x("scraper instance=%lld cgroup=%s msg=\"cgroup shared with "
				   "other processes, using the group's RSS\"",
				   (long long)lr->id, cgdir);
		shm_slot_set_flags(s->seg, SHM_INSTANCE, slot, lr->id, SHM_F_SHARED_CG, SHM_F_CGROUP);
		cg = 1;
	}
	return cg;
}

/* Sample one local instance into its slot, and enforce its memory limit
 * where no cgroup does. */
static void scrape_one(struct scraper *s, const struct local_row *lr)
{
	int slot = shm_find_instance(s->seg, lr->id);
	int64_t rss = 0, start = 0, ws = 0, ooms = 0;
	double cpu = 0;
	int cg, over;
	struct shm_obs o;

	if (slot < 0 || lr->pgid <= 0)
		return; /* the monitor registers slots */
	if (proc_group_usage(&s->pt, lr->pgid, &cpu, &rss, &start) == 0)
		return; /* gone; the runner and the monitor handle it */
	/* leader start time rides along: a reused pid shows up as a
	 * different start and is ignored (shm_slot_ingest returns -2) */
	cg = group_memory(s, lr, slot, &ws, &ooms);
	memset(&o, 0, sizeof(o));
	o.t_ms = proc_group_at(&s->pt, lr->pgid);
	o.has_cpu_counter = 1;
	o.cpu_counter_s = cpu;
	o.start_ms = start;
	o.same_source = 1;
	o.has_mem = 1;
	o.mem_mib = (double)(cg == 0 ? ws : rss) / 1048576.0;
	o.has_cfs = proc_cgroup_cpu_stat(lr->pgid, &s->pt, lr->pgid, &o.cfs_periods,
					 &o.cfs_throttled) == 1;
	over = lr->limit > 0 && !lr->no_limit && !lr->has_reason && o.mem_mib > lr->limit;
	if (lr->starting) {
		/* Start-up (interpreter, imports) is not the model's working
		 * profile: samples before READY would drag every floor (min)
		 * down and skew request recommendations. Only the limit is
		 * enforced meanwhile; over it while starting is unambiguous. */
		if (cg != 0 && over)
			oom_kill(s, lr->id, lr->pgid, o.mem_mib, lr->limit, slot);
		return;
	}
	if (shm_slot_ingest(s->seg, SHM_INSTANCE, slot, lr->id, &o) == -2)
		return; /* the pid now belongs to another process: never kill it */
	if (cg == 0)
		shm_slot_set_flags(s->seg, SHM_INSTANCE, slot, lr->id,
				   SHM_F_CGROUP | (ooms > 0 ? SHM_F_OOM : 0), 0);
	else if (over && last_two_over(s, slot, lr->id, lr->limit))
		oom_kill(s, lr->id, lr->pgid, o.mem_mib, lr->limit, slot);
}

static int scrape_instances(struct scraper *s)
{
	PGresult *r = db_inst_local_rows(s->c->db, s->c->replica_id ? s->c->replica_id : "");
	int n;

	if (!r)
		return -1;
	if (proc_scan(&s->pt) < 0) {
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		struct local_row lr;

		local_row(r, i, &lr);
		scrape_one(s, &lr);
	}
	PQclear(r);
	return n;
}

/* ---- instance_live ---- */

/* all: every active slot (the periodic pass); else only slots whose
 * registration has not been written yet, so a new instance is visible to
 * other replicas from its first sample. */
static void write_live(struct scraper *s, int all)
{
	int n = shm_nslots(s->seg, SHM_INSTANCE);
	struct shm_snap sn;

	if (n > s->nwritten) {
		/* the segment's high-water mark grew: keep what was written */
		uint64_t *g = realloc(s->written_gen, (size_t)n * sizeof(*g));

		if (!g)
			return;
		memset(g + s->nwritten, 0, (size_t)(n - s->nwritten) * sizeof(*g));
		s->written_gen = g;
		s->nwritten = n;
	}
	for (int i = 0; i < n; i++) {
		json_object *agg;

		if (shm_slot_snapshot(s->seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1)
			continue;
		if (!sn.d.cpu.count || (!all && s->written_gen[i] == sn.d.reg_gen))
			continue;
		s->written_gen[i] = sn.d.reg_gen;
		agg = view_aggregates(&sn.d);
		if (!agg)
			continue;
		/* a row deleted meanwhile fails the foreign key: harmless */
		db_inst_live_put(s->c->db, sn.d.instance_id,
				 json_object_to_json_string_ext(agg, JSON_C_TO_STRING_PLAIN));
		json_object_put(agg);
	}
}

/* ---- kubernetes source ---- */

/* Provided by the kubernetes backend's scraper half (hubd/kubescrape.c):
 * fetch every node's /metrics/resource (one curl multi handle) and feed
 * each answer to kubelet_ingest() (metrics/kubelet.h). Returns the number
 * of instance samples ingested, or -1. Weak: absent until that file links. */
extern int kubescrape_cycle(struct hubd_child *c, struct metrics_seg *seg) __attribute__((weak));

/* Only the leading replica scrapes kubelets: the hub lease (db_lead.h), as
 * the janitor last renewed it; a replica woken from a freeze sees 0 at once
 * (a session advisory lock stayed held by a frozen process). */
static int lead_kube(struct scraper *s)
{
	int ok = hubd_leader_token() != 0;

	if (ok != s->kube_leader)
		log_info("scraper kube_leader=%d msg=\"%s\"", ok,
			 ok ? "scraping the kubelets" : "another replica scrapes the kubelets");
	s->kube_leader = ok;
	return ok;
}

static int scrape_kube(struct scraper *s)
{
	if (!kubescrape_cycle) {
		if (!s->kube_warned)
			log_warn_x("scraper msg=\"hub.backend=kubernetes but the kubelet scraper is not "
				   "built; no pod metrics\"");
		s->kube_warned = 1;
		return 0;
	}
	if (!lead_kube(s))
		return 0;
	return kubescrape_cycle(s->c, s->seg);
}

/* ---- main loop ---- */

static int ensure_seg(struct scraper *s)
{
	return shm_child_seg(&s->seg, &s->own_seg, s->c->seg, s->seg_name, ATTACH_RETRY_MS);
}

int scraper_main(struct hubd_child *c)
{
	struct scraper s;
	long interval;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	s.c = c;
	s.node_slot = -1;
	if (gethostname(s.node, sizeof(s.node) - 1) < 0)
		snprintf(s.node, sizeof(s.node), "localhost");
	shm_name_from_config(s.seg_name, sizeof(s.seg_name), c->replica_id);
	log_info("scraper started node=%s segment=%s", s.node, s.seg_name);
	while (!hubd_should_stop()) {
		int64_t t0 = mh_mono_ms(), t0us, took;
		int n, err = 0;

		hubd_take_reload();
		interval = cfg_int("metrics.interval_ms", 3000);
		if (interval < MIN_INTERVAL_MS)
			interval = MIN_INTERVAL_MS;
		if (ensure_seg(&s) == 0) {
			t0us = mh_mono_us();
			mark_busy(&s);
			if (strcmp(cfg_str("hub.backend", "local"), "kubernetes") == 0) {
				n = scrape_kube(&s);
			} else {
				n = scrape_instances(&s);
				scrape_node(&s, n < 0 ? 0 : n);
			}
			if (n < 0)
				err = 1;
			if (mh_mono_ms() - s.last_live_ms >= LIVE_EVERY_MS) {
				write_live(&s, 1);
				s.last_live_ms = mh_mono_ms();
			} else {
				write_live(&s, 0);
			}
			shm_scrape_stat(s.seg, (uint64_t)(mh_mono_us() - t0us), err);
		}
		hubd_heartbeat(c);
		took = mh_mono_ms() - t0;
		if (hubd_wait(c, -1, (int)(took < interval ? interval - took : 1)) < 0)
			break;
	}
	log_info("scraper stopping");
	proc_table_free(&s.pt);
	free(s.written_gen);
	free(s.busy_prev);
	if (s.own_seg)
		shm_close(s.seg);
	return rc;
}
