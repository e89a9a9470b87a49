/*
 * db_stats.c — implementation of db_stats.h: the database half of
 * /metrics, /api/health and /api/stats, and the janitor's stats fold.
 *
 * Runs in: modelhub-fcgi workers, modelhubd's janitor.
 * Called by: api_metrics.c, api_health.c, api_stats.c, janitor.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: reads work_request, model_instance, schema_migration;
 * request_stats_pending rows are moved into request_stats_day and the
 * answer-shaped tables of sql/021 (request_stats_model_day,
 * request_stats_reason_day, request_stats_cum) by the fold: DELETE ...
 * RETURNING and the four upserts in one statement, in a transaction that
 * holds an advisory lock first, so folds run one at a time (the running
 * totals of request_stats_cum are replaced, not added to).
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

/* request_stats_model_day rows of the range, then the pending rows
 * grouped the same way, in one order (a key may come twice: callers add) */
PGresult *db_stats_model_days(struct db *db, const char *from, const char *to, const char *model)
{
	const char *p[3] = {from, to, model ? model : ""};

	return db_prep(db, "stats_model_days",
		"SELECT day::text, model_id, completed, failed, cancelled, inputs, cached FROM ("
		" SELECT day, model_id, completed, failed, cancelled, inputs, cached"
		" FROM request_stats_model_day"
		" WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3)"
		" UNION ALL"
		" SELECT day, model_id, count(*) FILTER (WHERE status = 'COMPLETED'),"
		"  count(*) FILTER (WHERE status = 'FAILED'), count(*) FILTER (WHERE status = 'CANCELLED'),"
		"  sum(inputs), sum(cached) FROM request_stats_pending"
		" WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3)"
		" GROUP BY 1, 2) u ORDER BY u.day, u.model_id COLLATE \"C\"",
		3, p);
}

PGresult *db_stats_reasons(struct db *db, const char *from, const char *to, const char *model)
{
	const char *p[3] = {from, to, model ? model : ""};

	return db_prep(db, "stats_reasons",
		"SELECT failure_reason, sum(n) FROM ("
		"  SELECT failure_reason, requests n FROM request_stats_reason_day"
		"  WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3)"
		"  UNION ALL SELECT failure_reason, 1 FROM request_stats_pending"
		"  WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3)"
		"  AND failure_reason <> '') r"
		" GROUP BY 1 ORDER BY 2 DESC, 1",
		3, p);
}

/* The running totals of one key (model, size bucket) at the latest day
 * <= $2 ("hi") and at the latest day < $1 ("lo"): hi - lo is the range. */
#define CUM_AT(cmp, alias)                                                              \
	" LEFT JOIN LATERAL (SELECT completed, failed, cancelled, inputs, cached,"     \
	"  wait_hist::text w, run_hist::text r FROM request_stats_cum c"               \
	"  WHERE c.model_id = $3 AND c.size_bucket = g.s AND c.day " cmp               \
	"  ORDER BY c.day DESC LIMIT 1) " alias " ON true"

PGresult *db_stats_sizes(struct db *db, const char *from, const char *to, const char *model)
{
	const char *p[3] = {from, to, model ? model : ""};

	return db_prep(db, "stats_sizes",
		"WITH p AS (SELECT size_bucket s, count(*) FILTER (WHERE status = 'COMPLETED') completed,"
		"  count(*) FILTER (WHERE status = 'FAILED') failed,"
		"  count(*) FILTER (WHERE status = 'CANCELLED') cancelled, sum(inputs) inputs,"
		"  sum(cached) cached, stats_hist(array_agg(wait_bucket))::text w,"
		"  stats_hist(array_agg(run_bucket))::text r FROM request_stats_pending"
		"  WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR model_id = $3) GROUP BY 1)"
		" SELECT g.s, hi.completed, hi.failed, hi.cancelled, hi.inputs, hi.cached, hi.w, hi.r,"
		"  lo.completed, lo.failed, lo.cancelled, lo.inputs, lo.cached, lo.w, lo.r,"
		"  p.completed, p.failed, p.cancelled, p.inputs, p.cached, p.w, p.r"
		" FROM generate_series(0, 5) g(s)"
		CUM_AT("<= $2::date", "hi") CUM_AT("< $1::date", "lo")
		" LEFT JOIN p ON p.s = g.s ORDER BY g.s",
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

/* The running totals: for each key (model and '' for all, size bucket)
 * the fold touches, every row from its earliest folded day on (existing
 * rows and one per new day) becomes the latest row before it (the base,
 * read before the fold) plus the folded deltas up to its day (a window
 * sum). Rows are replaced, hence the lock in db_stats_fold. */
#define FOLD_CUM                                                                             \
	" delta AS (SELECT k.model_id, a.size_bucket, a.day,"                                \
	"  coalesce(sum(a.n) FILTER (WHERE a.status = 'COMPLETED'), 0) c,"                   \
	"  coalesce(sum(a.n) FILTER (WHERE a.status = 'FAILED'), 0) f,"                      \
	"  coalesce(sum(a.n) FILTER (WHERE a.status = 'CANCELLED'), 0) x,"                   \
	"  sum(a.i) i, sum(a.c) k, stats_hist_sum(a.w) w, stats_hist_sum(a.r) r"             \
	"  FROM agg a, LATERAL (VALUES (a.model_id), ('')) k(model_id) GROUP BY 1, 2, 3),"  \
	" targets AS (SELECT model_id, size_bucket, day FROM delta UNION"                    \
	"  SELECT c.model_id, c.size_bucket, c.day FROM request_stats_cum c"                 \
	"  JOIN (SELECT model_id, size_bucket, min(day) d0 FROM delta GROUP BY 1, 2) e"      \
	"  USING (model_id, size_bucket) WHERE c.day > e.d0),"                               \
	" cum AS (INSERT INTO request_stats_cum AS u (model_id, size_bucket, day, completed,"\
	"  failed, cancelled, inputs, cached, wait_hist, run_hist)"                          \
	"  SELECT t.model_id, t.size_bucket, t.day,"                                         \
	"  coalesce(b.completed, 0) + sum(coalesce(d.c, 0)) OVER w,"                         \
	"  coalesce(b.failed, 0) + sum(coalesce(d.f, 0)) OVER w,"                            \
	"  coalesce(b.cancelled, 0) + sum(coalesce(d.x, 0)) OVER w,"                         \
	"  coalesce(b.inputs, 0) + sum(coalesce(d.i, 0)) OVER w,"                            \
	"  coalesce(b.cached, 0) + sum(coalesce(d.k, 0)) OVER w,"                            \
	"  stats_hist_step(coalesce(b.wait_hist, stats_hist('{}')), stats_hist_sum(d.w) OVER w)," \
	"  stats_hist_step(coalesce(b.run_hist, stats_hist('{}')), stats_hist_sum(d.r) OVER w)"  \
	"  FROM targets t LEFT JOIN delta d USING (model_id, size_bucket, day)"              \
	"  LEFT JOIN LATERAL (SELECT * FROM request_stats_cum c WHERE c.model_id = t.model_id" \
	"   AND c.size_bucket = t.size_bucket AND c.day <= t.day ORDER BY c.day DESC LIMIT 1) b" \
	"  ON true WINDOW w AS (PARTITION BY t.model_id, t.size_bucket ORDER BY t.day)"     \
	"  ON CONFLICT (model_id, size_bucket, day) DO UPDATE SET completed = excluded.completed," \
	"  failed = excluded.failed, cancelled = excluded.cancelled, inputs = excluded.inputs," \
	"  cached = excluded.cached, wait_hist = excluded.wait_hist, run_hist = excluded.run_hist)"

/* The per-day tables only add (ON CONFLICT ... + excluded). */
#define FOLD_DAYS                                                                            \
	" md AS (INSERT INTO request_stats_model_day AS u (day, model_id, completed, failed,"\
	"  cancelled, inputs, cached) SELECT day, model_id,"                                 \
	"  coalesce(sum(n) FILTER (WHERE status = 'COMPLETED'), 0),"                         \
	"  coalesce(sum(n) FILTER (WHERE status = 'FAILED'), 0),"                            \
	"  coalesce(sum(n) FILTER (WHERE status = 'CANCELLED'), 0), sum(i), sum(c)"          \
	"  FROM agg GROUP BY 1, 2 ON CONFLICT (day, model_id) DO UPDATE SET"                 \
	"  completed = u.completed + excluded.completed, failed = u.failed + excluded.failed," \
	"  cancelled = u.cancelled + excluded.cancelled, inputs = u.inputs + excluded.inputs," \
	"  cached = u.cached + excluded.cached),"                                             \
	" rs AS (INSERT INTO request_stats_reason_day AS u (day, model_id, failure_reason,"  \
	"  requests) SELECT day, model_id, failure_reason, sum(n) FROM agg"                  \
	"  WHERE failure_reason <> '' GROUP BY 1, 2, 3"                                      \
	"  ON CONFLICT (day, model_id, failure_reason) DO UPDATE SET"                        \
	"  requests = u.requests + excluded.requests),"

static int fold_batch(struct db *db, int batch)
{
	const char *p[1] = {DB_INT(batch)};

	return db_affected(db_prep(db, "stats_fold",
		"WITH moved AS (DELETE FROM request_stats_pending WHERE id IN"
		"  (SELECT id FROM request_stats_pending ORDER BY id LIMIT $1::int) RETURNING *),"
		" agg AS (SELECT day, model_id, status, failure_reason, size_bucket, count(*) n,"
		"  sum(inputs) i, sum(cached) c, stats_hist(array_agg(wait_bucket)) w,"
		"  stats_hist(array_agg(run_bucket)) r FROM moved GROUP BY 1, 2, 3, 4, 5),"
		FOLD_DAYS FOLD_CUM
		" INSERT INTO request_stats_day AS d (day, model_id, status, failure_reason,"
		"  size_bucket, requests, inputs, cached, wait_hist, run_hist)"
		" SELECT * FROM agg ON CONFLICT (day, model_id, status, failure_reason, size_bucket)"
		" DO UPDATE SET requests = d.requests + excluded.requests,"
		"  inputs = d.inputs + excluded.inputs, cached = d.cached + excluded.cached,"
		"  wait_hist = stats_hist_add(d.wait_hist, excluded.wait_hist),"
		"  run_hist = stats_hist_add(d.run_hist, excluded.run_hist)",
		1, p));
}

int db_stats_fold(struct db *db, int batch)
{
	int n;

	/* one fold at a time (janitors of several replicas, modelhubctl):
	 * the running totals are computed from the rows as they were */
	if (db_begin(db) < 0)
		return -1;
	if (db_done(db_prep(db, "stats_fold_lock",
			    "SELECT pg_advisory_xact_lock(hashtext('modelhub.stats_fold'))", 0, NULL)) < 0 ||
	    (n = fold_batch(db, batch)) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return n;
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
