/*
 * db_stats.h — counts and status read for /metrics and /api/health, and
 * the request statistics of GET /api/stats (rollups of sql/016 and
 * sql/021).
 *
 * Runs in: modelhub-fcgi workers; modelhubd's janitor (db_stats_fold).
 * Called by: api_metrics.c, api_health.c, api_stats.c, janitor.c.
 * Shared state: reads work_request, model_instance, schema_migration,
 * request_stats_pending and the rollups of sql/021; the fold moves pending
 * rows into request_stats_day and the sql/021 tables.
 * Returns: a PGresult (PQclear()ed by the caller) or NULL on error.
 */
#ifndef MH_DB_STATS_H
#define MH_DB_STATS_H

#include "db/db.h"

/* Each two columns (label value, count), one row per label. */
PGresult *db_stats_requests(struct db *db);     /* by status, every status listed */
PGresult *db_stats_queue(struct db *db);        /* QUEUED per model */
PGresult *db_stats_instances(struct db *db);    /* by state, every state listed */
PGresult *db_stats_terminations(struct db *db); /* ended instances by reason */
/* One row: latest applied migration (NULL when none), current schema. */
PGresult *db_stats_health(struct db *db);

/* Number of duration buckets of the stats histograms (sql/016). */
#define DB_STATS_HIST 96
/* GET /api/stats over finish days [from, to] (YYYY-MM-DD, UTC), of one
 * model when model is non-empty ("" all), each from the rollups of
 * sql/021 plus the rows still pending (exact between folds):
 * db_stats_model_days: day, model_id, completed, failed, cancelled,
 *   inputs, cached; ordered by day then model; a key may come twice (the
 *   rolled-up and the pending part): callers add.
 * db_stats_reasons: failure_reason, requests; most frequent first.
 * db_stats_sizes: six rows, size buckets 0-5 in order: the bucket, then
 *   three groups of seven columns (completed, failed, cancelled, inputs,
 *   cached, wait_hist, run_hist as bigint[] text "{n,...}"): the running
 *   totals up to `to` ("hi"), up to the day before `from` ("lo"), and the
 *   pending rows; the range is hi - lo + pending. Empty strings (NULL)
 *   where a group has no row. */
PGresult *db_stats_model_days(struct db *db, const char *from, const char *to, const char *model);
PGresult *db_stats_reasons(struct db *db, const char *from, const char *to, const char *model);
PGresult *db_stats_sizes(struct db *db, const char *from, const char *to, const char *model);
/* One row: QUEUED and RUNNING requests now (of one model when non-empty). */
PGresult *db_stats_open(struct db *db, const char *model);
/* The janitor: folds up to batch pending rows into request_stats_day and
 * the tables of sql/021 in one statement, one fold at a time (advisory
 * lock, own transaction: not to be called inside one). Rows of
 * request_stats_day written (0: nothing pending), or -1. */
int db_stats_fold(struct db *db, int batch);
/* VACUUM ANALYZE both stats tables (outside any transaction): after a
 * bulk fold the pending table is a heap of dead rows that every reader's
 * scan would still walk until autovacuum runs. 0 / -1. */
int db_stats_vacuum(struct db *db);

#endif
