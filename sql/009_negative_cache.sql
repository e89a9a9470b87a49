-- 009 — the negative cache and the cost of isolating failing inputs (issue 20).
--
-- input_failure: an input that failed in a model call of its own (or was
-- found bad by elimination: its batch failed, every other part passed), per
-- model version (key = cachekey of the trimmed input, as in input_cache; the
-- input itself is not kept). The runner does not send such an input to that
-- version again: it gets a null record and the remembered error at once.
-- Never read as a result; deleted with the model's cache (db_model_clear_cache)
-- and with the model. Only whole-batch rejections (HTTP 500, a failed ASYNC
-- job, a wrong record count) are remembered, never a 503 or a timeout,
-- which may pass.
--
-- work_request counters, updated while the request runs (runner.c):
-- isolation_ms, the time spent from a chunk's failed call to the end of
-- isolating its bad inputs; screened_count, inputs rejected by the SMILES
-- screen (lib/smiles.c) before any call; known_bad_count, inputs found in
-- input_failure.

CREATE TABLE IF NOT EXISTS input_failure (
    model_id      text NOT NULL REFERENCES model(id) ON DELETE CASCADE,
    model_version text NOT NULL,
    input_key     bytea NOT NULL,
    error         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, model_version, input_key)
);

ALTER TABLE work_request ADD COLUMN IF NOT EXISTS isolation_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE work_request ADD COLUMN IF NOT EXISTS screened_count integer NOT NULL DEFAULT 0;
ALTER TABLE work_request ADD COLUMN IF NOT EXISTS known_bad_count integer NOT NULL DEFAULT 0;
