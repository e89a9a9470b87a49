-- 016 — stats rollups and model identification (issue 18).
--
-- Kept apart from 008 (which a database may already have applied) so an
-- upgrade picks these up with a plain `modelhubctl migrate`. Every statement
-- is re-runnable (IF NOT EXISTS, OR REPLACE, DROP ... IF EXISTS, a guarded
-- backfill), which t/179 checks by applying it twice.

-- ---- Stats (GET /api/stats): rollups, not a scan per view.
--
-- request_stats_day: one row per (finish day UTC, model, outcome, failure
-- reason ('' when none), input-size bucket) with request and input counts
-- and two duration histograms (queue wait = started - created, run =
-- finished - started) of 96 log buckets: bucket 0 is < 10 ms, bucket i >= 1
-- is [10 ms * 2^((i-1)/4), 10 ms * 2^(i/4)) (19 % wide; the last one is
-- open-ended), so a percentile is read within 19 %. Rows outlive the
-- requests (retention deletes requests, not their counts) and hold no
-- user, so "delete my data" leaves only anonymous counts.
--
-- The hot path never updates a shared row: a trigger appends one row to
-- request_stats_pending when a request reaches COMPLETED, FAILED or
-- CANCELLED from QUEUED/RUNNING (or is stored finished), and the janitor
-- folds pending rows into request_stats_day every tick
-- (db_stats_fold). Readers add the pending rows, so the answer is exact
-- between folds too.
--
-- Size buckets (input_count): 0: 1, 1: 2-10, 2: 11-100, 3: 101-1000,
-- 4: 1001-10000, 5: more.

CREATE TABLE IF NOT EXISTS request_stats_day (
    day            date NOT NULL,
    model_id       text NOT NULL,
    status         text NOT NULL CHECK (status IN ('COMPLETED', 'FAILED', 'CANCELLED')),
    failure_reason text NOT NULL DEFAULT '',
    size_bucket    smallint NOT NULL CHECK (size_bucket BETWEEN 0 AND 5),
    requests       bigint NOT NULL DEFAULT 0,
    inputs         bigint NOT NULL DEFAULT 0,
    cached         bigint NOT NULL DEFAULT 0,
    wait_hist      bigint[] NOT NULL,
    run_hist       bigint[] NOT NULL,
    PRIMARY KEY (day, model_id, status, failure_reason, size_bucket)
);

CREATE TABLE IF NOT EXISTS request_stats_pending (
    id             bigserial PRIMARY KEY,
    day            date NOT NULL,
    model_id       text NOT NULL,
    status         text NOT NULL,
    failure_reason text NOT NULL,
    size_bucket    smallint NOT NULL,
    inputs         integer NOT NULL,
    cached         integer NOT NULL,
    wait_bucket    smallint,
    run_bucket     smallint
);

-- The histogram bucket of a duration in milliseconds (NULL: no sample).
CREATE OR REPLACE FUNCTION stats_ms_bucket(ms double precision) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN ms IS NULL OR ms < 0 THEN NULL WHEN ms < 10 THEN 0
           ELSE least(95, 1 + floor(4 * ln(ms / 10) / ln(2)))::smallint END
$$;

CREATE OR REPLACE FUNCTION stats_size_bucket(n integer) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN n <= 1 THEN 0 WHEN n <= 10 THEN 1 WHEN n <= 100 THEN 2
           WHEN n <= 1000 THEN 3 WHEN n <= 10000 THEN 4 ELSE 5 END::smallint
$$;

-- The 96 counts of a list of bucket numbers (NULLs skipped).
CREATE OR REPLACE FUNCTION stats_hist(b smallint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(coalesce(c.n, 0) ORDER BY i.i)
    FROM generate_series(0, 95) i(i)
    LEFT JOIN (SELECT x, count(*) n FROM unnest(b) x WHERE x IS NOT NULL GROUP BY x) c ON c.x = i.i
$$;

CREATE OR REPLACE FUNCTION stats_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(x + y ORDER BY n) FROM unnest(a, b) WITH ORDINALITY u(x, y, n)
$$;

CREATE OR REPLACE FUNCTION work_request_stats_row() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO request_stats_pending (day, model_id, status, failure_reason, size_bucket,
                                       inputs, cached, wait_bucket, run_bucket)
    VALUES ((coalesce(NEW.finished_at, now()) AT TIME ZONE 'UTC')::date, NEW.model_id,
            NEW.status, coalesce(NEW.failure_reason, ''), stats_size_bucket(NEW.input_count),
            NEW.input_count, NEW.cached_count,
            stats_ms_bucket(extract(epoch FROM NEW.started_at - NEW.created_at) * 1000),
            stats_ms_bucket(extract(epoch FROM coalesce(NEW.finished_at, now())
                                              - NEW.started_at) * 1000));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS work_request_stats_done ON work_request;
CREATE TRIGGER work_request_stats_done
    AFTER UPDATE OF status ON work_request FOR EACH ROW
    WHEN (OLD.status IN ('QUEUED', 'RUNNING')
          AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED'))
    EXECUTE FUNCTION work_request_stats_row();
DROP TRIGGER IF EXISTS work_request_stats_stored ON work_request;
CREATE TRIGGER work_request_stats_stored
    AFTER INSERT ON work_request FOR EACH ROW
    WHEN (NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED'))
    EXECUTE FUNCTION work_request_stats_row();

-- Requests finished before this migration count too (once: only while
-- both tables are empty).
INSERT INTO request_stats_pending (day, model_id, status, failure_reason, size_bucket,
                                   inputs, cached, wait_bucket, run_bucket)
SELECT (coalesce(finished_at, created_at) AT TIME ZONE 'UTC')::date, model_id, status,
       coalesce(failure_reason, ''), stats_size_bucket(input_count), input_count, cached_count,
       stats_ms_bucket(extract(epoch FROM started_at - created_at) * 1000),
       stats_ms_bucket(extract(epoch FROM finished_at - started_at) * 1000)
FROM work_request
WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
  AND NOT EXISTS (SELECT 1 FROM request_stats_day)
  AND NOT EXISTS (SELECT 1 FROM request_stats_pending);

-- ---- Model identification (the Ersilia catalogue's fields), typed.
-- Shown to everyone (the public catalogue's cards and filters); written by
-- admins (PATCH /api/models/{id}, POST /api/models/import-catalog) and by
-- `modelhubctl import-catalog FILE`. Lists are text[] (never NULL: '{}'
-- when unknown) so cards filter on them without parsing JSON. A title, when
-- set, is unique in the catalogue regardless of case.
ALTER TABLE model ADD COLUMN IF NOT EXISTS title text;
ALTER TABLE model ADD COLUMN IF NOT EXISTS slug text;
ALTER TABLE model ADD COLUMN IF NOT EXISTS interpretation text;
ALTER TABLE model ADD COLUMN IF NOT EXISTS publication text;
ALTER TABLE model ADD COLUMN IF NOT EXISTS source_code text;
ALTER TABLE model ADD COLUMN IF NOT EXISTS license text;
ALTER TABLE model ADD COLUMN IF NOT EXISTS target_organisms text[] NOT NULL DEFAULT '{}';
ALTER TABLE model ADD COLUMN IF NOT EXISTS biomedical_areas text[] NOT NULL DEFAULT '{}';
ALTER TABLE model ADD COLUMN IF NOT EXISTS tasks text[] NOT NULL DEFAULT '{}';
ALTER TABLE model ADD COLUMN IF NOT EXISTS input_types text[] NOT NULL DEFAULT '{}';
ALTER TABLE model ADD COLUMN IF NOT EXISTS output_types text[] NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX IF NOT EXISTS model_title_key ON model (lower(title)) WHERE title IS NOT NULL;
