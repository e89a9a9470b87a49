/*
 * db_stats.c — implementation of db_stats.h: the database half of
 * /metrics, /api/health and /api/stats, and the janitor's stats fold.
 *
 * Runs in: modelhub-fcgi workers, modelhubd's janitor.
 * Called by: api_metrics.c, api_health.c, api_stats.c, janitor.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: reads work_request, model_instance, schema_migration;
 * request_stats_pending rows are moved into request_stats_day by the
 * fold (DELETE ... RETURNING and the upsert in one statement: two folds
 * at once never count a row twice, the second waits for the first's rows
 * and skips them).
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

PGresult *db_stats_rows(struct db *db, const char *from, const char *to, const char *model)
{
	const char *p[3] = {from, to, model ? model : ""};

	return db_prep(db, "stats_rows",
		"SELECT day::text, model_id, status, failure_reason, size_bucket, requests, inputs,"
		" cached, wait_hist::text, run_hist::text FROM request_stats_day"
		" WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3)"
		" UNION ALL"
		" SELECT day::text, model_id, status, failure_reason, size_bucket, count(*),"
		" sum(inputs), sum(cached), stats_hist(array_agg(wait_bucket))::text,"
		" stats_hist(array_agg(run_bucket))::text FROM request_stats_pending"
		" WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3)"
		" GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2",
		3, p);
}

PGresult *db_stats_open(struct db *db, const char *model)
{
	const char *p[1] = {model ? model : ""};

	/* one count per status: each uses its partial index (sql/001) */
	return db_prep(db, "stats_open",
		"SELECT (SELECT count(*) FROM work_request WHERE status = 'QUEUED'"
		"        AND ($1 = '' OR model_id = $1)),"
		"       (SELECT count(*) FROM work_request WHERE status = 'RUNNING'"
		"        AND ($1 = '' OR model_id = $1))",
		1, p);
}

int db_stats_fold(struct db *db, int batch)
{
	const char *p[1] = {DB_INT(batch)};

	return db_affected(db_prep(db, "stats_fold",
		"WITH moved AS (DELETE FROM request_stats_pending WHERE id IN"
		"  (SELECT id FROM request_stats_pending ORDER BY id LIMIT $1::int) RETURNING *),"
		" agg AS (SELECT day, model_id, status, failure_reason, size_bucket, count(*) n,"
		"  sum(inputs) i, sum(cached) c, stats_hist(array_agg(wait_bucket)) w,"
		"  stats_hist(array_agg(run_bucket)) r FROM moved GROUP BY 1, 2, 3, 4, 5)"
		" INSERT INTO request_stats_day AS d (day, model_id, status, failure_reason,"
		"  size_bucket, requests, inputs, cached, wait_hist, run_hist)"
		" SELECT * FROM agg ON CONFLICT (day, model_id, status, failure_reason, size_bucket)"
		" DO UPDATE SET requests = d.requests + excluded.requests,"
		"  inputs = d.inputs + excluded.inputs, cached = d.cached + excluded.cached,"
		"  wait_hist = stats_hist_add(d.wait_hist, excluded.wait_hist),"
		"  run_hist = stats_hist_add(d.run_hist, excluded.run_hist)",
		1, p));
}

int db_stats_vacuum(struct db *db)
{
	/* simple-query protocol: VACUUM takes no parameters and must not run
	 * in a transaction block */
	PGresult *r = db_ensure(db) == 0 ? PQexec(db_conn(db), "VACUUM (ANALYZE) request_stats_pending,"
								  " request_stats_day")
					 : NULL;
	int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	return ok ? 0 : -1;
}
