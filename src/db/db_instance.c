/*
 * db_instance.c — model_instance rows and their instance_event/instance_log records.
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c,
 * janitor.c, supervisor.c; api_instances.c (the admin views and the stop
 * action).
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: model_instance, instance_event, instance_log; reads
 * instance_live and instance_metrics for the admin views.
 */
#include "db/db_instance.h"
#include "lib/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_inst_event(struct db *db, int64_t id, const char *kind, const char *detail_json)
{
	const char *p[3] = {DB_INT(id), kind, detail_json ? detail_json : "{}"};

	return db_done(db_prep(db, "inst_event",
			   "INSERT INTO instance_event (instance_id, kind, detail) VALUES ($1, $2, $3::jsonb)",
			   3, p));
}


/* The row and its STARTED event in one statement (one round trip: a
 * runner's connection serves hundreds of requests, issue 15). */
int db_inst_started(struct db *db, int64_t id, const char *name, const char *address, int pid,
		    const char *node)
{
	char detail[64];
	const char *p[6] = {DB_INT(id), name, address, DB_INT(pid), node, detail};

	snprintf(detail, sizeof detail, "{\"pid\":%d}", pid);
	return db_done(db_prep(db, "inst_started",
			       "WITH x AS (UPDATE model_instance SET state = 'STARTING', name = $2, address = $3,"
			       " pid = $4::int, node = $5, updated_at = now() WHERE id = $1 RETURNING id)"
			       " INSERT INTO instance_event (instance_id, kind, detail)"
			       " SELECT $1, 'STARTED', $6::jsonb",
			       6, p));
}

/* A new instance answered its readiness probe and serves its first
 * request at once: READY event, BUSY, and the address (and node) learnt
 * after create when address is not NULL, in one statement. The event is
 * recorded whatever the row's state, as db_inst_state did. */
int db_inst_ready_busy(struct db *db, int64_t id, const char *address, const char *node)
{
	const char *p[3] = {DB_INT(id), address, node && *node ? node : NULL};

	return db_done(db_prep(db, "inst_ready_busy",
			       "WITH x AS (UPDATE model_instance SET state = 'BUSY', updated_at = now(),"
			       " ready_at = COALESCE(ready_at, now()), last_used_at = now(),"
			       " address = COALESCE($2, address), node = COALESCE($3, node)"
			       " WHERE id = $1 AND state <> 'TERMINATED' RETURNING id)"
			       " INSERT INTO instance_event (instance_id, kind, detail) SELECT $1, 'READY', '{}'",
			       3, p));
}

int db_inst_address(struct db *db, int64_t id, const char *address, const char *node)
{
	const char *p[3] = {DB_INT(id), address, node && *node ? node : NULL};

	return db_done(db_prep(db, "inst_address",
			   "UPDATE model_instance SET address = $2, node = COALESCE($3, node),"
			   " updated_at = now() WHERE id = $1",
			   3, p));
}

int db_inst_state(struct db *db, int64_t id, const char *state, const char *event,
		  const char *detail_json)
{
	const char *p[2] = {DB_INT(id), state};

	if (db_done(db_prep(db, "inst_state",
			"UPDATE model_instance SET state = $2, updated_at = now(),"
			" ready_at = CASE WHEN $2 IN ('READY', 'BUSY') AND ready_at IS NULL"
			"   THEN now() ELSE ready_at END,"
			" last_used_at = CASE WHEN $2 = 'BUSY' THEN now() ELSE last_used_at END"
			" WHERE id = $1 AND state <> 'TERMINATED'",
			2, p)) < 0)
		return -1;
	return event ? db_inst_event(db, id, event, detail_json) : 0;
}

int db_inst_release(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};
	int n;

	/* the NOTIFY wakes runners waiting for an instance of this model; the
	 * IDLE event goes in the same statement (one round trip) */
	n = db_affected(db_prep(db, "inst_release",
			     "WITH x AS (UPDATE model_instance SET state = 'IDLE', current_request_id = NULL,"
			     " last_used_at = now(), updated_at = now()"
			     " WHERE id = $1 AND state IN ('BUSY', 'READY') RETURNING id, model_id),"
			     " e AS (INSERT INTO instance_event (instance_id, kind, detail)"
			     "  SELECT id, 'IDLE', '{}'::jsonb FROM x)"
			     " SELECT pg_notify('work_queued', model_id) FROM x",
			     1, p));
	return n < 0 ? -1 : 0;
}

int db_inst_take_idle(struct db *db, int64_t id, int idle_seconds)
{
	const char *p[2] = {DB_INT(id), DB_INT(idle_seconds)};
	int n;

	n = db_affected(db_prep(db, "inst_take_idle_stop",
			     "UPDATE model_instance SET state = 'TERMINATING', updated_at = now()"
			     " WHERE id = $1 AND state = 'IDLE'"
			     " AND last_used_at <= now() - make_interval(secs => $2::int)",
			     2, p));
	return n < 0 ? -1 : n > 0;
}

int db_inst_terminated(struct db *db, int64_t id, const char *reason, const char *detail,
		       const char *log_text)
{
	const char *ids = DB_INT(id);
	const char *p[3] = {ids, reason, detail};
	const char *pl[2] = {ids, log_text ? log_text : ""};
	struct json_object *d = json_object_new_object();
	int rc;

	rc = db_affected(db_prep(db, "inst_terminated",
			 "WITH x AS (UPDATE model_instance SET state = 'TERMINATED',"
			 " termination_reason = COALESCE(termination_reason, $2),"
			 " termination_detail = COALESCE(termination_detail, $3), terminated_at = now(), current_request_id = NULL,"
			 " updated_at = now() WHERE id = $1 AND state <> 'TERMINATED' RETURNING model_id)"
			 " SELECT pg_notify('work_queued', model_id) FROM x",
			 3, p));
	if (d && rc > 0) {
		json_object_object_add(d, "reason", json_object_new_string(reason));
		json_object_object_add(d, "detail", json_object_new_string(detail ? detail : ""));
		if (strcmp(reason, "OOMKILLED") == 0)
			db_inst_event(db, id, "OOM_KILLED", json_object_to_json_string(d));
		db_inst_event(db, id, "TERMINATED", json_object_to_json_string(d));
	}
	if (db_done(db_prep(db, "inst_log",
			"INSERT INTO instance_log (instance_id, text) VALUES ($1, $2)"
			" ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now()",
			2, pl)) < 0)
		rc = -1;
	json_object_put(d);
	return rc < 0 ? -1 : 0;
}

PGresult *db_inst_poll(struct db *db, const char *ids)
{
	const char *p[1] = {ids};

	return db_prep(db, "inst_poll",
		       "SELECT id, state, stop_requested, COALESCE(termination_reason, ''),"
		       " EXISTS (SELECT 1 FROM work_request w WHERE w.id = model_instance.current_request_id"
		       "  AND w.status = 'RUNNING')"
		       " FROM model_instance WHERE id = ANY($1::bigint[])",
		       1, p);
}

int db_inst_request_stop(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_done(db_prep(db, "inst_request_stop",
			   "UPDATE model_instance SET stop_requested = true, updated_at = now()"
			   " WHERE id = $1",
			   1, p));
}

int db_inst_hand_over(struct db *db, int64_t id, const char *replica_id)
{
	const char *p[2] = {DB_INT(id), replica_id};
	int n;

	/* replica_id NULL: no owner; the kubewatch child of a replica that runs
	 * on adopts it (db_pod_adopt) */
	PGresult *r;

	/* the last column reads the row as it was before this statement: no
	 * longer ours (handed over by another runner of ours, or adopted) */
	r = db_prep(db, "inst_hand_over",
		    "WITH x AS (UPDATE model_instance SET replica_id = NULL, updated_at = now(),"
		    " snapshot = snapshot || jsonb_build_object('handed_over_by', $2::text)"
		    " WHERE id = $1 AND replica_id = $2 AND backend = 'kubernetes' AND state = 'IDLE'"
		    " AND NOT stop_requested RETURNING id),"
		    " e AS (INSERT INTO instance_event (instance_id, kind, detail)"
		    "  SELECT id, 'HANDED_OVER', jsonb_build_object('by', $2::text) FROM x)"
		    " SELECT (SELECT count(*) FROM x) > 0 OR coalesce((SELECT replica_id IS DISTINCT FROM $2"
		    "  AND state <> 'TERMINATED' FROM model_instance WHERE id = $1), false)",
		    2, p);
	if (!r)
		return -1;
	n = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return n;
}

PGresult *db_inst_active_of_replica(struct db *db, const char *replica_id)
{
	const char *p[1] = {replica_id};

	return db_prep(db, "inst_active_replica",
		       "SELECT i.id, COALESCE(i.pid, 0), i.state, COALESCE(w.runner_id, '')"
		       " FROM model_instance i LEFT JOIN work_request w"
		       "  ON w.id = i.current_request_id AND w.status = 'RUNNING'"
		       " WHERE i.replica_id = $1 AND i.state <> 'TERMINATED'"
		       " AND i.updated_at < now() - interval '5 seconds'",
		       1, p);
}

int db_inst_lost(struct db *db, int64_t id, const char *detail)
{
	return db_inst_terminated(db, id, "LOST", detail, NULL);
}

/* ---- the admin views ---- */

#define INSTANCE_COLUMNS                                                                        \
	"mi.id, mi.model_id, mi.backend, mi.name, mi.node, mi.address, mi.pid, mi.replica_id, "  \
	"mi.state, mi.termination_reason, mi.termination_detail, mi.stop_requested, "            \
	"mi.current_request_id, array_to_json(mi.request_ids), mi.cpu_request_m, "               \
	"mi.cpu_limit_m, mi.memory_request_mib, mi.memory_limit_mib, iso(mi.started_at), "       \
	"iso(mi.ready_at), iso(mi.last_used_at), iso(mi.terminated_at), iso(mi.updated_at), "    \
	"mi.snapshot - 'samples', il.aggregates, iso(il.at), im.sample_count, im.cpu_min_m, "   \
	"im.cpu_max_m, "                                                                         \
	"im.cpu_avg_m, im.cpu_60_min_m, im.cpu_60_max_m, im.cpu_60_avg_m, im.mem_min_mib, "      \
	"im.mem_max_mib, im.mem_avg_mib, im.mem_60_min_mib, im.mem_60_max_mib, "                 \
	"im.mem_60_avg_mib, im.input_count, im.termination_reason, iso(im.persisted_at), "       \
	"im.cpu_request_m, im.cpu_limit_m, im.memory_request_mib, im.memory_limit_mib "          \
	"FROM model_instance mi "                                                                \
	"LEFT JOIN instance_live il ON il.instance_id = mi.id "                                  \
	"LEFT JOIN instance_metrics im ON im.instance_id = mi.id "

static const char SQL_LIST[] =
	"SELECT " INSTANCE_COLUMNS
	"WHERE ($1 = 'all' OR ($1 = 'active') = (mi.state <> 'TERMINATED')) "
	"  AND ($2::text IS NULL OR mi.model_id = $2) "
	"  AND ($3::text IS NULL OR mi.state = $3 OR mi.termination_reason = $3) "
	"  AND ($4::text IS NULL OR mi.started_at >= $4::timestamptz) "
	"  AND ($5::text IS NULL OR mi.started_at < CASE WHEN length($5) = 10 "
	"       THEN ($5::date + 1)::timestamptz ELSE $5::timestamptz END) "
	"  AND ($6::bigint IS NULL OR mi.id < $6::bigint) "
	"ORDER BY mi.id DESC LIMIT $7::int";

static const char SQL_ONE[] = "SELECT " INSTANCE_COLUMNS "WHERE mi.id = $1::bigint";

static const char SQL_EVENTS[] =
	"SELECT id, iso(at), kind, source, detail FROM instance_event "
	"WHERE instance_id = $1::bigint ORDER BY at, id";

static const char SQL_LOG[] = "SELECT text FROM instance_log WHERE instance_id = $1::bigint";

static const char SQL_STOP[] =
	"UPDATE model_instance SET stop_requested = true, updated_at = now() "
	"WHERE id = $1::bigint AND state <> 'TERMINATED' "
	"RETURNING state, (SELECT stop_requested FROM model_instance WHERE id = $1::bigint)";

static const char SQL_STOP_EVENT[] =
	"INSERT INTO instance_event (instance_id, kind, detail) "
	"VALUES ($1::bigint, 'STOP_REQUESTED', json_build_object('by', $2::text, 'user_id', "
	"$3::bigint, 'via', 'api')::jsonb)";

static const char SQL_NODE_COUNTS[] =
	"SELECT coalesce(node, ''), count(*) FROM model_instance WHERE state <> 'TERMINATED' "
	"GROUP BY 1 ORDER BY 1";

PGresult *db_inst_list(struct db *db, const struct db_inst_filter *f)
{
	const char *p[7] = {f->state, f->model, f->status, f->from, f->to,
			    f->cursor ? DB_INT(f->cursor) : NULL, DB_INT(f->limit)};

	return db_prep(db, "instances_list", SQL_LIST, 7, p);
}

PGresult *db_inst_get(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_prep(db, "instances_one", SQL_ONE, 1, p);
}

PGresult *db_inst_saved_samples(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_prep(db, "instances_saved_samples",
		       "SELECT snapshot->'samples' FROM model_instance WHERE id = $1", 1, p);
}

PGresult *db_inst_events(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_prep(db, "instances_events", SQL_EVENTS, 1, p);
}

PGresult *db_inst_log_text(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	return db_prep(db, "instances_log", SQL_LOG, 1, p);
}

int db_inst_log_wanted(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};

	/* a merge into snapshot, like the kubewatch's own writes: neither loses
	 * the other's keys (each UPDATE works on the row's latest version) */
	return db_done(db_prep(db, "instances_log_wanted",
			       "UPDATE model_instance SET snapshot = snapshot || "
			       " jsonb_build_object('log_wanted_at', now())"
			       " WHERE id = $1 AND backend = 'kubernetes' AND state <> 'TERMINATED'",
			       1, p));
}

PGresult *db_inst_node_counts(struct db *db)
{
	return db_prep(db, "instances_node_counts", SQL_NODE_COUNTS, 0, NULL);
}

/* Inside the caller's transaction: the UPDATE, then (first time) the
 * event and the notification. */
static enum db_inst_stop admin_stop_tx(struct db *db, const char *const *p, const char *const *pn,
				       char *state_out, size_t state_size)
{
	PGresult *up = db_prep(db, "instances_stop", SQL_STOP, 1, p);
	int already;

	if (!up)
		return DB_INST_STOP_ERROR;
	if (PQntuples(up) != 1) {
		PQclear(up);
		return DB_INST_STOP_TERMINATED;
	}
	/* the subselect sees the row as it was before this statement */
	already = PQgetvalue(up, 0, 1)[0] == 't';
	snprintf(state_out, state_size, "%s", PQgetvalue(up, 0, 0));
	PQclear(up);
	if (already)
		return DB_INST_STOP_ALREADY;
	if (db_cmd(db, SQL_STOP_EVENT, 3, p) < 0 ||
	    db_cmd(db, "SELECT pg_notify($1, $2)", 2, pn) < 0)
		return DB_INST_STOP_ERROR;
	return DB_INST_STOP_SET;
}

enum db_inst_stop db_inst_admin_stop(struct db *db, int64_t id, const char *username,
				     int64_t user_id, char *state_out, size_t state_size)
{
	const char *ids = DB_INT(id);
	const char *p[3] = {ids, username, DB_INT(user_id)};
	const char *pn[2] = {"instance_stop", ids};
	enum db_inst_stop rc;

	if (db_begin(db) < 0)
		return DB_INST_STOP_ERROR;
	rc = admin_stop_tx(db, p, pn, state_out, state_size);
	if (rc == DB_INST_STOP_ERROR || rc == DB_INST_STOP_TERMINATED) {
		db_rollback(db);
		return rc;
	}
	if (db_commit(db) < 0)
		return DB_INST_STOP_ERROR;
	return rc;
}
