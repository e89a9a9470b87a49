/*
 * monitor.c — the monitor child: model instance slots, liveness, and the
 * persisted record of every instance that ended.
 *
 * Runs in: modelhubd child "monitor" (one per replica). Called by: the
 * supervisor through monitor_main().
 * Owns: registration and release of instance slots in the metrics segment
 * (shm.h: the scraper only ingests into them); a small table of what it has
 * seen per instance (last state, when its process group was found gone,
 * log size copied).
 * Shared state: reads model_instance, work_request.input_count,
 * instance_live; writes instance_metrics (once per instance, ON CONFLICT DO
 * NOTHING), model_instance.snapshot (merged: resources + final aggregates +
 * final state), instance_log (copy of the live log file), deletes
 * instance_live of ended instances, and marks orphans TERMINATED/LOST with
 * one instance_event. State changes of live instances (READY, BUSY, IDLE,
 * TERMINATED ...) and their events belong to the runner; the monitor never
 * writes those.
 * On crash: nothing is lost. Every cycle works from the database: active
 * rows get slots, TERMINATED rows without instance_metrics get persisted
 * (from the slot, else from instance_live, else an empty record), slots of
 * rows that are gone or done are released. Rows of another replica that
 * stayed unpersisted for 60 s (that replica is gone) are persisted too;
 * ON CONFLICT DO NOTHING keeps two monitors from writing twice.
 *
 * DESIGN
 * - Liveness (local backend): kill(-pgid, 0). A group gone while its row is
 *   still active is normally seen by the runner (its parent) within a
 *   second; only if the row is still active LOST_GRACE_MS later (the runner
 *   died, or the hub restarted) does the monitor end it as LOST. A row that
 *   never got a pid is LOST after hub.instance_start_timeout + grace.
 * - The slot is released only after the persisting transaction committed,
 *   so a crash between the two leaves a slot that the next cycle finds
 *   persisted and releases (no slot leak, no lost record).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "db/db_instance.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/shm.h"
#include "metrics/view.h"

#define MONITOR_TICK_MS 1000    /* one reconcile pass */
#define LOST_GRACE_MS 30000     /* group gone, row still active: then LOST (the runner sweep usually wins) */
#define LOG_EVERY_MS 5000       /* copy live log files into instance_log */
#define LOG_MAX_BYTES (16 << 20)
#define PERSIST_BATCH 100
#define ATTACH_RETRY_MS 2000

struct mon_inst {
	int64_t id;
	char state[16];         /* last active state seen */
	int64_t dead_since;     /* mono ms the group was first found gone, 0 alive */
	int64_t log_size;       /* bytes of the log file last copied */
	int seen;               /* in this cycle's active rows */
};

struct monitor {
	struct hubd_child *c;
	struct metrics_seg *seg;
	int own_seg;
	char seg_name[256];
	char node[SHM_NAME_LEN];
	struct mon_inst *tab;
	size_t n, cap;
	int64_t last_log_ms;
};

/* ---- the seen table ---- */

static struct mon_inst *tab_get(struct monitor *m, int64_t id, int create)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->tab[i].id == id)
			return &m->tab[i];
	if (!create)
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct mon_inst *t = realloc(m->tab, cap * sizeof(*t));

		if (!t)
			return NULL;
		m->tab = t;
		m->cap = cap;
	}
	memset(&m->tab[m->n], 0, sizeof(m->tab[0]));
	m->tab[m->n].id = id;
	return &m->tab[m->n++];
}

static void tab_drop(struct monitor *m, int64_t id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->tab[i].id == id) {
			m->tab[i] = m->tab[--m->n];
			return;
		}
}

/* ---- logs ---- */

/* Copy <var_dir>/instances/<id>.log into instance_log when it grew (or
 * always when force). Logs contain model output, never our secrets. */
static void copy_log(struct monitor *m, int64_t id, struct mon_inst *mi, int force)
{
	char path[1024];
	struct stat st;
	struct buf b = BUF_INIT;
	off_t from = 0;
	int fd;
	ssize_t r;

	snprintf(path, sizeof(path), "%s/instances/%lld.log", cfg_str("hub.var_dir", "var"),
		 (long long)id);
	if (stat(path, &st) < 0)
		return;
	if (!force && mi && mi->log_size == (int64_t)st.st_size)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (st.st_size > LOG_MAX_BYTES)
		from = st.st_size - LOG_MAX_BYTES;
	if (lseek(fd, from, SEEK_SET) < 0 || buf_reserve(&b, (size_t)(st.st_size - from) + 1) < 0) {
		close(fd);
		buf_free(&b);
		return;
	}
	while ((r = read(fd, b.data + b.len, b.cap - b.len - 1)) > 0) {
		b.len += (size_t)r;
		if (b.len + 1 >= b.cap && buf_reserve(&b, 65536) < 0)
			break;
	}
	close(fd);
	/* text column: no NUL bytes */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\0')
			b.data[i] = '?';
	if (db_inst_log_put(m->c->db, id, buf_cstr(&b)) == 0 && mi)
		mi->log_size = (int64_t)st.st_size;
	buf_free(&b);
}

/* ---- active instances: slots and liveness ---- */

static int group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

static void mark_lost(struct monitor *m, int64_t id, const char *why)
{
	if (db_inst_monitor_lost(m->c->db, id, why) == 1)
		log_warn_x("monitor instance=%lld reason=LOST msg=\"%s\"", (long long)id, why);
}

static void sync_slot(struct monitor *m, PGresult *r, int row)
{
	struct shm_slot_data d;
	struct shm_snap sn;
	int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	const char *node = PQgetvalue(r, row, 4);
	int idx;

	memset(&d, 0, sizeof(d));
	d.instance_id = id;
	snprintf(d.model_id, sizeof(d.model_id), "%s", PQgetvalue(r, row, 1));
	snprintf(d.name, sizeof(d.name), "%s", PQgetvalue(r, row, 3));
	snprintf(d.node, sizeof(d.node), "%s", node[0] ? node : m->node);
	d.pid = atoi(PQgetvalue(r, row, 5));
	d.cpu_request_m = atoi(PQgetvalue(r, row, 7));
	d.cpu_limit_m = atoi(PQgetvalue(r, row, 8));
	d.mem_request_mib = atoi(PQgetvalue(r, row, 9));
	d.mem_limit_mib = atoi(PQgetvalue(r, row, 10));
	idx = shm_find_instance(m->seg, id);
	if (idx < 0) {
		idx = shm_instance_register(m->seg, &d);
		if (idx >= 0)
			log_info("monitor instance=%lld model=%s slot=%d msg=\"slot registered\"",
				 (long long)id, d.model_id, idx);
		return;
	}
	if (shm_slot_snapshot(m->seg, SHM_INSTANCE, idx, &sn, NULL, 0, 0) != 1)
		return;
	if (sn.d.pid != d.pid || sn.d.cpu_request_m != d.cpu_request_m ||
	    sn.d.cpu_limit_m != d.cpu_limit_m || sn.d.mem_request_mib != d.mem_request_mib ||
	    sn.d.mem_limit_mib != d.mem_limit_mib || strcmp(sn.d.name, d.name) != 0 ||
	    strcmp(sn.d.node, d.node) != 0)
		shm_slot_set_resources(m->seg, SHM_INSTANCE, idx, id, &d);
}

static void check_alive(struct monitor *m, PGresult *r, int row, struct mon_inst *mi)
{
	int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	const char *backend = PQgetvalue(r, row, 2);
	pid_t pid = (pid_t)atoi(PQgetvalue(r, row, 5));
	int64_t age_ms = strtoll(PQgetvalue(r, row, 11), NULL, 10);
	long start_timeout_ms = cfg_int("hub.instance_start_timeout", 300) * 1000;
	int64_t now = mh_mono_ms();

	if (strcmp(backend, "local") != 0)
		return; /* kubernetes: pod state comes from the watch */
	if (pid > 0) {
		if (group_alive(pid)) {
			mi->dead_since = 0;
			return;
		}
		if (!mi->dead_since) {
			mi->dead_since = now;
			return;
		}
		if (now - mi->dead_since >= LOST_GRACE_MS)
			mark_lost(m, id, "process group gone and no runner recorded its end");
		return;
	}
	if (age_ms > start_timeout_ms + LOST_GRACE_MS)
		mark_lost(m, id, "never got a process within the start timeout");
}

static int pass_active(struct monitor *m)
{
	int copy_logs = mh_mono_ms() - m->last_log_ms >= LOG_EVERY_MS;
	PGresult *r = db_inst_active_rows(m->c->db, m->c->replica_id ? m->c->replica_id : "");
	int n;

	if (!r)
		return -1;
	for (size_t i = 0; i < m->n; i++)
		m->tab[i].seen = 0;
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		struct mon_inst *mi = tab_get(m, id, 1);

		if (!mi)
			continue;
		mi->seen = 1;
		snprintf(mi->state, sizeof(mi->state), "%s", PQgetvalue(r, i, 6));
		sync_slot(m, r, i);
		check_alive(m, r, i, mi);
		if (copy_logs && strcmp(PQgetvalue(r, i, 2), "local") == 0)
			copy_log(m, id, mi, 0);
	}
	if (copy_logs)
		m->last_log_ms = mh_mono_ms();
	PQclear(r);
	return n;
}

/* ---- ended instances: persist, then release ---- */

static void agg_of(struct db_agg *out, const struct shm_agg *a)
{
	out->count = a->count;
	out->w_count = a->w_count;
	out->min = a->min;
	out->max = a->max;
	out->avg = shm_agg_avg(a);
	out->w_min = a->w_min;
	out->w_max = a->w_max;
	out->w_avg = a->w_avg;
}

/* The aggregates of an ended instance: from its slot, else from the
 * instance_live copy (column 8), else none; the busy phase and throttling
 * into *vb (NaN where not measured). Returns the source's name, or NULL
 * when the slot's writer is busy (try again next cycle). */
static const char *final_data(struct monitor *m, PGresult *r, int row, int64_t id, int idx,
			      struct shm_slot_data *d, struct view_busy *vb)
{
	memset(d, 0, sizeof(*d));
	view_busy_parse(NULL, vb);
	if (idx >= 0) {
		struct shm_snap sn;
		int got = shm_slot_snapshot(m->seg, SHM_INSTANCE, idx, &sn, NULL, 0, 0);

		if (got < 0)
			return NULL;
		if (got == 1 && sn.d.instance_id == id) {
			*d = sn.d;
			view_busy_of(d, vb);
			return "segment";
		}
	}
	if (!PQgetisnull(r, row, 8)) {
		json_object *live = json_tokener_parse(PQgetvalue(r, row, 8));
		int ok = view_aggregates_parse(live, d) == 0;

		if (ok)
			view_busy_parse(live, vb);
		json_object_put(live);
		if (ok)
			return "instance_live";
	}
	return "none";
}

/* The snapshot merged into model_instance.snapshot at the end. */
static json_object *final_snapshot(const struct db_inst_final *f, const struct shm_slot_data *d,
				   const char *source, const struct mon_inst *mi)
{
	json_object *snap = json_object_new_object();

	json_object_object_add(snap, "resources",
			       view_resources(f->cpu_request_m, f->cpu_limit_m,
					      f->memory_request_mib, f->memory_limit_mib));
	json_object_object_add(snap, "metrics", view_aggregates(d));
	json_object_object_add(snap, "metrics_source", json_object_new_string(source));
	json_object_object_add(snap, "final_state",
			       mi && mi->state[0] ? json_object_new_string(mi->state) : NULL);
	json_object_object_add(snap, "termination_reason",
			       f->reason ? json_object_new_string(f->reason) : NULL);
	json_object_object_add(snap, "oom_flagged",
			       json_object_new_boolean((d->flags & SHM_F_OOM) != 0));
	return snap;
}

/* Largest request (column 10) and model call (column 11: the largest
 * request's uncached inputs, sent in chunks of hub.chunk_size, the
 * runner's setting, or of the instance's own chunk_size, column 12, when
 * it was sized from the request; a bisected chunk only makes smaller
 * calls). Column 13: it was sized. */
static void input_sizes(PGresult *r, int row, struct db_inst_final *f)
{
	int chunk = (int)cfg_int("hub.chunk_size", 100), own = atoi(PQgetvalue(r, row, 12)), sent;

	if (own > 0 && own < chunk)
		chunk = own;
	f->sized = PQgetvalue(r, row, 13)[0] == 't';

	f->request_inputs = PQgetisnull(r, row, 10) ? 0 : atoi(PQgetvalue(r, row, 10));
	sent = PQgetisnull(r, row, 11) ? 0 : atoi(PQgetvalue(r, row, 11));
	f->call_inputs = sent > chunk && chunk > 0 ? chunk : sent;
}

/* The slot's recent samples ({t_ms, cpu_m, memory_mib}, oldest first: the
 * window the segment keeps) for the final snapshot, so a finished
 * instance's page still has its chart (GET /api/instances/{id}/samples
 * reads them back); NULL without a slot or samples. */
static json_object *final_samples(struct monitor *m, int idx, int64_t id)
{
	int max = shm_max_samples(m->seg), n = 0;
	struct shm_sample *smp;
	struct shm_snap sn;
	json_object *a = NULL;

	if (idx < 0 || max <= 0 || !(smp = calloc((size_t)max, sizeof(*smp))))
		return NULL;
	if (shm_slot_snapshot(m->seg, SHM_INSTANCE, idx, &sn, smp, max, 0) == 1 &&
	    sn.d.instance_id == id)
		n = sn.nsamples;
	if (n > 0)
		a = view_samples(smp, n);
	free(smp);
	return a;
}

static int persist_one(struct monitor *m, PGresult *r, int row)
{
	int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	struct mon_inst *mi = tab_get(m, id, 0);
	int idx = shm_find_instance(m->seg, id);
	struct db_inst_final f = {
		.id = id, .model_id = PQgetvalue(r, row, 1),
		.reason = PQgetisnull(r, row, 2) ? NULL : PQgetvalue(r, row, 2),
		.cpu_request_m = atoi(PQgetvalue(r, row, 3)),
		.cpu_limit_m = atoi(PQgetvalue(r, row, 4)),
		.memory_request_mib = atoi(PQgetvalue(r, row, 5)),
		.memory_limit_mib = atoi(PQgetvalue(r, row, 6)),
		.input_count = PQgetvalue(r, row, 7),
	};
	struct shm_slot_data d;
	struct view_busy vb;
	const char *source = final_data(m, r, row, id, idx, &d, &vb);
	json_object *snap;
	int rc;

	if (!source)
		return -1; /* writer busy: next cycle */
	f.sample_count = d.cpu.count;
	agg_of(&f.cpu, &d.cpu);
	agg_of(&f.mem, &d.mem);
	f.busy_samples = vb.count;
	f.cpu_busy_m = vb.cpu_m;
	f.mem_busy_mib = vb.mem_mib;
	f.throttled_pct = vb.throttled_pct;
	input_sizes(r, row, &f);
	snap = final_snapshot(&f, &d, source, mi);
	json_object_object_add(snap, "samples", final_samples(m, idx, id));
	f.snapshot_json = json_object_to_json_string_ext(snap, JSON_C_TO_STRING_PLAIN);
	rc = db_inst_persist(m->c->db, &f);
	json_object_put(snap);
	if (rc < 0)
		return -1;
	if (strcmp(PQgetvalue(r, row, 9), "local") == 0)
		copy_log(m, id, NULL, 1);
	if (idx >= 0)
		shm_slot_release(m->seg, SHM_INSTANCE, idx, id);
	tab_drop(m, id);
	log_info("monitor instance=%lld samples=%llu source=%s reason=%s msg=\"metrics persisted, "
		 "slot released\"",
		 (long long)id, (unsigned long long)d.cpu.count, source, f.reason ? f.reason : "-");
	return 0;
}

static void pass_ended(struct monitor *m)
{
	PGresult *r = db_inst_to_persist(m->c->db, m->c->replica_id ? m->c->replica_id : "");

	if (!r)
		return;
	for (int i = 0; i < PQntuples(r) && i < PERSIST_BATCH; i++)
		persist_one(m, r, i);
	PQclear(r);
}

/* Slots whose instance is neither active nor waiting to be persisted:
 * persisted before a crash, or the row was deleted. */
static void pass_orphan_slots(struct monitor *m)
{
	int n = shm_nslots(m->seg, SHM_INSTANCE);
	struct shm_snap sn;

	for (int i = 0; i < n; i++) {
		struct mon_inst *mi;

		if (shm_slot_snapshot(m->seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1)
			continue;
		mi = tab_get(m, sn.d.instance_id, 0);
		if (mi && mi->seen)
			continue;
		if (db_inst_slot_done(m->c->db, sn.d.instance_id) == 1) {
			shm_slot_release(m->seg, SHM_INSTANCE, i, sn.d.instance_id);
			tab_drop(m, sn.d.instance_id);
			log_info("monitor instance=%lld slot=%d msg=\"stale slot released\"",
				 (long long)sn.d.instance_id, i);
		}
	}
	/* forget instances no longer active and without a slot */
	for (size_t i = 0; i < m->n;) {
		if (!m->tab[i].seen && shm_find_instance(m->seg, m->tab[i].id) < 0)
			m->tab[i] = m->tab[--m->n];
		else
			i++;
	}
}

static int ensure_seg(struct monitor *m)
{
	return shm_child_seg(&m->seg, &m->own_seg, m->c->seg, m->seg_name, ATTACH_RETRY_MS);
}

int monitor_main(struct hubd_child *c)
{
	struct monitor m;

	memset(&m, 0, sizeof(m));
	m.c = c;
	if (gethostname(m.node, sizeof(m.node) - 1) < 0)
		snprintf(m.node, sizeof(m.node), "localhost");
	shm_name_from_config(m.seg_name, sizeof(m.seg_name), c->replica_id);
	log_info("monitor started segment=%s", m.seg_name);
	while (!hubd_should_stop()) {
		hubd_take_reload();
		if (ensure_seg(&m) == 0 && pass_active(&m) >= 0) {
			pass_ended(&m);
			pass_orphan_slots(&m);
		}
		if (hubd_wait(c, -1, MONITOR_TICK_MS) < 0)
			break;
	}
	log_info("monitor stopping");
	free(m.tab);
	if (m.own_seg)
		shm_close(m.seg);
	return 0;
}
