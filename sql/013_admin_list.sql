-- 013 — the admin request list at 1,000,000 requests (issue 15).
--
-- GET /api/admin/requests is ordered newest first by (created_at, id) and
-- pages with a keyset on the same pair (db_request_admin_list), so each
-- index below ends in (created_at, id): a filter on its leading columns plus
-- an optional one-day range on created_at is one ordered range scan that
-- stops after the page, whether rows match or not.
--   (created_at, id)                               no filter, one day; also
--                                                  the retention sweep's
--                                                  created_at < ... (it
--                                                  replaces the plain
--                                                  created_at index)
--   (user_id, model_id, status, created_at, id)    a user with a model (and
--                                                  a status): a heavy user
--                                                  owns 30 % of the rows
--   (model_id, status, created_at, id)             a model with a status
-- Combinations with anon_session_id use work_request_anon_idx (a session
-- holds few rows); status QUEUED uses work_request_queue_idx (partial).
-- Measured with bench/admin-list (docs/performance.md).

CREATE INDEX IF NOT EXISTS work_request_created_id_idx ON work_request (created_at, id);
DROP INDEX IF EXISTS work_request_created_idx;
CREATE INDEX IF NOT EXISTS work_request_user_model_idx
    ON work_request (user_id, model_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS work_request_model_status_idx
    ON work_request (model_id, status, created_at, id);
