-- 014 — "size instances from the request" (issue 16), opt-in per model.
--
-- model.size_from_request: a new instance of the model starts with the
-- recommendation of the input-size bucket of the request it is started
-- for (by_input_size), and calls of at most the largest chunk whose
-- call-size bucket (by_call_size) fits the largest node.
-- model_instance.sized_inputs: the request size it was sized for (NULL: it
-- was started with the model's values); its cpu_*/memory_* columns hold the
-- values it got. model_instance.chunk_size: the largest call the runner
-- sends it, for every request it serves (NULL: hub.chunk_size).
-- Idempotent.
ALTER TABLE model ADD COLUMN IF NOT EXISTS size_from_request boolean NOT NULL DEFAULT false;

ALTER TABLE model_instance
    ADD COLUMN IF NOT EXISTS sized_inputs integer,
    ADD COLUMN IF NOT EXISTS chunk_size integer;
