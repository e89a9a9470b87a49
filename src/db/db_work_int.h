/*
 * db_work_int.h — private to the db_work_*.c files: the model columns the
 * runner reads and the parser of one such row.
 *
 * Called by: db_work_model.c, db_work_claim.c. Not for use outside src/db.
 */
#ifndef MH_DB_WORK_INT_H
#define MH_DB_WORK_INT_H

#include "db/db_work.h"

#define MODEL_FIELDS \
	"enabled, execution_mode, COALESCE(image, ''), image_tag," \
	" array_to_json(local_command)::text, port, cpu_request_m, cpu_limit_m," \
	" memory_request_mib, memory_limit_mib, disable_memory_limit, max_instances," \
	" idle_seconds, cache_enabled, model_version, id," \
	" (lower(COALESCE(details->>'input', '')) = 'compound'" \
	"  OR (jsonb_typeof(details->'input') = 'array' AND details->'input' ? 'Compound'))" \
	" AND COALESCE(details->>'input_screen', '') <> 'false', time_budget_s"
#define MODEL_COLS "SELECT " MODEL_FIELDS " FROM model"

/* One row of MODEL_COLS into *m: 1, 0 no row, -1 error; r is cleared. */
int db_work_model_fill(PGresult *r, struct work_model *m);

#endif
