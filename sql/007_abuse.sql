-- 007 — abuse resistance (issue 17): per-model input limits, per-caller quotas.
--
-- model.max_input_chars: the longest input (in characters) the API accepts
-- for the model; RDKit parsing is super-linear, so a 4096-character SMILES
-- could hold an instance for minutes. 422 input_too_long names the limit.
-- (model.time_budget_s, the per-input time budget the runner enforces, is
-- sql/015's.)
-- work_request.stored_bytes: the bytes a request keeps in the database
-- (inputs, extra columns, header), counted against the caller's
-- quota.<role>.stored_bytes until the janitor's retention deletes it.
ALTER TABLE model ADD COLUMN IF NOT EXISTS max_input_chars integer NOT NULL DEFAULT 512;
ALTER TABLE model DROP CONSTRAINT IF EXISTS model_max_input_chars_check;
ALTER TABLE model ADD CONSTRAINT model_max_input_chars_check
    CHECK (max_input_chars BETWEEN 1 AND 4096);
ALTER TABLE work_request ADD COLUMN IF NOT EXISTS stored_bytes bigint NOT NULL DEFAULT 0;
-- fair claim (db_work_claim.c): the queued callers of a model by a loose
-- index scan, each caller's first queued requests, and its last start; the
-- caller is coalesce(user_id, -anon_session_id, 0) as in the query.
DROP INDEX IF EXISTS work_request_model_started_idx;
CREATE INDEX IF NOT EXISTS work_request_fair_queue_idx
    ON work_request (model_id, (coalesce(user_id, -anon_session_id, 0)), id)
    WHERE status = 'QUEUED';
CREATE INDEX IF NOT EXISTS work_request_fair_started_idx
    ON work_request (model_id, (coalesce(user_id, -anon_session_id, 0)), started_at)
    WHERE started_at IS NOT NULL;
