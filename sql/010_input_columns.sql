-- 010 — the other columns of an uploaded CSV, kept with each input (issue 21).
--
-- A CSV with several columns (inchikey,smiles / id,smiles / smiles,activity)
-- has one input column (chosen by src/fcgi/csvin.c); the rest ride along and
-- come back in the results before the model's outputs, in the Ersilia CLI's
-- shape key,input,<other columns>,<outputs> (docs/api.md "Results").
-- work_request_input.key: the value of the identifier column (a column named
-- id, key, name or inchikey, else the first column when the input is not
-- it), NULL when the request has none; extra: the values of the remaining
-- columns as a JSON array of strings, in file order, NULL when there are
-- none. The column names are in work_request.metadata->'input_columns'
-- ({"input": name, "key": name|null, "extra": [names]}), written at submit.
-- Both columns are nullable without a default: adding them rewrites nothing.

ALTER TABLE work_request_input ADD COLUMN IF NOT EXISTS key text;
ALTER TABLE work_request_input ADD COLUMN IF NOT EXISTS extra jsonb;
