-- 006 — recommendations that hold up in use (issue 16, DESIGN.md §6).
--
-- instance_metrics outlives the request and instance rows: its own
-- retention (recommend.metrics_retention_days, default 90, janitor), so
-- the foreign key that deleted it with the 7-day instance retention goes.
-- New columns, NULL when not measured (never read as 0):
--   cpu_busy_m, mem_busy_mib  low percentile of the samples taken while the
--                             instance served a call (BUSY): the request basis
--   busy_samples              samples behind them
--   throttled_pct             CFS periods throttled, percent (cgroup cpu.stat
--                             nr_throttled/nr_periods, or the kubelet's
--                             container_cpu_cfs_throttled_periods_total)
--   call_inputs               largest chunk the runner sent in one model call
--   request_inputs            largest request (inputs) the instance served
--   sized_from_request        the instance was started with a bucket's
--                             recommendation ("size instances from the request")

ALTER TABLE instance_metrics DROP CONSTRAINT IF EXISTS instance_metrics_instance_id_fkey;

ALTER TABLE instance_metrics
    ADD COLUMN IF NOT EXISTS cpu_busy_m double precision,
    ADD COLUMN IF NOT EXISTS mem_busy_mib double precision,
    ADD COLUMN IF NOT EXISTS busy_samples integer,
    ADD COLUMN IF NOT EXISTS throttled_pct double precision,
    ADD COLUMN IF NOT EXISTS call_inputs integer,
    ADD COLUMN IF NOT EXISTS request_inputs integer,
    ADD COLUMN IF NOT EXISTS sized_from_request boolean NOT NULL DEFAULT false;

CREATE INDEX IF NOT EXISTS instance_metrics_persisted_idx ON instance_metrics (persisted_at);
