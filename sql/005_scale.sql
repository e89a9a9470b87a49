-- 005 — precise failure reasons for cluster errors (issue 15).
--
-- A request whose instance could not be started fails, once the instance
-- start deadline has passed, with:
--   NO_CAPACITY    a resource quota refused the pod (403 "exceeded quota"),
--                  or the pod stayed Unschedulable (no node can take it)
--   CLUSTER_ERROR  the API server did not accept the pod (429, 5xx,
--                  timeouts, connection resets), retried with back-off
-- instead of MODEL_ERROR, which stays for the model's own faults.
--
-- Each reason joins the constraint's array in place when it is missing, so
-- this works whatever an earlier or later migration (004 also adds
-- NO_CAPACITY) keeps in the check, and running it twice changes nothing.
DO $$
DECLARE
    def text;
    reason text;
BEGIN
    FOREACH reason IN ARRAY ARRAY['NO_CAPACITY', 'CLUSTER_ERROR'] LOOP
        SELECT pg_get_constraintdef(c.oid) INTO def
          FROM pg_constraint c
         WHERE c.conrelid = 'work_request'::regclass
           AND c.conname = 'work_request_failure_reason_check';
        IF def IS NOT NULL AND position('''' || reason || '''' IN def) = 0 THEN
            EXECUTE 'ALTER TABLE work_request DROP CONSTRAINT work_request_failure_reason_check';
            EXECUTE 'ALTER TABLE work_request ADD CONSTRAINT work_request_failure_reason_check '
                    || replace(def, 'ARRAY[', 'ARRAY[' || quote_literal(reason) || '::text, ');
        END IF;
    END LOOP;
END $$;
