/*
 * db_hub.c — the supervisor's rows: hub_server heartbeat, queue depths per model.
 *
 * Runs in: modelhubd children and supervisor. Called by: supervisor.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: hub_server (one row per replica), reads work_request, model.
 */
#include "db/db_work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_hub_server_beat(struct db *db, const char *replica_id, const char *hostname, int pid,
		       const char *version, const char *detail_json, int starting)
{
	const char *p[6] = {replica_id, hostname, DB_INT(pid), version, detail_json ? detail_json : "{}",
			    starting ? "t" : "f"};

	return db_done(db_prep(db, "hub_server_beat",
			   "INSERT INTO hub_server (replica_id, hostname, pid, version, detail)"
			   " VALUES ($1, $2, $3::int, $4, $5::jsonb)"
			   " ON CONFLICT (replica_id) DO UPDATE SET hostname = EXCLUDED.hostname,"
			   " pid = EXCLUDED.pid, version = EXCLUDED.version, detail = EXCLUDED.detail,"
			   " heartbeat_at = now(),"
			   " started_at = CASE WHEN $6::boolean THEN now() ELSE hub_server.started_at END",
			   6, p));
}

PGresult *db_work_queue_depths(struct db *db)
{
	return db_prep(db, "work_queue_depths",
		       "SELECT w.model_id, count(*), max(m.max_instances) FROM work_request w"
		       " JOIN model m ON m.id = w.model_id WHERE w.status = 'QUEUED'"
		       " GROUP BY w.model_id ORDER BY w.model_id",
		       0, NULL);
}
