/*
 * db_instance.c — model_instance rows and their instance_event/instance_log records.
 *
 * Runs in: modelhubd children and supervisor. Called by: runner.c,
 * janitor.c, supervisor.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: model_instance, instance_event, instance_log.
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


int db_inst_started(struct db *db, int64_t id, const char *name, const char *address, int pid,
		    const char *node)
{
	const char *p[5] = {DB_INT(id), name, address, DB_INT(pid), node};
	char detail[256];

	if (db_done(db_prep(db, "inst_started",
			"UPDATE model_instance SET state = 'STARTING', name = $2, address = $3,"
			" pid = $4::int, node = $5, updated_at = now() WHERE id = $1",
			5, p)) < 0)
		return -1;
	snprintf(detail, sizeof detail, "{\"pid\":%d}", pid);
	return db_inst_event(db, id, "STARTED", detail);
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
		       "SELECT id, state, stop_requested, COALESCE(termination_reason, '')"
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

PGresult *db_inst_active_of_replica(struct db *db, const char *replica_id)
{
	const char *p[1] = {replica_id};

	return db_prep(db, "inst_active_replica",
		       "SELECT id, COALESCE(pid, 0), state FROM model_instance"
		       " WHERE replica_id = $1 AND state <> 'TERMINATED'"
		       " AND updated_at < now() - interval '5 seconds'",
		       1, p);
}

int db_inst_lost(struct db *db, int64_t id, const char *detail)
{
	return db_inst_terminated(db, id, "LOST", detail, NULL);
}
