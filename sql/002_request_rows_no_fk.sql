-- 002 — inputs and results of a work request without per-row foreign keys.
--
-- Why: a foreign key checks every inserted row against its parent with a
-- row lock (RI_FKey_check_ins). A 1000-input submit spent 4.5 ms of its
-- ~7 ms statement in those checks, and every stored chunk of results paid
-- the same per row. Both tables are only ever written with a parent that
-- exists at that moment: inputs in the same statement that inserts the
-- request (db_request_submit), results by the runner holding the
-- request's lease or by the submit itself (cache hits), both conditioned
-- on the request row. What the keys still gave is the cascade; a
-- statement-level trigger with a transition table keeps it (one DELETE
-- per child table per statement, whatever the number of requests, and
-- also for requests deleted by a cascade from their user).

ALTER TABLE work_request_input DROP CONSTRAINT IF EXISTS work_request_input_request_id_fkey;
ALTER TABLE work_request_result DROP CONSTRAINT IF EXISTS work_request_result_request_id_fkey;

-- SET search_path FROM CURRENT: the tables are found in the hub's schema
-- even when the delete comes from a session with another search_path.
CREATE FUNCTION work_request_purge_children() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM work_request_input WHERE request_id IN (SELECT id FROM gone);
    DELETE FROM work_request_result WHERE request_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;

CREATE TRIGGER work_request_purge_children
    AFTER DELETE ON work_request
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION work_request_purge_children();
