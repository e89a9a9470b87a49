/*
 * db_stats.h — counts and status read for /metrics and /api/health, and
 * the request statistics of GET /api/stats (rollups of sql/008).
 *
 * Runs in: modelhub-fcgi workers; modelhubd's janitor (db_stats_fold).
 * Called by: api_metrics.c, api_health.c, api_stats.c, janitor.c.
 * Shared state: reads work_request, model_instance, schema_migration,
 * request_stats_day and request_stats_pending; the fold moves pending rows
 * into request_stats_day.
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

/* Number of duration buckets of the stats histograms (sql/008). */
#define DB_STATS_HIST 96
/* Finished requests with day in [from, to] (YYYY-MM-DD, UTC), of one
 * model when model is non-empty, ordered by day then model: columns day,
 * model_id, status, failure_reason ('' none), size_bucket, requests,
 * inputs, cached, wait_hist, run_hist (bigint[] text "{n,...}"). A key may
 * repeat (rolled-up and pending rows): callers add. */
PGresult *db_stats_rows(struct db *db, const char *from, const char *to, const char *model);
/* One row: QUEUED and RUNNING requests now (of one model when non-empty). */
PGresult *db_stats_open(struct db *db, const char *model);
/* The janitor: folds up to batch pending rows into request_stats_day in
 * one statement. Rows of request_stats_day written (0: nothing pending),
 * or -1. */
int db_stats_fold(struct db *db, int batch);
/* VACUUM ANALYZE both stats tables (outside any transaction): after a
 * bulk fold the pending table is a heap of dead rows that every reader's
 * scan would still walk until autovacuum runs. 0 / -1. */
int db_stats_vacuum(struct db *db);

#endif
