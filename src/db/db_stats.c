/*
 * db_stats.c — implementation of db_stats.h: the database half of
 * /metrics and /api/health.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_metrics.c, api_health.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: reads work_request, model_instance, schema_migration.
 */
#include "db/db_stats.h"

PGresult *db_stats_requests(struct db *db)
{
	return db_prep(db, "metrics_requests",
		       "SELECT s, (SELECT count(*) FROM work_request w WHERE w.status = s) "
		       "FROM unnest(ARRAY['QUEUED','RUNNING','COMPLETED','FAILED','CANCELLED']) s",
		       0, NULL);
}

PGresult *db_stats_queue(struct db *db)
{
	return db_prep(db, "metrics_queue",
		       "SELECT model_id, count(*) FROM work_request WHERE status = 'QUEUED' "
		       "GROUP BY model_id ORDER BY model_id",
		       0, NULL);
}

PGresult *db_stats_instances(struct db *db)
{
	return db_prep(db, "metrics_instances",
		       "SELECT s, (SELECT count(*) FROM model_instance mi WHERE mi.state = s) "
		       "FROM unnest(ARRAY['REQUESTED','STARTING','READY','BUSY','IDLE',"
		       "'TERMINATING','TERMINATED']) s",
		       0, NULL);
}

PGresult *db_stats_terminations(struct db *db)
{
	return db_prep(db, "metrics_terminations",
		       "SELECT termination_reason, count(*) FROM model_instance "
		       "WHERE termination_reason IS NOT NULL GROUP BY 1 ORDER BY 1",
		       0, NULL);
}

PGresult *db_stats_health(struct db *db)
{
	return db_prep(db, "health_get",
		       "SELECT (SELECT max(version) FROM schema_migration), current_schema()", 0,
		       NULL);
}
