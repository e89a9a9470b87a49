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
 * NOTHING), the pods' kubernetes events (instance_event source 'k8s', every
 * EVENTS_EVERY_MS, idempotent), model_instance.snapshot (merged: resources + final aggregates +
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

#include "cluster/cluster.h"
#include "db/db.h"
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
#define EVENTS_EVERY_MS 5000    /* kubernetes: copy pod events into instance_event */
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
	int64_t last_events_ms;
	struct cluster *cl;     /* kubernetes backend handle, for pod events */
	int cl_failed;
};

static const char SQL_ACTIVE[] =
	"SELECT id, model_id, backend, coalesce(name, ''), coalesce(node, ''), coalesce(pid, 0), "
	"       state, coalesce(cpu_request_m, 0), coalesce(cpu_limit_m, 0), "
	"       coalesce(memory_request_mib, 0), coalesce(memory_limit_mib, 0), "
	"       (extract(epoch FROM now() - started_at) * 1000)::bigint "
	"FROM model_instance "
	"WHERE state <> 'TERMINATED' AND (replica_id = $1 OR replica_id IS NULL) ORDER BY id";

static const char SQL_TO_PERSIST[] =
	"SELECT mi.id, mi.model_id, mi.termination_reason, coalesce(mi.cpu_request_m, 0), "
	"       coalesce(mi.cpu_limit_m, 0), coalesce(mi.memory_request_mib, 0), "
	"       coalesce(mi.memory_limit_mib, 0), "
	"       (SELECT coalesce(sum(w.input_count), 0) FROM work_request w "
	"         WHERE w.id = ANY (mi.request_ids)), "
	"       il.aggregates, mi.backend "
	"FROM model_instance mi "
	"LEFT JOIN instance_metrics im ON im.instance_id = mi.id "
	"LEFT JOIN instance_live il ON il.instance_id = mi.id "
	"WHERE mi.state = 'TERMINATED' AND im.instance_id IS NULL "
	"  AND (mi.replica_id = $1 OR mi.replica_id IS NULL "
	"       OR coalesce(mi.terminated_at, mi.updated_at) < now() - interval '60 seconds') "
	"  AND coalesce(mi.terminated_at, mi.updated_at) > now() - interval '1 day' "
	"ORDER BY mi.id LIMIT 100";

static const char SQL_INSERT_METRICS[] =
	"INSERT INTO instance_metrics (instance_id, model_id, sample_count, "
	"  cpu_min_m, cpu_max_m, cpu_avg_m, cpu_60_min_m, cpu_60_max_m, cpu_60_avg_m, "
	"  mem_min_mib, mem_max_mib, mem_avg_mib, mem_60_min_mib, mem_60_max_mib, mem_60_avg_mib, "
	"  cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, input_count, "
	"  termination_reason) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
	"        $16, $17, $18, $19, $20, $21) ON CONFLICT (instance_id) DO NOTHING";

static const char SQL_SNAPSHOT[] =
	"UPDATE model_instance SET snapshot = coalesce(snapshot, '{}'::jsonb) || $2::jsonb "
	"WHERE id = $1";

static const char SQL_DROP_LIVE[] = "DELETE FROM instance_live WHERE instance_id = $1";

static const char SQL_LOST[] =
	"UPDATE model_instance SET state = 'TERMINATED', "
	"       termination_reason = coalesce(termination_reason, 'LOST'), "
	"       termination_detail = coalesce(termination_detail, $2), "
	"       terminated_at = now(), updated_at = now() "
	"WHERE id = $1 AND state <> 'TERMINATED' RETURNING termination_reason";

static const char SQL_LOST_EVENT[] =
	"INSERT INTO instance_event (instance_id, kind, detail) VALUES ($1, 'TERMINATED', $2::jsonb)";

static const char SQL_SLOT_DONE[] =
	"SELECT NOT EXISTS (SELECT 1 FROM model_instance WHERE id = $1 AND state <> 'TERMINATED') "
	"   AND (EXISTS (SELECT 1 FROM instance_metrics WHERE instance_id = $1) "
	"        OR NOT EXISTS (SELECT 1 FROM model_instance WHERE id = $1))";

static const char SQL_LOG[] =
	"INSERT INTO instance_log (instance_id, text, updated_at) VALUES ($1, $2, now()) "
	"ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now()";

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
	char path[1024], ids[24];
	struct stat st;
	struct buf b = BUF_INIT;
	const char *p[2];
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
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	p[0] = ids;
	p[1] = buf_cstr(&b);
	if (db_cmd(m->c->db, SQL_LOG, 2, p) == 0 && mi)
		mi->log_size = (int64_t)st.st_size;
	buf_free(&b);
}

/* ---- kubernetes events ---- */

static const char SQL_K8S_EVENT[] =
	"INSERT INTO instance_event (instance_id, at, kind, source, detail) "
	"SELECT $1::bigint, coalesce(to_timestamp($2::bigint / 1000.0), now()), $3, 'k8s', "
	"       jsonb_build_object('reason', $3::text, 'message', $4::text) "
	"WHERE NOT EXISTS (SELECT 1 FROM instance_event WHERE instance_id = $1::bigint "
	"  AND source = 'k8s' AND kind = $3 AND detail->>'message' = $4 "
	"  AND ($2::bigint IS NULL OR at = to_timestamp($2::bigint / 1000.0)))";

/* Copy the pod's events (reason, message, time) as source 'k8s' events;
 * the NOT EXISTS makes repeated copies idempotent. */
static void copy_k8s_events(struct monitor *m, int64_t id, const char *pod)
{
	struct cluster_event *ev = NULL;
	int n = 0;

	if (!m->cl && !m->cl_failed) {
		m->cl = cluster_new("kubernetes");
		if (!m->cl) {
			m->cl_failed = 1;
			log_warn_x("monitor msg=\"no kubernetes backend: pod events not recorded\"");
		}
	}
	if (!m->cl || cluster_events(m->cl, pod, &ev, &n) < 0)
		return;
	for (int i = 0; i < n; i++) {
		char ids[24], at[24];
		const char *p[4] = {ids, ev[i].at_ms > 0 ? at : NULL, ev[i].kind, ev[i].message};

		if (!ev[i].kind[0])
			continue;
		snprintf(ids, sizeof(ids), "%lld", (long long)id);
		snprintf(at, sizeof(at), "%lld", (long long)ev[i].at_ms);
		db_cmd(m->c->db, SQL_K8S_EVENT, 4, p);
	}
	free(ev);
}

/* ---- active instances: slots and liveness ---- */

static int group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

static void mark_lost(struct monitor *m, int64_t id, const char *why)
{
	char ids[24], detail[256];
	const char *p[2] = {ids, why};
	PGresult *r;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	r = db_prep(m->c->db, "monitor_lost", SQL_LOST, 2, p);
	if (r && PQntuples(r) == 1) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "reason", json_object_new_string(PQgetvalue(r, 0, 0)));
		json_object_object_add(o, "by", json_object_new_string("monitor"));
		json_object_object_add(o, "detail", json_object_new_string(why));
		snprintf(detail, sizeof(detail), "%s",
			 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		p[1] = detail;
		db_cmd(m->c->db, SQL_LOST_EVENT, 2, p);
		log_warn_x("monitor instance=%lld reason=LOST msg=\"%s\"", (long long)id, why);
	}
	PQclear(r);
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
	const char *p[1] = {m->c->replica_id ? m->c->replica_id : ""};
	int copy_logs = mh_mono_ms() - m->last_log_ms >= LOG_EVERY_MS;
	int copy_events = mh_mono_ms() - m->last_events_ms >= EVENTS_EVERY_MS;
	PGresult *r = db_prep(m->c->db, "monitor_active", SQL_ACTIVE, 1, p);
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
		if (copy_events && strcmp(PQgetvalue(r, i, 2), "kubernetes") == 0 &&
		    PQgetvalue(r, i, 3)[0])
			copy_k8s_events(m, id, PQgetvalue(r, i, 3));
	}
	if (copy_logs)
		m->last_log_ms = mh_mono_ms();
	if (copy_events)
		m->last_events_ms = mh_mono_ms();
	PQclear(r);
	return n;
}

/* ---- ended instances: persist, then release ---- */

static const char *fmt_num(char *b, size_t n, double v, int present)
{
	if (!present)
		return NULL;
	snprintf(b, n, "%.3f", v);
	return b;
}

/* The six parameters of one aggregate (min, max, avg all-time, then the same
 * for the window) into p[0..5], text in nb[0..5]; NULL where no samples. */
static void fmt_agg(const char **p, char (*nb)[32], const struct shm_agg *a)
{
	p[0] = fmt_num(nb[0], 32, a->min, a->count > 0);
	p[1] = fmt_num(nb[1], 32, a->max, a->count > 0);
	p[2] = fmt_num(nb[2], 32, shm_agg_avg(a), a->count > 0);
	p[3] = fmt_num(nb[3], 32, a->w_min, a->w_count > 0);
	p[4] = fmt_num(nb[4], 32, a->w_max, a->w_count > 0);
	p[5] = fmt_num(nb[5], 32, a->w_avg, a->w_count > 0);
}

static const char *fmt_int(char *b, size_t n, int v)
{
	if (v <= 0)
		return NULL;
	snprintf(b, n, "%d", v);
	return b;
}

static int persist_one(struct monitor *m, PGresult *r, int row)
{
	int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	const char *reason = PQgetisnull(r, row, 2) ? NULL : PQgetvalue(r, row, 2);
	int creq = atoi(PQgetvalue(r, row, 3)), clim = atoi(PQgetvalue(r, row, 4));
	int mreq = atoi(PQgetvalue(r, row, 5)), mlim = atoi(PQgetvalue(r, row, 6));
	struct mon_inst *mi = tab_get(m, id, 0);
	struct shm_slot_data d;
	struct shm_snap sn;
	char nb[16][32], ids[24], cnt[24];
	const char *p[21];
	const char *source = "none";
	json_object *snap = NULL, *agg = NULL;
	int idx = shm_find_instance(m->seg, id), rc = -1;

	memset(&d, 0, sizeof(d));
	if (idx >= 0) {
		int got = shm_slot_snapshot(m->seg, SHM_INSTANCE, idx, &sn, NULL, 0, 0);

		if (got < 0)
			return -1; /* writer busy: next cycle */
		if (got == 1 && sn.d.instance_id == id) {
			d = sn.d;
			source = "segment";
		}
	}
	if (!strcmp(source, "none") && !PQgetisnull(r, row, 8)) {
		json_object *live = json_tokener_parse(PQgetvalue(r, row, 8));

		if (view_aggregates_parse(live, &d) == 0)
			source = "instance_live";
		json_object_put(live);
	}
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)d.cpu.count);
	p[0] = ids;
	p[1] = PQgetvalue(r, row, 1);
	p[2] = cnt;
	fmt_agg(&p[3], &nb[0], &d.cpu);
	fmt_agg(&p[9], &nb[6], &d.mem);
	p[15] = fmt_int(nb[12], 32, creq);
	p[16] = fmt_int(nb[13], 32, clim);
	p[17] = fmt_int(nb[14], 32, mreq);
	p[18] = fmt_int(nb[15], 32, mlim);
	p[19] = PQgetvalue(r, row, 7);
	p[20] = reason;

	snap = json_object_new_object();
	agg = view_aggregates(&d);
	json_object_object_add(snap, "resources", view_resources(creq, clim, mreq, mlim));
	json_object_object_add(snap, "metrics", agg);
	json_object_object_add(snap, "metrics_source", json_object_new_string(source));
	json_object_object_add(snap, "final_state",
			       mi && mi->state[0] ? json_object_new_string(mi->state) : NULL);
	json_object_object_add(snap, "termination_reason",
			       reason ? json_object_new_string(reason) : NULL);
	json_object_object_add(snap, "oom_flagged",
			       json_object_new_boolean((d.flags & SHM_F_OOM) != 0));

	if (db_begin(m->c->db) < 0)
		goto done;
	if (db_cmd(m->c->db, SQL_INSERT_METRICS, 21, p) < 0)
		goto rollback;
	{
		const char *ps[2] = {ids, json_object_to_json_string_ext(snap, JSON_C_TO_STRING_PLAIN)};

		if (db_cmd(m->c->db, SQL_SNAPSHOT, 2, ps) < 0)
			goto rollback;
	}
	if (db_cmd(m->c->db, SQL_DROP_LIVE, 1, p) < 0)
		goto rollback;
	if (db_commit(m->c->db) < 0)
		goto rollback;
	if (strcmp(PQgetvalue(r, row, 9), "local") == 0)
		copy_log(m, id, NULL, 1);
	if (idx >= 0)
		shm_slot_release(m->seg, SHM_INSTANCE, idx, id);
	tab_drop(m, id);
	log_info("monitor instance=%lld samples=%llu source=%s reason=%s msg=\"metrics persisted, "
		 "slot released\"",
		 (long long)id, (unsigned long long)d.cpu.count, source, reason ? reason : "-");
	rc = 0;
	goto done;
rollback:
	db_rollback(m->c->db);
done:
	json_object_put(snap);
	return rc;
}

static void pass_ended(struct monitor *m)
{
	const char *p[1] = {m->c->replica_id ? m->c->replica_id : ""};
	PGresult *r = db_prep(m->c->db, "monitor_to_persist", SQL_TO_PERSIST, 1, p);

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
		char ids[24];
		const char *p[1] = {ids};
		PGresult *r;

		if (shm_slot_snapshot(m->seg, SHM_INSTANCE, i, &sn, NULL, 0, 0) != 1)
			continue;
		mi = tab_get(m, sn.d.instance_id, 0);
		if (mi && mi->seen)
			continue;
		snprintf(ids, sizeof(ids), "%lld", (long long)sn.d.instance_id);
		r = db_prep(m->c->db, "monitor_slot_done", SQL_SLOT_DONE, 1, p);
		if (r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't') {
			shm_slot_release(m->seg, SHM_INSTANCE, i, sn.d.instance_id);
			tab_drop(m, sn.d.instance_id);
			log_info("monitor instance=%lld slot=%d msg=\"stale slot released\"",
				 (long long)sn.d.instance_id, i);
		}
		PQclear(r);
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
	if (m->c->seg && !m->own_seg) {
		m->seg = m->c->seg;
		return 0;
	}
	m->own_seg = 1;
	return shm_keep(&m->seg, m->seg_name, 0, ATTACH_RETRY_MS) ? 0 : -1;
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
	cluster_free(m.cl);
	free(m.tab);
	if (m.own_seg)
		shm_close(m.seg);
	return 0;
}
