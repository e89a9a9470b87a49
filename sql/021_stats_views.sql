-- 021 — stats rollups shaped like the answer of GET /api/stats (issue 18).
--
-- 016's request_stats_day holds the finest grain (day, model, outcome,
-- reason, size bucket) with two 96-bucket histograms a row. Reading it for
-- a year of all models meant thousands of rows and hundreds of thousands of
-- histogram numbers per answer (bench/stats: p95 130-365 ms with 1 M
-- requests). These three tables hold what each part of the answer needs,
-- so a read returns about as many rows as the answer has lines:
--
-- request_stats_model_day: one row per (finish day, model): the outcome
--   counts, inputs and cached inputs (by_model_day, by_day, by_model,
--   totals).
-- request_stats_reason_day: one row per (finish day, model, failure
--   reason) of FAILED and CANCELLED requests (failure_reasons).
-- request_stats_cum: running totals per (model, size bucket), model ''
--   standing for all models: the row of day d holds the counts and the two
--   duration histograms (queue wait, run; 016's buckets) of every request
--   finished on or before d. A row exists for each day that had finished
--   requests of the key. The part of a range [from, to] is the latest row
--   with day <= to minus the latest row with day < from: 12 rows per answer
--   whatever the range and however many models (by_size and the queue-wait
--   and run percentiles).
--
-- All three are written only by the fold (db_stats_fold, the janitor and
-- `modelhubctl stats-fold`), together with request_stats_day, from the
-- same batch of request_stats_pending rows, in one transaction under an
-- advisory lock (the running totals are computed from the rows before the
-- fold: two folds at once would lose one). Like request_stats_day they
-- outlive the requests (retention and "delete my data" remove requests,
-- not counts) and name no user.
--
-- Upgrade: migrate before starting this version. An older janitor still
-- running after this migration folds into request_stats_day only, and the
-- requests it folds would be missing from these tables.

CREATE TABLE IF NOT EXISTS request_stats_model_day (
    day        date NOT NULL,
    model_id   text NOT NULL,
    completed  bigint NOT NULL DEFAULT 0,
    failed     bigint NOT NULL DEFAULT 0,
    cancelled  bigint NOT NULL DEFAULT 0,
    inputs     bigint NOT NULL DEFAULT 0,
    cached     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model_id)
);

CREATE TABLE IF NOT EXISTS request_stats_reason_day (
    day            date NOT NULL,
    model_id       text NOT NULL,
    failure_reason text NOT NULL,
    requests       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model_id, failure_reason)
);

CREATE TABLE IF NOT EXISTS request_stats_cum (
    model_id    text NOT NULL,
    size_bucket smallint NOT NULL CHECK (size_bucket BETWEEN 0 AND 5),
    day         date NOT NULL,
    completed   bigint NOT NULL,
    failed      bigint NOT NULL,
    cancelled   bigint NOT NULL,
    inputs      bigint NOT NULL,
    cached      bigint NOT NULL,
    wait_hist   bigint[] NOT NULL,
    run_hist    bigint[] NOT NULL,
    PRIMARY KEY (model_id, size_bucket, day)
);

-- The element-wise sum of histograms (strict: NULLs are skipped, and the
-- sum of none is NULL).
CREATE OR REPLACE FUNCTION stats_hist_step(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT array_agg(x + y ORDER BY n) FROM unnest(a, b) WITH ORDINALITY u(x, y, n)
$$;
CREATE OR REPLACE AGGREGATE stats_hist_sum(bigint[]) (SFUNC = stats_hist_step, STYPE = bigint[]);

-- Backfill from what 016 folded (once: only while the new tables are
-- empty). Rows still pending are folded into all four tables later.
INSERT INTO request_stats_model_day (day, model_id, completed, failed, cancelled, inputs, cached)
SELECT day, model_id, coalesce(sum(requests) FILTER (WHERE status = 'COMPLETED'), 0),
       coalesce(sum(requests) FILTER (WHERE status = 'FAILED'), 0),
       coalesce(sum(requests) FILTER (WHERE status = 'CANCELLED'), 0), sum(inputs), sum(cached)
FROM request_stats_day
WHERE NOT EXISTS (SELECT 1 FROM request_stats_model_day)
GROUP BY day, model_id;

INSERT INTO request_stats_reason_day (day, model_id, failure_reason, requests)
SELECT day, model_id, failure_reason, sum(requests) FROM request_stats_day
WHERE failure_reason <> '' AND NOT EXISTS (SELECT 1 FROM request_stats_reason_day)
GROUP BY 1, 2, 3;

INSERT INTO request_stats_cum (model_id, size_bucket, day, completed, failed, cancelled, inputs,
                               cached, wait_hist, run_hist)
SELECT model_id, size_bucket, day,
       sum(c) OVER w, sum(f) OVER w, sum(x) OVER w, sum(i) OVER w, sum(k) OVER w,
       stats_hist_sum(wh) OVER w, stats_hist_sum(rh) OVER w
FROM (SELECT m.model_id, d.size_bucket, d.day,
             coalesce(sum(d.requests) FILTER (WHERE d.status = 'COMPLETED'), 0) c,
             coalesce(sum(d.requests) FILTER (WHERE d.status = 'FAILED'), 0) f,
             coalesce(sum(d.requests) FILTER (WHERE d.status = 'CANCELLED'), 0) x,
             sum(d.inputs) i, sum(d.cached) k,
             stats_hist_sum(d.wait_hist) wh, stats_hist_sum(d.run_hist) rh
      FROM request_stats_day d, LATERAL (VALUES (d.model_id), ('')) m(model_id)
      WHERE NOT EXISTS (SELECT 1 FROM request_stats_cum)
      GROUP BY 1, 2, 3) per_day
WINDOW w AS (PARTITION BY model_id, size_bucket ORDER BY day);
