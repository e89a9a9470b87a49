-- 015 — the runner's event loop (issue 15) and its enforcement that the
-- abuse work (issue 17) relies on.
--
-- model.time_budget_s: seconds per input a model call may take (a call of
-- n inputs is aborted after n × time_budget_s; 0 = no budget). The request
-- then fails TIME_BUDGET_EXCEEDED and the instance, which may still be
-- computing, is recycled.
--
-- The reason joins the failure_reason check in place when missing (as in
-- 005), so this runs in any order with other migrations that extend the
-- check, and running it twice changes nothing.
ALTER TABLE model ADD COLUMN IF NOT EXISTS time_budget_s integer NOT NULL DEFAULT 0;

DO $$
DECLARE
    def text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'model'::regclass AND conname = 'model_time_budget_s_check') THEN
        ALTER TABLE model ADD CONSTRAINT model_time_budget_s_check CHECK (time_budget_s >= 0);
    END IF;
    SELECT pg_get_constraintdef(c.oid) INTO def
      FROM pg_constraint c
     WHERE c.conrelid = 'work_request'::regclass
       AND c.conname = 'work_request_failure_reason_check';
    IF def IS NOT NULL AND position('''TIME_BUDGET_EXCEEDED''' IN def) = 0 THEN
        EXECUTE 'ALTER TABLE work_request DROP CONSTRAINT work_request_failure_reason_check';
        EXECUTE 'ALTER TABLE work_request ADD CONSTRAINT work_request_failure_reason_check '
                || replace(def, 'ARRAY[', 'ARRAY[' || quote_literal('TIME_BUDGET_EXCEEDED') || '::text, ');
    END IF;
END $$;
