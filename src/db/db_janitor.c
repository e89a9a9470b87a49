/*
 * db_janitor.c — the janitor's sweeps: expired leases, retention, dead
 * replicas.
 *
 * Runs in: modelhubd children and supervisor. Called by: janitor.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: work_request (+_input, _result), model_instance, session,
 * hub_server, job_run.
 */
#include "db/db_lead.h"
#include "db/db_work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_janitor_requeue(struct db *db, int64_t token, int max_attempts)
{
	const char *p[2] = {DB_INT(max_attempts), DB_INT(token)};

	return db_affected(db_prep(db, "jan_requeue",
				"WITH x AS (UPDATE work_request SET"
				"  status = CASE WHEN attempts >= $1::int THEN 'FAILED' ELSE 'QUEUED' END,"
				"  failure_reason = CASE WHEN attempts >= $1::int THEN 'ATTEMPTS_EXHAUSTED' END,"
				"  failure_detail = CASE WHEN attempts >= $1::int"
				"    THEN 'lease expired after ' || attempts || ' attempts' END,"
				"  finished_at = CASE WHEN attempts >= $1::int THEN now() END,"
				"  runner_id = NULL, lease_expires_at = NULL"
				"  WHERE status = 'RUNNING' AND lease_expires_at < now() AND " DB_LEASE_FENCE(2)
				"  RETURNING model_id, status)"
				" SELECT pg_notify('work_queued', model_id) FROM x WHERE status = 'QUEUED'",
				2, p));
}

int db_janitor_retention(struct db *db, int64_t token, int days, int batch)
{
	const char *p[3] = {DB_INT(days), DB_INT(batch), DB_INT(token)};

	/* inputs and results go by ON DELETE CASCADE */
	return db_affected(db_prep(db, "jan_retention",
				"DELETE FROM work_request WHERE id IN (SELECT id FROM work_request"
				" WHERE created_at < now() - make_interval(days => $1::int)"
				" AND status <> 'RUNNING' ORDER BY id LIMIT $2::int) AND " DB_LEASE_FENCE(3),
				3, p));
}

int db_janitor_old_instances(struct db *db, int64_t token, int days, int batch)
{
	const char *p[3] = {DB_INT(days), DB_INT(batch), DB_INT(token)};

	return db_affected(db_prep(db, "jan_old_instances",
				"DELETE FROM model_instance WHERE id IN (SELECT id FROM model_instance"
				" WHERE state = 'TERMINATED'"
				" AND terminated_at < now() - make_interval(days => $1::int)"
				" ORDER BY id LIMIT $2::int) AND " DB_LEASE_FENCE(3),
				3, p));
}

int db_janitor_old_metrics(struct db *db, int64_t token, int days, int batch)
{
	const char *p[3] = {DB_INT(days), DB_INT(batch), DB_INT(token)};

	/* own retention (sql/006): not tied to the instance rows */
	return db_affected(db_prep(db, "jan_old_metrics",
				"DELETE FROM instance_metrics WHERE instance_id IN (SELECT instance_id"
				" FROM instance_metrics"
				" WHERE persisted_at < now() - make_interval(days => $1::int)"
				" ORDER BY instance_id LIMIT $2::int) AND " DB_LEASE_FENCE(3),
				3, p));
}

int db_janitor_sessions(struct db *db, int64_t token)
{
	const char *p[1] = {DB_INT(token)};

	return db_affected(db_prep(db, "jan_sessions",
				"DELETE FROM session WHERE absolute_expires_at < now() AND " DB_LEASE_FENCE(1),
				1, p));
}

int db_janitor_disabled(struct db *db, int64_t token)
{
	const char *p[1] = {DB_INT(token)};

	return db_affected(db_prep(db, "jan_disabled",
				"UPDATE work_request w SET status = 'FAILED', failure_reason = 'MODEL_DISABLED',"
				" failure_detail = 'model ' || w.model_id || ' is disabled', finished_at = now()"
				" FROM model m WHERE m.id = w.model_id AND NOT m.enabled AND w.status = 'QUEUED'"
				" AND " DB_LEASE_FENCE(1),
				1, p));
}

int db_janitor_dead_replicas(struct db *db, int64_t token, const char *self, int stale_s)
{
	const char *p[3] = {DB_INT(stale_s), DB_INT(token), self};

	return db_affected(db_prep(db, "jan_dead_replicas",
				"WITH x AS (UPDATE model_instance i SET state = 'TERMINATED',"
				"  termination_reason = 'LOST', termination_detail = 'replica stopped beating',"
				"  terminated_at = now(), updated_at = now()"
				"  FROM hub_server h WHERE h.replica_id = i.replica_id AND i.state <> 'TERMINATED'"
				"  AND i.backend <> 'kubernetes'" /* pods outlive their replica: kubewatch adopts or ends them */
				"  AND h.heartbeat_at < now() - make_interval(secs => $1::int)"
				"  AND i.replica_id <> $3 AND " DB_LEASE_FENCE(2)
				"  RETURNING i.id, i.model_id)"
				" , ev AS (INSERT INTO instance_event (instance_id, kind, detail)"
				"  SELECT id, 'TERMINATED', '{\"reason\":\"LOST\"}' FROM x)"
				" SELECT pg_notify('work_queued', model_id) FROM x",
				3, p));
}


int db_janitor_retention_done(struct db *db)
{
	return db_done(db_prep(db, "jan_retention_done",
			       "INSERT INTO job_run (job, last_at) VALUES ('retention', now())"
			       " ON CONFLICT (job) DO UPDATE SET last_at = now()",
			       0, NULL));
}
