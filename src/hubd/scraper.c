/*
 * scraper.c — the scraper child: samples node and instance CPU/memory into
 * the metrics segment, enforces memory limits where no cgroup does, and
 * publishes compact live aggregates to Postgres.
 *
 * Runs in: modelhubd child "scraper" (one per replica). Called by: the
 * supervisor through scraper_main().
 * Owns: its /proc scan table; the samples and aggregates of every slot
 * (the segment's single writer of sample data, shm.h).
 * Shared state: reads model_instance (+ model.disable_memory_limit);
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
 *   the SCRAPER_LOCK_KEY advisory lock, so kubelets are scraped once.
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
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "db/db.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/proc.h"
#include "metrics/shm.h"
#include "metrics/view.h"

#define LIVE_EVERY_MS 15000     /* instance_live upsert period (DESIGN §6) */
#define SCRAPER_LOCK_KEY "7236051898443571023" /* kubelets are scraped by one replica */
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
};

static const char SQL_INSTANCES[] =
	"SELECT mi.id, mi.pid, coalesce(mi.memory_limit_mib, 0), "
	"       coalesce(m.disable_memory_limit, false), mi.termination_reason IS NOT NULL, "
	"       mi.state IN ('REQUESTED', 'STARTING') "
	"FROM model_instance mi LEFT JOIN model m ON m.id = mi.model_id "
	"WHERE mi.backend = 'local' AND mi.state <> 'TERMINATED' AND mi.pid IS NOT NULL "
	"  AND (mi.replica_id = $1 OR mi.replica_id IS NULL)";

static const char SQL_OOM_MARK[] =
	"UPDATE model_instance SET termination_reason = 'OOMKILLED', termination_detail = $2, "
	"       updated_at = now() "
	"WHERE id = $1 AND state <> 'TERMINATED' AND termination_reason IS NULL";

static const char SQL_OOM_EVENT[] =
	"INSERT INTO instance_event (instance_id, kind, detail) VALUES ($1, 'OOM_KILLED', $2::jsonb)";

static const char SQL_LIVE[] =
	"INSERT INTO instance_live (instance_id, at, aggregates) VALUES ($1, now(), $2::jsonb) "
	"ON CONFLICT (instance_id) DO UPDATE SET at = now(), aggregates = EXCLUDED.aggregates";

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
	char ids[24], detail[160], ev[200];
	const char *p2[2] = {ids, detail}, *pe[2] = {ids, ev};

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(detail, sizeof(detail),
		 "memory working set %.0f MiB over the limit of %d MiB (killed by the scraper)",
		 mem_mib, limit_mib);
	snprintf(ev, sizeof(ev), "{\"memory_mib\":%.1f,\"limit_mib\":%d,\"by\":\"scraper\"}",
		 mem_mib, limit_mib);
	/* reason first, so whoever reaps the process records OOMKILLED */
	db_cmd(s->c->db, SQL_OOM_MARK, 2, p2);
	db_cmd(s->c->db, SQL_OOM_EVENT, 2, pe);
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

/* ---- local instances ---- */

static int scrape_instances(struct scraper *s)
{
	const char *p[1] = {s->c->replica_id ? s->c->replica_id : ""};
	PGresult *r;
	int n;

	r = db_prep(s->c->db, "scraper_instances", SQL_INSTANCES, 1, p);
	if (!r)
		return -1;
	if (proc_scan(&s->pt) < 0) {
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		pid_t pgid = (pid_t)atoi(PQgetvalue(r, i, 1));
		int limit = atoi(PQgetvalue(r, i, 2));
		int no_limit = PQgetvalue(r, i, 3)[0] == 't';
		int has_reason = PQgetvalue(r, i, 4)[0] == 't';
		int starting = PQgetvalue(r, i, 5)[0] == 't';
		int slot = shm_find_instance(s->seg, id);
		int64_t rss = 0, start = 0, ws = 0, ooms = 0;
		double cpu = 0;
		int members, cg;
		char cgdir[1100];
		struct shm_obs o;

		if (slot < 0 || pgid <= 0)
			continue; /* the monitor registers slots */
		members = proc_group_usage(&s->pt, pgid, &cpu, &rss, &start);
		if (members == 0)
			continue; /* gone; the runner and the monitor handle it */
		/* leader start time rides along: a reused pid shows up as a
		 * different start and is ignored (shm_slot_ingest returns -2) */
		cg = proc_cgroup_memory(pgid, &ws, &ooms, cgdir, sizeof(cgdir));
		if (cg == 0 && proc_cgroup_exclusive(cgdir, &s->pt, pgid) == 0) {
			/* another process shares the cgroup (e.g. a name clash):
			 * its working set is not this instance's alone */
			if (!(sn_flags(s, slot, id) & SHM_F_SHARED_CG))
				log_warn_x("scraper instance=%lld cgroup=%s msg=\"cgroup shared with "
					   "other processes, using the group's RSS\"",
					   (long long)id, cgdir);
			shm_slot_set_flags(s->seg, SHM_INSTANCE, slot, id, SHM_F_SHARED_CG, SHM_F_CGROUP);
			cg = 1;
		}
		memset(&o, 0, sizeof(o));
		o.t_ms = s->pt.at_ms;
		o.has_cpu_counter = 1;
		o.cpu_counter_s = cpu;
		o.start_ms = start;
		o.same_source = 1;
		o.has_mem = 1;
		o.mem_mib = (double)(cg == 0 ? ws : rss) / 1048576.0;
		if (starting) {
			/* Start-up (interpreter, imports) is not the model's working
			 * profile: samples before READY would drag every floor (min)
			 * down and skew request recommendations. Only the limit is
			 * enforced meanwhile; over it while starting is unambiguous. */
			if (cg != 0 && limit > 0 && !no_limit && !has_reason && o.mem_mib > limit)
				oom_kill(s, id, pgid, o.mem_mib, limit, slot);
			continue;
		}
		if (shm_slot_ingest(s->seg, SHM_INSTANCE, slot, id, &o) == -2)
			continue; /* the pid now belongs to another process: never kill it */
		if (cg == 0)
			shm_slot_set_flags(s->seg, SHM_INSTANCE, slot, id,
					   SHM_F_CGROUP | (ooms > 0 ? SHM_F_OOM : 0), 0);
		else if (limit > 0 && !no_limit && !has_reason && o.mem_mib > limit &&
			 last_two_over(s, slot, id, limit))
			oom_kill(s, id, pgid, o.mem_mib, limit, slot);
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

	if (!s->written_gen || s->nwritten != n) {
		free(s->written_gen);
		s->written_gen = calloc((size_t)n, sizeof(*s->written_gen));
		s->nwritten = s->written_gen ? n : 0;
		if (!s->written_gen)
			return;
	}
	for (int i = 0; i < n; i++) {
		json_object *agg;
		char ids[24];
		const char *p[2];

		if (shm_slot_snapshot(s->seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1)
			continue;
		if (!sn.d.cpu.count || (!all && s->written_gen[i] == sn.d.reg_gen))
			continue;
		s->written_gen[i] = sn.d.reg_gen;
		agg = view_aggregates(&sn.d);
		if (!agg)
			continue;
		snprintf(ids, sizeof(ids), "%lld", (long long)sn.d.instance_id);
		p[0] = ids;
		p[1] = json_object_to_json_string_ext(agg, JSON_C_TO_STRING_PLAIN);
		/* a row deleted meanwhile fails the foreign key: harmless */
		PGresult *r = db_prep(s->c->db, "scraper_live", SQL_LIVE, 2, p);

		PQclear(r);
		json_object_put(agg);
	}
}

/* ---- kubernetes source ---- */

/* Provided by the kubernetes backend's scraper half (hubd/kubescrape.c):
 * fetch every node's /metrics/resource (one curl multi handle) and feed
 * each answer to kubelet_ingest() (metrics/kubelet.h). Returns the number
 * of instance samples ingested, or -1. Weak: absent until that file links. */
extern int kubescrape_cycle(struct hubd_child *c, struct metrics_seg *seg) __attribute__((weak));

/* Session advisory lock: only the replica holding it scrapes kubelets. A
 * reconnect drops it, so each cycle checks it is still held (pg_locks) and
 * tries to take it when not. */
static int lead_kube(struct scraper *s)
{
	const char *p[1] = {SCRAPER_LOCK_KEY};
	PGresult *r = db_exec(s->c->db,
			      "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE"
			      " locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
			      " AND ((classid::bigint << 32) | objid::bigint) = $1::bigint)"
			      " THEN true ELSE pg_try_advisory_lock($1::bigint) END",
			      1, p);
	int ok = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';

	PQclear(r);
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
	if (s->c->seg && !s->own_seg) {
		s->seg = s->c->seg;
		return 0;
	}
	s->own_seg = 1;
	return shm_keep(&s->seg, s->seg_name, 0, ATTACH_RETRY_MS) ? 0 : -1;
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
	if (s.own_seg)
		shm_close(s.seg);
	return rc;
}
