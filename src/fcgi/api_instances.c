/*
 * api_instances.c — model instances for admins (live and finished), their
 * samples, events, logs and the stop action; nodes; the band table.
 *
 * Runs in: modelhub-fcgi workers. Called by: the router
 * (api_instances_routes).
 * Owns: this worker's read-only attachment of the metrics segment
 * (reattached when modelhubd recreates it; missing segment = DB fallback).
 * Shared state: reads model_instance, instance_live, instance_metrics,
 * instance_event, instance_log, the log file <hub.var_dir>/instances/<id>.log
 * and the segment's instance and node slots. The stop action writes
 * model_instance.stop_requested + one instance_event STOP_REQUESTED and
 * sends NOTIFY instance_stop; the runner that owns the instance acts on it
 * (an API worker never talks to a model or a backend).
 *
 * Shapes (DESIGN §6, §10): every list is {"items":[...],"next_cursor"};
 * every measured value carries its unit; each gauge carries its band
 * (metrics/view.h). Null-able fields are JSON null, never omitted, never a
 * crash (the upstream bug of seeds/002).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_instance.h"
#include "fcgi/api.h"
#include "db/db_autoscale.h"
#include "lib/config.h"
#include "lib/log.h"
#include "recommend/bands.h"
#include "metrics/shm.h"
#include "metrics/view.h"

#define LIST_DEFAULT 50
#define LIST_MAX 500
#define SEG_RETRY_MS 1000       /* missing segment: try to attach this often */
#define LOG_CHUNK 65536

/* ---- the segment (read-only, per worker) ---- */

static struct metrics_seg *seg;
static char seg_name[256];

struct metrics_seg *api_seg(void)
{
	if (!seg_name[0]) {
		char host[128] = "local";
		const char *rid;

		if (gethostname(host, sizeof(host) - 1) < 0)
			snprintf(host, sizeof(host), "local");
		rid = cfg_str("hub.replica_id", NULL);
		shm_name_from_config(seg_name, sizeof(seg_name), rid && *rid ? rid : host);
	}
	return shm_keep(&seg, seg_name, 1, SEG_RETRY_MS);
}

/* ---- parameters ---- */

static int64_t parse_id(const char *s)
{
	char *end;
	long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1)
		return -1;
	return v;
}

/* YYYY-MM-DD, optionally followed by a time (T or space, digits : . and a
 * zone Z or ±hh[:mm]); Postgres does the real parsing. */
static int valid_when(const char *s)
{
	size_t n = strlen(s);

	if (n < 10 || n > 40)
		return 0;
	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return 0;
	if (n == 10)
		return 1;
	if (s[10] != 'T' && s[10] != ' ')
		return 0;
	for (size_t i = 11; i < n; i++)
		if (!strchr("0123456789:.Z+-", s[i]))
			return 0;
	return 1;
}

static enum api_err bad_param(struct api_req *r, const char *field, const char *msg)
{
	json_object *f = json_object_new_object();

	json_object_object_add(f, field, json_object_new_string(msg));
	return api_fail_fields(r, API_BAD_REQUEST, "invalid_parameter", f, "%s %s", field, msg);
}

/* ---- one instance as JSON ---- */

static int col_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : atoi(PQgetvalue(res, row, col));
}

static json_object *col_num(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return view_num(strtod(PQgetvalue(res, row, col), NULL));
}

/* instance_metrics columns as an aggregates object (view.h shape). */
static json_object *persisted_aggregates(const PGresult *res, int row)
{
	json_object *o = json_object_new_object();
	static const struct {
		const char *key, *unit;
		int min, max, avg, wmin, wmax, wavg;
	} k[2] = {
		{"cpu", "millicores", DB_IC_M_CPU_MIN, DB_IC_M_CPU_MAX, DB_IC_M_CPU_AVG, DB_IC_M_CPU60_MIN,
		 DB_IC_M_CPU60_MAX, DB_IC_M_CPU60_AVG},
		{"memory", "MiB", DB_IC_M_MEM_MIN, DB_IC_M_MEM_MAX, DB_IC_M_MEM_AVG, DB_IC_M_MEM60_MIN,
		 DB_IC_M_MEM60_MAX, DB_IC_M_MEM60_AVG},
	};
	int count = col_int(res, row, DB_IC_M_COUNT);

	json_object_object_add(o, "sample_count", json_object_new_int(count));
	for (int i = 0; i < 2; i++) {
		json_object *a = json_object_new_object(), *w = json_object_new_object();

		json_object_object_add(a, "unit", json_object_new_string(k[i].unit));
		json_object_object_add(a, "count", json_object_new_int(count));
		json_object_object_add(a, "min", col_num(res, row, k[i].min));
		json_object_object_add(a, "max", col_num(res, row, k[i].max));
		json_object_object_add(a, "avg", col_num(res, row, k[i].avg));
		json_object_object_add(w, "min", col_num(res, row, k[i].wmin));
		json_object_object_add(w, "max", col_num(res, row, k[i].wmax));
		json_object_object_add(w, "avg", col_num(res, row, k[i].wavg));
		json_object_object_add(a, "last_60s", w);
		json_object_object_add(o, k[i].key, a);
	}
	return o;
}

/* The columns of the row as they are. */
static void instance_fields(json_object *o, const PGresult *res, int row, int active)
{
	jx_add_pg_int(o, "id", res, row, DB_IC_ID);
	jx_add_pg_str(o, "model_id", res, row, DB_IC_MODEL);
	jx_add_pg_str(o, "backend", res, row, DB_IC_BACKEND);
	jx_add_pg_str(o, "name", res, row, DB_IC_NAME);
	jx_add_pg_str(o, "node", res, row, DB_IC_NODE);
	jx_add_pg_str(o, "address", res, row, DB_IC_ADDRESS);
	jx_add_pg_int(o, "pid", res, row, DB_IC_PID);
	jx_add_pg_str(o, "replica_id", res, row, DB_IC_REPLICA);
	jx_add_pg_str(o, "state", res, row, DB_IC_STATE);
	json_object_object_add(o, "active", json_object_new_boolean(active));
	jx_add_pg_str(o, "termination_reason", res, row, DB_IC_TREASON);
	jx_add_pg_str(o, "termination_detail", res, row, DB_IC_TDETAIL);
	jx_add_pg_bool(o, "stop_requested", res, row, DB_IC_STOPREQ);
	jx_add_pg_int(o, "current_request_id", res, row, DB_IC_CURREQ);
	jx_add_pg_json(o, "request_ids", res, row, DB_IC_REQIDS);
	jx_add_pg_str(o, "started_at", res, row, DB_IC_STARTED);
	jx_add_pg_str(o, "ready_at", res, row, DB_IC_READY);
	jx_add_pg_str(o, "last_used_at", res, row, DB_IC_LASTUSED);
	jx_add_pg_str(o, "terminated_at", res, row, DB_IC_TERMINATED);
	jx_add_pg_str(o, "updated_at", res, row, DB_IC_UPDATED);
}

/* Requests and limits: the instance row's, or those persisted with its
 * metrics (the resources it ran with). */
struct inst_res {
	int creq, clim, mreq, mlim;
};

static void res_from(struct inst_res *rs, const PGresult *res, int row, int creq, int clim,
		     int mreq, int mlim)
{
	rs->creq = col_int(res, row, creq);
	rs->clim = col_int(res, row, clim);
	rs->mreq = col_int(res, row, mreq);
	rs->mlim = col_int(res, row, mlim);
}

/* Aggregates from this machine's segment, or NULL. A slot without samples
 * yet loses to another replica's live copy. */
static json_object *segment_agg(const PGresult *res, int row, struct metrics_seg *sg,
				json_object *metrics)
{
	int64_t id = strtoll(PQgetvalue(res, row, DB_IC_ID), NULL, 10);
	int idx = shm_find_instance(sg, id);
	struct shm_snap sn;

	if (idx < 0 || shm_slot_snapshot(sg, SHM_INSTANCE, idx, &sn, NULL, 0, 0) != 1 ||
	    sn.d.instance_id != id || !(sn.d.cpu.count || PQgetisnull(res, row, DB_IC_LIVE_AGG)))
		return NULL;
	json_object_object_add(metrics, "oom_flagged",
			       json_object_new_boolean((sn.d.flags & SHM_F_OOM) != 0));
	json_object_object_add(metrics, "memory_from_cgroup",
			       json_object_new_boolean((sn.d.flags & SHM_F_CGROUP) != 0));
	return view_aggregates(&sn.d);
}

/* Aggregates persisted in instance_metrics, or NULL. */
static json_object *persisted_agg(const PGresult *res, int row, json_object *o,
				  json_object *metrics, struct inst_res *rs)
{
	if (PQgetisnull(res, row, DB_IC_M_COUNT))
		return NULL;
	jx_add_pg_int(o, "input_count", res, row, DB_IC_M_INPUTS);
	jx_add_pg_str(metrics, "persisted_at", res, row, DB_IC_M_AT);
	if (!PQgetisnull(res, row, DB_IC_M_CPU_REQ) || !PQgetisnull(res, row, DB_IC_M_MEM_LIM))
		res_from(rs, res, row, DB_IC_M_CPU_REQ, DB_IC_M_CPU_LIM, DB_IC_M_MEM_REQ,
			 DB_IC_M_MEM_LIM);
	return persisted_aggregates(res, row);
}

/* Aggregates another replica published in instance_live, or NULL. */
static json_object *live_agg(const PGresult *res, int row, json_object *metrics)
{
	json_object *agg;

	if (PQgetisnull(res, row, DB_IC_LIVE_AGG))
		return NULL;
	agg = json_tokener_parse(PQgetvalue(res, row, DB_IC_LIVE_AGG));
	if (agg)
		jx_add_pg_str(metrics, "at", res, row, DB_IC_LIVE_AT);
	return agg;
}

static json_object *instance_json(const PGresult *res, int row, struct metrics_seg *sg)
{
	json_object *o = json_object_new_object(), *metrics = json_object_new_object();
	json_object *agg = NULL;
	const char *source = NULL;
	int active = strcmp(PQgetvalue(res, row, DB_IC_STATE), "TERMINATED") != 0;
	struct inst_res rs;

	res_from(&rs, res, row, DB_IC_CPU_REQ, DB_IC_CPU_LIM, DB_IC_MEM_REQ, DB_IC_MEM_LIM);
	instance_fields(o, res, row, active);
	json_object_object_add(o, "resources", view_resources(rs.creq, rs.clim, rs.mreq, rs.mlim));
	jx_add_pg_json(o, "snapshot", res, row, DB_IC_SNAPSHOT);
	if (active && sg && (agg = segment_agg(res, row, sg, metrics)))
		source = "segment";
	else if ((agg = persisted_agg(res, row, o, metrics, &rs)))
		source = "persisted";
	else if ((agg = live_agg(res, row, metrics)))
		source = "instance_live";
	if (!jx_has(o, "input_count"))
		json_object_object_add(o, "input_count", NULL);
	json_object_object_add(metrics, "source", source ? json_object_new_string(source) : NULL);
	json_object_object_add(metrics, "gauges",
			       view_gauges(agg, rs.creq, rs.clim, rs.mreq, rs.mlim));
	json_object_object_add(metrics, "aggregates", agg);
	json_object_object_add(o, "metrics", metrics);
	return o;
}

/* ---- GET /api/instances ---- */

static const char *const STATUSES[] = {"REQUESTED", "STARTING", "READY",     "BUSY",
				       "IDLE",      "TERMINATING", "TERMINATED", "COMPLETED",
				       "FAILED",    "OOMKILLED", "STOPPED",    "LOST",
				       NULL};

/* status: an instance state or a termination reason. */
static int known_status(const char *status)
{
	for (int i = 0; STATUSES[i]; i++)
		if (strcmp(status, STATUSES[i]) == 0)
			return 1;
	return 0;
}

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

/* The query string of GET /api/instances into *f; API_OK or the 400. */
static enum api_err list_filter(struct api_req *r, struct db_inst_filter *f)
{
	const char *limit_s = api_query(r, "limit"), *cursor = api_query(r, "cursor");

	f->state = nonempty(api_query(r, "state")) ? api_query(r, "state") : "active";
	f->model = nonempty(api_query(r, "model"));
	f->status = nonempty(api_query(r, "status"));
	f->from = nonempty(api_query(r, "started_from"));
	f->to = nonempty(api_query(r, "started_to"));
	f->limit = LIST_DEFAULT;
	f->cursor = 0;
	if (strcmp(f->state, "active") && strcmp(f->state, "finished") && strcmp(f->state, "all"))
		return bad_param(r, "state", "must be active, finished or all");
	if (f->model && strlen(f->model) > 64)
		return bad_param(r, "model", "is not a model id");
	if (f->status && !known_status(f->status))
		return bad_param(r, "status", "must be an instance state or a termination reason");
	if (f->from && !valid_when(f->from))
		return bad_param(r, "started_from", "must be a date YYYY-MM-DD or an ISO 8601 time");
	if (f->to && !valid_when(f->to))
		return bad_param(r, "started_to", "must be a date YYYY-MM-DD or an ISO 8601 time");
	if (limit_s && *limit_s) {
		f->limit = parse_id(limit_s);
		if (f->limit < 1 || f->limit > LIST_MAX)
			return bad_param(r, "limit", "must be an integer from 1 to 500");
	}
	if (cursor && *cursor) {
		f->cursor = parse_id(cursor);
		if (f->cursor < 1)
			return bad_param(r, "cursor", "must be a next_cursor value from a previous page");
	}
	return API_OK;
}

/* "scheduling": the scheduler's status of a pod not running yet (phase,
 * reason, the scheduler's message, from the pod snapshot the kubewatch child
 * keeps) and the node autoscaler's verdict on it (autoscaler_pod), or null. */
static void add_scheduling(struct api_req *r, json_object *o)
{
	json_object *ps = jx_get(o, "snapshot", "pod_state", NULL), *sc;
	const char *name = jx_get_str(o, "name", NULL), *phase = jx_get_str(ps, "phase", NULL);
	char verdict[32], msg[512];

	if (!ps || !phase || strcmp(phase, "Pending") != 0) {
		json_object_object_add(o, "scheduling", NULL);
		return;
	}
	sc = json_object_new_object();
	json_object_object_add(sc, "phase", json_object_new_string(phase));
	json_object_object_add(sc, "reason", json_object_get(jx_get(ps, "reason", NULL)));
	json_object_object_add(sc, "scheduler_message", json_object_get(jx_get(ps, "detail", NULL)));
	json_object_object_add(sc, "unschedulable", json_object_get(jx_get(ps, "unschedulable", NULL)));
	if (name && db_as_pod_get(r->db, name, verdict, sizeof verdict, msg, sizeof msg) == 1) {
		json_object_object_add(sc, "autoscaler_verdict", json_object_new_string(verdict));
		json_object_object_add(sc, "autoscaler_message", json_object_new_string(msg));
	} else {
		json_object_object_add(sc, "autoscaler_verdict", NULL);
		json_object_object_add(sc, "autoscaler_message", NULL);
	}
	json_object_object_add(o, "scheduling", sc);
}

static enum api_err h_list(struct api_req *r)
{
	struct db_inst_filter f;
	enum api_err e = list_filter(r, &f);
	int64_t limit = f.limit;
	json_object *root, *items;
	PGresult *res;
	struct metrics_seg *sg;
	int n, shown;

	if (e != API_OK)
		return e;
	f.limit = limit + 1; /* one more row tells whether a next page exists */
	res = db_inst_list(r->db, &f);
	if (!res) {
		const char *st = db_sqlstate(r->db);

		if (st && strncmp(st, "22", 2) == 0)
			return bad_param(r, "started_from", "or started_to is not a valid time");
		return api_db_fail(r);
	}
	sg = strcmp(f.state, "finished") ? api_seg() : NULL;
	root = json_object_new_object();
	items = json_object_new_array();
	n = PQntuples(res);
	shown = n > limit ? (int)limit : n;
	for (int i = 0; i < shown; i++) {
		json_object *it = instance_json(res, i, sg);

		add_scheduling(r, it);
		json_object_array_add(items, it);
	}
	json_object_object_add(root, "items", items);
	json_object_object_add(root, "next_cursor",
			       n > limit ? json_object_new_string(PQgetvalue(res, shown - 1, DB_IC_ID))
					 : NULL);
	PQclear(res);
	return api_json(r, 200, root);
}

/* ---- one instance ---- */

/* The row of params[0]; NULL with *e set (404 / 500) when none. */
static PGresult *load_one(struct api_req *r, int64_t *id_out, enum api_err *e)
{
	int64_t id = parse_id(r->params[0]);
	PGresult *res;

	*e = API_OK;
	if (id < 1) {
		*e = api_fail(r, API_NOT_FOUND, "not_found", "no such instance");
		return NULL;
	}
	res = db_inst_get(r->db, id);
	if (!res) {
		*e = api_db_fail(r);
		return NULL;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		*e = api_fail(r, API_NOT_FOUND, "not_found", "no such instance");
		return NULL;
	}
	*id_out = id;
	return res;
}

static enum api_err h_get(struct api_req *r)
{
	enum api_err e;
	int64_t id;
	PGresult *res = load_one(r, &id, &e);
	json_object *o;

	if (!res)
		return e;
	o = instance_json(res, 0, api_seg());
	PQclear(res);
	add_scheduling(r, o);
	return api_json(r, 200, o);
}

/* A finished instance's samples as the monitor kept them at its end
 * (snapshot.samples), those after since (ms; 0: all); [] without. */
static json_object *saved_samples(struct api_req *r, int64_t id, int64_t since)
{
	PGresult *res = db_inst_saved_samples(r->db, id);
	json_object *all = NULL, *out = json_object_new_array();

	if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		all = json_tokener_parse(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (all && json_object_is_type(all, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(all); i++) {
			json_object *x = json_object_array_get_idx(all, i), *t;

			if (json_object_object_get_ex(x, "t_ms", &t) && json_object_get_int64(t) > since)
				json_object_array_add(out, json_object_get(x));
		}
	}
	json_object_put(all);
	return out;
}

static enum api_err h_samples(struct api_req *r)
{
	const char *since_s = api_query(r, "since");
	int64_t id, since = 0;
	enum api_err e;
	PGresult *res;
	struct metrics_seg *sg;
	json_object *o, *units;
	struct shm_sample *smp = NULL;
	struct shm_snap sn;
	int nsamples = 0, active;

	if (since_s && *since_s) {
		char *end;

		errno = 0;
		since = strtoll(since_s, &end, 10);
		if (errno || *end || since < 0)
			return bad_param(r, "since", "must be a time in ms since the epoch");
	}
	res = load_one(r, &id, &e);
	if (!res)
		return e;
	active = strcmp(PQgetvalue(res, 0, DB_IC_STATE), "TERMINATED") != 0;
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "instance_id", json_object_new_int64(id));
	json_object_object_add(o, "active", json_object_new_boolean(active));
	json_object_object_add(o, "interval_ms",
			       json_object_new_int64(cfg_int("metrics.interval_ms", 3000)));
	units = json_object_new_object();
	json_object_object_add(units, "t_ms", json_object_new_string("ms since epoch"));
	json_object_object_add(units, "cpu_m", json_object_new_string("millicores"));
	json_object_object_add(units, "memory_mib", json_object_new_string("MiB"));
	json_object_object_add(o, "units", units);
	sg = active ? api_seg() : NULL;
	if (sg) {
		int idx = shm_find_instance(sg, id), max = shm_max_samples(sg);

		smp = calloc((size_t)max, sizeof(*smp));
		if (smp && idx >= 0 &&
		    shm_slot_snapshot(sg, SHM_INSTANCE, idx, &sn, smp, max, since) == 1 &&
		    sn.d.instance_id == id)
			nsamples = sn.nsamples;
	}
	json_object_object_add(o, "samples", active ? view_samples(smp, nsamples)
				 : saved_samples(r, id, since));
	free(smp);
	return api_json(r, 200, o);
}

static enum api_err h_events(struct api_req *r)
{
	enum api_err e;
	int64_t id;
	PGresult *res = load_one(r, &id, &e), *ev;
	json_object *o, *items;

	if (!res)
		return e;
	ev = db_inst_events(r->db, id);
	if (!ev) {
		PQclear(res);
		return api_db_fail(r);
	}
	o = json_object_new_object();
	items = json_object_new_array();
	for (int i = 0; i < PQntuples(ev); i++) {
		json_object *it = json_object_new_object();

		jx_add_pg_int(it, "id", ev, i, 0);
		jx_add_pg_str(it, "at", ev, i, 1);
		jx_add_pg_str(it, "kind", ev, i, 2);
		jx_add_pg_str(it, "source", ev, i, 3);
		jx_add_pg_json(it, "detail", ev, i, 4);
		json_object_array_add(items, it);
	}
	json_object_object_add(o, "instance_id", json_object_new_int64(id));
	json_object_object_add(o, "items", items);
	json_object_object_add(o, "next_cursor", NULL);
	json_object_object_add(o, "instance", instance_json(res, 0, api_seg()));
	PQclear(ev);
	PQclear(res);
	return api_json(r, 200, o);
}

/* ---- logs ---- */

static enum api_err h_logs(struct api_req *r)
{
	enum api_err e;
	int64_t id;
	PGresult *res = load_one(r, &id, &e), *lg;
	char path[1024];
	int active, fd = -1;

	if (!res)
		return e;
	active = strcmp(PQgetvalue(res, 0, DB_IC_STATE), "TERMINATED") != 0;
	PQclear(res);
	/* kubernetes: the kubewatch child refreshes the tail of a viewed pod */
	if (active)
		db_inst_log_wanted(r->db, id);
	api_header(r, "Content-Disposition", "attachment; filename=\"instance-%lld.log\"",
		   (long long)id);
	if (active) {
		snprintf(path, sizeof(path), "%s/instances/%lld.log", cfg_str("hub.var_dir", "var"),
			 (long long)id);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd >= 0) {
		/* the live file, streamed as it is now */
		FCGX_Stream *out = api_stream_begin(r, 200, "text/plain; charset=utf-8");
		struct buf b = BUF_INIT;
		char chunk[LOG_CHUNK];
		ssize_t n;

		while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
			if (out)
				FCGX_PutStr(chunk, (int)n, out);
			else
				buf_add(&b, chunk, (size_t)n);
		}
		close(fd);
		if (!out) {
			e = api_text(r, 200, "text/plain; charset=utf-8", b.data ? b.data : "", b.len);
			buf_free(&b);
			return e;
		}
		return API_OK;
	}
	lg = db_inst_log_text(r->db, id);
	if (!lg)
		return api_db_fail(r);
	if (PQntuples(lg) == 1)
		e = api_text(r, 200, "text/plain; charset=utf-8", PQgetvalue(lg, 0, 0),
			     (size_t)PQgetlength(lg, 0, 0));
	else
		e = api_text(r, 200, "text/plain; charset=utf-8", "", 0);
	PQclear(lg);
	return e;
}

/* ---- stop ---- */

static enum api_err h_stop(struct api_req *r)
{
	enum api_err e;
	int64_t id;
	PGresult *res = load_one(r, &id, &e);
	char state[32];
	json_object *o;

	if (!res)
		return e;
	PQclear(res);
	switch (db_inst_admin_stop(r->db, id, r->auth.username, r->auth.user_id, state,
				   sizeof state)) {
	case DB_INST_STOP_ERROR:
		return api_db_fail(r);
	case DB_INST_STOP_TERMINATED:
		return api_fail(r, API_CONFLICT, "instance_terminated",
				"the instance has already terminated");
	case DB_INST_STOP_SET:
	case DB_INST_STOP_ALREADY:
		break;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "state", json_object_new_string(state));
	json_object_object_add(o, "stop_requested", json_object_new_boolean(1));
	log_info("instance id=%lld user=%lld msg=\"stop requested\"", (long long)id,
		 (long long)r->auth.user_id);
	return api_json(r, 202, o);
}

/* ---- bands ---- */

static enum api_err h_bands(struct api_req *r)
{
	json_object *o = json_object_new_object(), *targets = json_object_new_object();

	for (int k = 0; k < BAND_KIND_MAX; k++) {
		const struct band *t = bands_table((enum band_kind)k);
		json_object *a = json_object_new_array();

		for (int i = 0; i < BAND_COUNT; i++) {
			json_object *b = json_object_new_object();

			json_object_object_add(b, "name", json_object_new_string(t[i].name));
			json_object_object_add(b, "colour", json_object_new_string(t[i].colour));
			json_object_object_add(b, "from_percent", json_object_new_double(t[i].lo));
			json_object_object_add(b, "to_percent", t[i].hi >= BANDS_OPEN
									? NULL
									: json_object_new_double(t[i].hi));
			json_object_array_add(a, b);
		}
		json_object_object_add(o, band_kind_name((enum band_kind)k), a);
		json_object_object_add(targets, band_kind_name((enum band_kind)k),
				       json_object_new_double(band_target_percent((enum band_kind)k)));
	}
	json_object_object_add(o, "targets_percent", targets);
	json_object_object_add(o, "gauges", json_object_new_string(
		"max usage vs limit, min usage vs request, avg usage vs limit; "
		"a band is [from_percent, to_percent)"));
	api_header(r, "Cache-Control", "public, max-age=3600");
	return api_json(r, 200, o);
}

/* ---- nodes ---- */

static json_object *node_json(const struct shm_snap *sn, const struct shm_sample *last)
{
	json_object *o = json_object_new_object(), *cpu = json_object_new_object(),
		    *mem = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(sn->d.name));
	json_object_object_add(cpu, "unit", json_object_new_string("millicores"));
	json_object_object_add(cpu, "capacity", view_num(sn->d.cpu_capacity_m));
	json_object_object_add(cpu, "allocatable", view_num(sn->d.cpu_allocatable_m));
	json_object_object_add(cpu, "usage", last ? view_num(last->cpu_m)
						  : NULL);
	json_object_object_add(mem, "unit", json_object_new_string("MiB"));
	json_object_object_add(mem, "capacity",
			       view_num(sn->d.mem_capacity_mib));
	json_object_object_add(mem, "allocatable",
			       view_num(sn->d.mem_allocatable_mib));
	json_object_object_add(mem, "usage",
			       last ? view_num(last->mem_mib) : NULL);
	json_object_object_add(o, "cpu", cpu);
	json_object_object_add(o, "memory", mem);
	json_object_object_add(o, "aggregates", view_aggregates(&sn->d));
	json_object_object_add(o, "last_sample_at_ms",
			       sn->d.last_sample_ms ? json_object_new_int64(sn->d.last_sample_ms)
						    : NULL);
	return o;
}

static enum api_err h_nodes(struct api_req *r)
{
	struct metrics_seg *sg = api_seg();
	json_object *root = json_object_new_object(), *items = json_object_new_array();
	PGresult *cnt = db_inst_node_counts(r->db);
	int nslots = sg ? shm_nslots(sg, SHM_NODE) : 0;

	if (!cnt) {
		json_object_put(root);
		json_object_put(items);
		return api_db_fail(r);
	}
	for (int i = 0; i < nslots; i++) {
		struct shm_sample last[1];
		struct shm_snap sn;
		json_object *o;
		int count = 0;

		if (shm_slot_snapshot(sg, SHM_NODE, i, &sn, last, 1, 0) != 1)
			continue;
		o = node_json(&sn, sn.nsamples ? &last[0] : NULL);
		for (int k = 0; k < PQntuples(cnt); k++)
			if (strcmp(PQgetvalue(cnt, k, 0), sn.d.name) == 0 ||
			    (PQgetvalue(cnt, k, 0)[0] == '\0' && nslots == 1))
				count += atoi(PQgetvalue(cnt, k, 1));
		json_object_object_add(o, "instance_count", json_object_new_int(count));
		json_object_object_add(o, "source", json_object_new_string("segment"));
		json_object_array_add(items, o);
	}
	if (!sg) {
		/* no segment on this machine: what the database knows */
		for (int k = 0; k < PQntuples(cnt); k++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "name", json_object_new_string(PQgetvalue(cnt, k, 0)));
			json_object_object_add(o, "cpu", NULL);
			json_object_object_add(o, "memory", NULL);
			json_object_object_add(o, "aggregates", NULL);
			json_object_object_add(o, "last_sample_at_ms", NULL);
			json_object_object_add(o, "instance_count",
					       json_object_new_int(atoi(PQgetvalue(cnt, k, 1))));
			json_object_object_add(o, "source", json_object_new_string("database"));
			json_object_array_add(items, o);
		}
	}
	PQclear(cnt);
	json_object_object_add(root, "items", items);
	json_object_object_add(root, "next_cursor", NULL);
	return api_json(r, 200, root);
}

const struct api_route api_instances_routes[] = {
	{"GET", "/api/instances", ACCESS_ADMIN, h_list},
	{"GET", "/api/instances/{}", ACCESS_ADMIN, h_get},
	{"GET", "/api/instances/{}/samples", ACCESS_ADMIN, h_samples},
	{"GET", "/api/instances/{}/events", ACCESS_ADMIN, h_events},
	{"GET", "/api/instances/{}/logs", ACCESS_ADMIN, h_logs},
	{"POST", "/api/instances/{}/stop", ACCESS_ADMIN, h_stop},
	{"GET", "/api/bands", ACCESS_PUBLIC, h_bands},
	{"GET", "/api/nodes", ACCESS_ADMIN, h_nodes},
	{0},
};
