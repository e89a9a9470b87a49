/*
 * db_model.h — the model catalogue (table model): validation shared by the
 * API (api_models.c) and modelhubctl (add-model), and the queries.
 *
 * Runs in: modelhub-fcgi workers, modelhubctl. Called by: api_models.c,
 * src/ctl/ctl_model.c, and anything that needs a model as JSON.
 * Owns: nothing global. Strings returned through `char **json_out` are
 * malloc'd; the caller frees them.
 *
 * JSON shape of a model (snake_case, = the columns of table model):
 * id, enabled, execution_mode, image, image_tag, local_command (array of
 * strings or null), port, cpu_request_m, cpu_limit_m, memory_request_mib,
 * memory_limit_mib, disable_memory_limit, max_instances, idle_seconds,
 * cache_enabled, max_input_chars, model_version, description, details
 * (object), identification (title, slug, interpretation, publication,
 * source_code, license: text or null; target_organisms, biomedical_areas,
 * tasks, input_types, output_types: arrays of strings), version,
 * created_at, updated_at (ISO 8601 UTC).
 * Every change runs in one transaction with `NOTIFY model_changed, '<id>'`.
 */
#ifndef MH_DB_MODEL_H
#define MH_DB_MODEL_H

#include <json-c/json.h>

#include "db/db.h"

#define DB_MODEL_ID_MAX 64

/* Fields only admins see: how the hub runs a model and what it may use
 * (issue 18: never local_command, image or resources for anyone else).
 * GET /api/models and /api/models/{id} drop them for other callers; the
 * same list as a C initialiser and as an SQL text[] (keep them equal). */
#define DB_MODEL_PRIVATE_FIELDS                                                            \
	"local_command", "image", "image_tag", "port", "cpu_request_m", "cpu_limit_m",    \
		"memory_request_mib", "memory_limit_mib", "disable_memory_limit",           \
		"max_instances", "idle_seconds"
#define DB_MODEL_PRIVATE_SQL                                                               \
	"ARRAY['local_command', 'image', 'image_tag', 'port', 'cpu_request_m', 'cpu_limit_m'," \
	" 'memory_request_mib', 'memory_limit_mib', 'disable_memory_limit', 'max_instances',"  \
	" 'idle_seconds']"

enum db_model_mode {
	DB_MODEL_CREATE, /* id required; absent fields take the column defaults */
	DB_MODEL_PATCH,  /* every field optional; id, if given, must not change */
	DB_MODEL_UPSERT, /* modelhubctl add-model: create or update by id */
};

/* 1 when id matches ^[a-z0-9][a-z0-9_.-]{0,63}$. */
int db_model_valid_id(const char *id);

/* Check the fields of m one by one (types, ranges, id pattern, unknown
 * keys). Each problem is added to *fields (created when NULL) as
 * field -> message. Returns the number of problems. Cross-field rules that
 * need the stored row (requests <= limits) are checked by db_model_write. */
int db_model_validate(json_object *m, enum db_model_mode mode, json_object **fields);

/* Cross-field rules on m merged over cur (the stored model, or NULL for
 * the column defaults). Same contract as db_model_validate. */
int db_model_validate_merged(json_object *m, json_object *cur, json_object **fields);

/* {"items":[...]} of all models (enabled ones only unless all). NULL on error. */
char *db_model_list_json(struct db *db, int all);

/* The catalogue for `modelhubctl list-models`, by id: id, enabled,
 * execution_mode, cpu_request_m, cpu_limit_m, memory_request_mib,
 * memory_limit_mib, max_instances, idle_seconds, version. NULL on error. */
PGresult *db_model_table(struct db *db);

/* One model: 0 found, 1 not found, -1 error. enabled/version may be NULL. */
int db_model_get_json(struct db *db, const char *id, char **json_out, int *enabled,
		      int *version);

/* Outcome of db_model_write and db_model_delete. */
enum db_model_rc {
	DB_MODEL_ERROR = -1, /* database error (see db_sqlstate) */
	DB_MODEL_OK = 0,
	DB_MODEL_NOT_FOUND,  /* no such model (PATCH, delete) */
	DB_MODEL_STALE,      /* PATCH: version changed (*cur_version = the current one) */
	DB_MODEL_INVALID,    /* invalid after merging (*fields filled) */
	DB_MODEL_DUPLICATE,  /* CREATE: the id exists */
	DB_MODEL_BUSY,       /* delete: queued/running requests or live instances */
};

/* A change to write: mode (see enum db_model_mode), the model id, the
 * validated fields m; for DB_MODEL_PATCH, expect_version is the version
 * the client saw (the update happens only if it is still current), and
 * cur_version (may be NULL) receives the current one when stale. Cross-
 * field problems go to *fields (created when NULL). */
struct db_model_change {
	enum db_model_mode mode;
	const char *id;
	json_object *m;
	int expect_version;
	int *cur_version;
	json_object **fields;
};
/* Create, update or upsert a model that passed db_model_validate: OK
 * (*json_out = the stored model, malloc()ed; *created, when not NULL, says
 * whether UPSERT created it), NOT_FOUND, STALE, INVALID, DUPLICATE, ERROR. */
enum db_model_rc db_model_write(struct db *db, const struct db_model_change *c, char **json_out,
				int *created);

/* Delete a model with its finished requests: OK, NOT_FOUND, BUSY (it has
 * QUEUED/RUNNING requests or instances not TERMINATED), ERROR. */
enum db_model_rc db_model_delete(struct db *db, const char *id);

/* Delete the input_cache rows of a model and its negative cache
 * (input_failure, sql/009; both counted in *deleted): 0 (*deleted set), 1 no such
 * model, -1 error. */
int db_model_clear_cache(struct db *db, const char *id, long *deleted);

/* ---- db_catalog.c: import of an Ersilia catalogue ---- */
/* The model fields of one catalogue record (identification only; a new
 * object the caller puts), id filled from its Identifier; NULL when the
 * record has no valid identifier. Pure: no database. */
json_object *db_catalog_record(json_object *rec, char id[DB_MODEL_ID_MAX + 1]);
/* Import catalog (an array of records, or one): each registered model's
 * identification fields updated; unregistered ones created disabled when
 * create, else skipped; a record that fails validation (or whose title
 * another model has) skipped with its reason. Returns the report
 * {"updated":[ids], "created":[ids], "skipped":[{identifier, reason}]}
 * (caller puts it), or NULL on a database error (records before it stay
 * written: each model is its own transaction). */
json_object *db_catalog_import(struct db *db, json_object *catalog, int create);

#endif
