/*
 * db_model.c — implementation of db_model.h (model catalogue).
 *
 * Runs in: modelhub-fcgi workers, modelhubctl. Called by: api_models.c,
 * ctl_model.c.
 * Owns: nothing global.
 * Shared state: table model (read/written), input_cache and input_failure (rows deleted by
 * db_model_clear_cache); sends NOTIFY model_changed with the model id in
 * the same transaction as each change, so listeners (modelhubd) never see
 * a notification for an uncommitted row.
 *
 * DESIGN: one table of fields drives validation, so the API and the
 * command line reject exactly the same things and name every rejected
 * field. Writes never build SQL text: the validated object (only writable
 * keys) is bound as one jsonb parameter and applied with
 * jsonb_populate_record(<current row>, $2), which keeps the current value
 * of every key the client did not send. A create first inserts the bare id
 * (so the column defaults come from the schema, in one place) and then
 * applies the object in the same transaction. Cross-field rules (requests
 * <= limits) are checked in C against the locked current row so the error
 * names the field instead of surfacing a CHECK violation.
 */
#include "db/db_model.h"
#include "lib/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ftype {
	F_ID,    /* the model id */
	F_BOOL,
	F_INT,   /* integer in [min, max] */
	F_TEXT,  /* string, length in [min, max] bytes */
	F_TEXTN, /* same, or null */
	F_TAG,   /* image tag: [A-Za-z0-9_.-], 1..128 */
	F_MODE,  /* SYNC | ASYNC */
	F_ARGV,  /* null or array of non-empty strings, one holding {port} */
	F_OBJ,   /* JSON object */
	F_LIST,  /* array of at most max non-empty strings of at most 200 bytes */
	F_RO,    /* read-only (version, created_at, updated_at): ignored */
};

static const struct field {
	const char *name;
	enum ftype type;
	long min, max;
} fields_tab[] = {
	{"id", F_ID, 1, DB_MODEL_ID_MAX},
	{"enabled", F_BOOL, 0, 0},
	{"execution_mode", F_MODE, 0, 0},
	{"image", F_TEXTN, 1, 512},
	{"image_tag", F_TAG, 1, 128},
	{"local_command", F_ARGV, 1, 64},
	{"port", F_INT, 1, 65535},
	{"cpu_request_m", F_INT, 1, 1000000},
	{"cpu_limit_m", F_INT, 1, 1000000},
	{"memory_request_mib", F_INT, 1, 16777216},
	{"memory_limit_mib", F_INT, 1, 16777216},
	{"disable_memory_limit", F_BOOL, 0, 0},
	{"max_instances", F_INT, 0, 10000},
	{"time_budget_s", F_INT, 0, 86400},
	{"idle_seconds", F_INT, 0, 2147483647},
	{"cache_enabled", F_BOOL, 0, 0},
	{"max_input_chars", F_INT, 1, 4096},
	{"size_from_request", F_BOOL, 0, 0},
	{"model_version", F_TEXT, 1, 64},
	{"description", F_TEXT, 0, 4000},
	{"details", F_OBJ, 0, 0},
	/* identification (the Ersilia catalogue's fields, sql/016) */
	{"title", F_TEXTN, 1, 200},
	{"slug", F_TEXTN, 1, 100},
	{"interpretation", F_TEXTN, 0, 4000},
	{"publication", F_TEXTN, 0, 1000},
	{"source_code", F_TEXTN, 0, 1000},
	{"license", F_TEXTN, 0, 200},
	{"target_organisms", F_LIST, 0, 32},
	{"biomedical_areas", F_LIST, 0, 32},
	{"tasks", F_LIST, 0, 32},
	{"input_types", F_LIST, 0, 32},
	{"output_types", F_LIST, 0, 32},
	{"version", F_RO, 0, 0},
	{"created_at", F_RO, 0, 0},
	{"updated_at", F_RO, 0, 0},
};

#define NFIELDS (sizeof fields_tab / sizeof fields_tab[0])

/* The model as JSON, built by Postgres (text[] and jsonb map directly). */
#define MODEL_JSON "((to_jsonb(m) - 'created_at' - 'updated_at') || jsonb_build_object(" \
	"'created_at', iso(m.created_at), 'updated_at', iso(m.updated_at)))"

int db_model_valid_id(const char *id)
{
	size_t n;

	if (!id || !(islower((unsigned char)id[0]) || isdigit((unsigned char)id[0])))
		return 0;
	n = strlen(id);
	if (n > DB_MODEL_ID_MAX)
		return 0;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!islower(c) && !isdigit(c) && c != '_' && c != '.' && c != '-')
			return 0;
	}
	return 1;
}

static void bad(json_object **fields, int *n, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void bad(json_object **fields, int *n, const char *name, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!*fields)
		*fields = json_object_new_object();
	if (*fields && !json_object_object_get_ex(*fields, name, NULL))
		json_object_object_add(*fields, name, json_object_new_string(msg));
	(*n)++;
}

static int valid_tag(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return 0;
	return 1;
}

static void check_argv(json_object *v, const struct field *f, json_object **fields, int *n)
{
	size_t len;
	int has_port = 0;

	if (json_object_is_type(v, json_type_null))
		return;
	if (!json_object_is_type(v, json_type_array)) {
		bad(fields, n, f->name, "must be an array of strings or null");
		return;
	}
	len = json_object_array_length(v);
	if (len < (size_t)f->min || len > (size_t)f->max) {
		bad(fields, n, f->name, "must have %ld to %ld elements", f->min, f->max);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0 ||
		    json_object_get_string_len(e) > 4096) {
			bad(fields, n, f->name, "element %zu must be a non-empty string "
			    "(at most 4096 bytes)", i);
			return;
		}
		if (strstr(json_object_get_string(e), "{port}"))
			has_port = 1;
	}
	if (!has_port)
		bad(fields, n, f->name, "must contain {port} (the port the hub assigns)");
}

static void check_list(json_object *v, const struct field *f, json_object **fields, int *n)
{
	size_t len;

	if (!json_object_is_type(v, json_type_array)) {
		bad(fields, n, f->name, "must be an array of strings");
		return;
	}
	len = json_object_array_length(v);
	if (len > (size_t)f->max) {
		bad(fields, n, f->name, "must have at most %ld elements", f->max);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		size_t el = json_object_is_type(e, json_type_string)
				    ? (size_t)json_object_get_string_len(e) : 0;

		if (el == 0 || el > 200 || strlen(json_object_get_string(e)) != el) {
			bad(fields, n, f->name, "element %zu must be a non-empty string "
			    "(at most 200 bytes)", i);
			return;
		}
	}
}

static void check_field(const struct field *f, json_object *v, json_object **fields, int *n)
{
	const char *s;
	size_t len;
	int64_t i;

	switch (f->type) {
	case F_ID:
		if (!json_object_is_type(v, json_type_string) ||
		    !db_model_valid_id(json_object_get_string(v)))
			bad(fields, n, f->name, "must be 1 to 64 lower-case letters, digits, "
			    "'_', '.' or '-', starting with a letter or digit");
		break;
	case F_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			bad(fields, n, f->name, "must be true or false");
		break;
	case F_INT:
		if (!json_object_is_type(v, json_type_int)) {
			bad(fields, n, f->name, "must be an integer");
			break;
		}
		i = json_object_get_int64(v);
		if (i < f->min || i > f->max)
			bad(fields, n, f->name, "must be between %ld and %ld", f->min, f->max);
		break;
	case F_TEXTN:
		if (json_object_is_type(v, json_type_null))
			break;
		/* fall through */
	case F_TEXT:
	case F_TAG:
		if (!json_object_is_type(v, json_type_string)) {
			bad(fields, n, f->name, "must be a string");
			break;
		}
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (len < (size_t)f->min || len > (size_t)f->max || strlen(s) != len)
			bad(fields, n, f->name, "must be %ld to %ld bytes long", f->min, f->max);
		else if (f->type == F_TAG && !valid_tag(s))
			bad(fields, n, f->name, "may only hold letters, digits, '_', '.' and '-'");
		break;
	case F_MODE:
		s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		if (strcmp(s, "SYNC") != 0 && strcmp(s, "ASYNC") != 0)
			bad(fields, n, f->name, "must be SYNC or ASYNC");
		break;
	case F_ARGV:
		check_argv(v, f, fields, n);
		break;
	case F_LIST:
		check_list(v, f, fields, n);
		break;
	case F_OBJ:
		if (!json_object_is_type(v, json_type_object))
			bad(fields, n, f->name, "must be a JSON object");
		break;
	case F_RO:
		break;
	}
}

int db_model_validate(json_object *m, enum db_model_mode mode, json_object **fields)
{
	int n = 0;

	if (!json_object_is_type(m, json_type_object)) {
		bad(fields, &n, "model", "must be a JSON object");
		return n;
	}
	json_object_object_foreach(m, key, val) {
		const struct field *f = NULL;
		for (size_t i = 0; i < NFIELDS; i++)
			if (strcmp(fields_tab[i].name, key) == 0)
				f = &fields_tab[i];
		if (!f) {
			bad(fields, &n, key, "unknown field");
			continue;
		}
		check_field(f, val, fields, &n);
	}
	if (mode != DB_MODEL_PATCH && !json_object_object_get_ex(m, "id", NULL))
		bad(fields, &n, "id", "required");
	return n;
}

/* Integer value of key in m, else in cur, else def. given: from m. */
static int64_t merged_int(json_object *m, json_object *cur, const char *key, int64_t def,
			  int *given)
{
	json_object *v;

	*given = 0;
	if (json_object_object_get_ex(m, key, &v) && json_object_is_type(v, json_type_int)) {
		*given = 1;
		return json_object_get_int64(v);
	}
	if (cur && json_object_object_get_ex(cur, key, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return def;
}

static void check_pair(json_object *m, json_object *cur, const char *req, const char *lim,
		       int64_t req_def, int64_t lim_def, json_object **fields, int *n)
{
	int rg, lg;
	int64_t r = merged_int(m, cur, req, req_def, &rg);
	int64_t l = merged_int(m, cur, lim, lim_def, &lg);

	if (r <= l)
		return;
	if (rg || !lg)
		bad(fields, n, req, "must not exceed %s (%lld)", lim, (long long)l);
	if (lg)
		bad(fields, n, lim, "must not be below %s (%lld)", req, (long long)r);
}

int db_model_validate_merged(json_object *m, json_object *cur, json_object **fields)
{
	int n = 0;

	/* defaults as in sql/001_init.sql, used only when cur is NULL */
	check_pair(m, cur, "cpu_request_m", "cpu_limit_m", 100, 1000, fields, &n);
	check_pair(m, cur, "memory_request_mib", "memory_limit_mib", 256, 1024, fields, &n);
	return n;
}

/* ---- queries ---- */

static char *first_value(PGresult *res)
{
	char *s = NULL;

	if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		s = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return s;
}

char *db_model_list_json(struct db *db, int all)
{
	const char *p[1] = {all ? "t" : "f"};

	return first_value(db_prep(db, "model_list",
		/* how the hub runs the model and its resources: admins only */
		"SELECT jsonb_build_object('items', coalesce(jsonb_agg(CASE WHEN $1::boolean"
		" THEN " MODEL_JSON " ELSE " MODEL_JSON " - " DB_MODEL_PRIVATE_SQL " END"
		" ORDER BY m.id), '[]'::jsonb))::text FROM model m WHERE m.enabled OR $1::boolean",
		1, p));
}

int db_model_get_json(struct db *db, const char *id, char **json_out, int *enabled,
		      int *version)
{
	const char *p[1] = {id};
	PGresult *res;

	*json_out = NULL;
	res = db_prep(db, "model_get",
		      "SELECT " MODEL_JSON "::text, m.enabled, m.version FROM model m WHERE m.id = $1",
		      1, p);
	if (!res)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 1;
	}
	*json_out = strdup(PQgetvalue(res, 0, 0));
	if (enabled)
		*enabled = PQgetvalue(res, 0, 1)[0] == 't';
	if (version)
		*version = atoi(PQgetvalue(res, 0, 2));
	PQclear(res);
	return *json_out ? 0 : -1;
}

/* Current row as JSON, locked for the transaction: 0, 1 none, -1 error. */
static int lock_current(struct db *db, const char *id, json_object **cur)
{
	const char *p[1] = {id};
	PGresult *res = db_prep(db, "model_lock",
				"SELECT " MODEL_JSON "::text FROM model m WHERE m.id = $1 FOR UPDATE",
				1, p);

	*cur = NULL;
	if (!res)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 1;
	}
	*cur = json_tokener_parse(PQgetvalue(res, 0, 0));
	PQclear(res);
	return *cur ? 0 : -1;
}

/* The writable keys of m as jsonb text (read-only keys dropped). */
static char *writable_json(json_object *m)
{
	json_object *w = json_object_new_object();
	char *s;

	if (!w)
		return NULL;
	json_object_object_foreach(m, key, val) {
		for (size_t i = 0; i < NFIELDS; i++)
			if (strcmp(fields_tab[i].name, key) == 0 && fields_tab[i].type != F_RO &&
			    fields_tab[i].type != F_ID)
				json_object_object_add(w, key, json_object_get(val));
	}
	s = strdup(json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
	json_object_put(w);
	return s;
}

static char *apply(struct db *db, const char *id, const char *patch, int bump)
{
	const char *p[3] = {id, patch, bump ? "1" : "0"};

	return first_value(db_prep(db, "model_apply",
		"UPDATE model m SET (enabled, execution_mode, image, image_tag, local_command, port,"
		" cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
		" disable_memory_limit, max_instances, idle_seconds, cache_enabled, model_version,"
		" description, details, max_input_chars, title, slug, interpretation, publication,"
		" source_code, license, target_organisms, biomedical_areas, tasks, input_types,"
		" output_types, time_budget_s) = (SELECT r.enabled,"
		" r.execution_mode, r.image, r.image_tag,"
		" r.local_command, r.port, r.cpu_request_m, r.cpu_limit_m, r.memory_request_mib,"
		" r.memory_limit_mib, r.disable_memory_limit, r.max_instances, r.idle_seconds,"
		" r.cache_enabled, r.model_version, r.description, r.details, r.max_input_chars,"
		" r.title, r.slug, r.interpretation, r.publication, r.source_code, r.license,"
		" r.target_organisms, r.biomedical_areas, r.tasks, r.input_types, r.output_types,"
		" r.time_budget_s"
		" FROM jsonb_populate_record(m, $2::jsonb) r),"
		" size_from_request = (SELECT r.size_from_request"
		"  FROM jsonb_populate_record(m, $2::jsonb) r),"
		" version = m.version + $3::integer, updated_at = now()"
		" WHERE m.id = $1 RETURNING " MODEL_JSON "::text",
		3, p));
}

static int notify_changed(struct db *db, const char *id)
{
	const char *p[1] = {id};
	PGresult *r = db_prep(db, "model_notify", "SELECT pg_notify('model_changed', $1)", 1, p);

	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

/* CREATE / UPSERT: the id row first, so the row lock below always finds
 * it. DB_MODEL_OK (*is_new: inserted now), DB_MODEL_DUPLICATE (CREATE of
 * an existing id) or DB_MODEL_ERROR. */
static enum db_model_rc insert_id(struct db *db, enum db_model_mode mode, const char *id,
				  int *is_new)
{
	const char *p[1] = {id};
	PGresult *res;

	*is_new = 0;
	if (mode != DB_MODEL_CREATE && mode != DB_MODEL_UPSERT)
		return DB_MODEL_OK;
	res = db_prep(db, mode == DB_MODEL_CREATE ? "model_insert_id" : "model_upsert_id",
		      mode == DB_MODEL_CREATE
			      ? "INSERT INTO model (id) VALUES ($1) RETURNING id"
			      : "INSERT INTO model (id) VALUES ($1) ON CONFLICT (id) DO NOTHING"
				" RETURNING id",
		      1, p);
	if (!res)
		return db_is_unique_violation(db) ? DB_MODEL_DUPLICATE : DB_MODEL_ERROR;
	*is_new = PQntuples(res) == 1;
	PQclear(res);
	return DB_MODEL_OK;
}

/* Titles are unique in the catalogue (ignoring case; index model_title_key
 * in sql/016): a title another model has is named in *fields, so the
 * caller gets a 422 on the field, not a 409 from the index. 1 taken, 0
 * free or no title given, -1 error. */
static int title_taken(struct db *db, const struct db_model_change *c)
{
	json_object *v;
	const char *p[2] = {NULL, c->id};
	PGresult *res;
	int n = 0, taken;

	if (!json_object_object_get_ex(c->m, "title", &v) || !json_object_is_type(v, json_type_string))
		return 0;
	p[0] = json_object_get_string(v);
	res = db_prep(db, "model_title_taken",
		      "SELECT id FROM model WHERE lower(title) = lower($1) AND id <> $2 LIMIT 1", 2, p);
	if (!res)
		return -1;
	taken = PQntuples(res) == 1;
	if (taken)
		bad(c->fields, &n, "title", "is the title of model %s: titles are unique",
		    PQgetvalue(res, 0, 0));
	PQclear(res);
	return taken;
}

/* Inside the transaction, everything before the write: the id row, the
 * current model locked into *cur, the version a PATCH expects, the rules
 * across fields. */
static enum db_model_rc write_checks(struct db *db, const struct db_model_change *c,
				     json_object **cur, int *is_new)
{
	enum db_model_rc rc = insert_id(db, c->mode, c->id, is_new);
	int lr;

	if (rc != DB_MODEL_OK)
		return rc;
	lr = lock_current(db, c->id, cur);
	if (lr < 0)
		return DB_MODEL_ERROR;
	if (lr == 1)
		return DB_MODEL_NOT_FOUND;
	if (c->mode == DB_MODEL_PATCH) {
		json_object *v;
		int cv = json_object_object_get_ex(*cur, "version", &v) ? json_object_get_int(v) : 0;

		if (cv != c->expect_version) {
			if (c->cur_version)
				*c->cur_version = cv;
			return DB_MODEL_STALE;
		}
	}
	if (db_model_validate_merged(c->m, *cur, c->fields) > 0)
		return DB_MODEL_INVALID;
	lr = title_taken(db, c);
	return lr < 0 ? DB_MODEL_ERROR : lr ? DB_MODEL_INVALID : DB_MODEL_OK;
}

enum db_model_rc db_model_write(struct db *db, const struct db_model_change *c, char **json_out,
				int *created)
{
	json_object *cur = NULL;
	char *patch = writable_json(c->m);
	enum db_model_rc rc;
	int is_new = 0;

	*json_out = NULL;
	if (created)
		*created = 0;
	if (!patch)
		return DB_MODEL_ERROR;
	if (db_begin(db) < 0) {
		free(patch);
		return DB_MODEL_ERROR;
	}
	rc = write_checks(db, c, &cur, &is_new);
	if (rc == DB_MODEL_OK && !(*json_out = apply(db, c->id, patch, !is_new)))
		rc = DB_MODEL_ERROR;
	if (rc == DB_MODEL_OK && (notify_changed(db, c->id) < 0 || db_commit(db) < 0)) {
		free(*json_out);
		*json_out = NULL;
		rc = DB_MODEL_ERROR;
	}
	if (rc != DB_MODEL_OK) {
		db_rollback(db);
	} else {
		if (created)
			*created = is_new;
		log_info("model msg=%s model=%s", is_new ? "created" : "updated", c->id);
	}
	json_object_put(cur);
	free(patch);
	return rc;
}

enum db_model_rc db_model_delete(struct db *db, const char *id)
{
	const char *p[1] = {id};
	PGresult *res;
	enum db_model_rc rc = DB_MODEL_OK;

	if (db_begin(db) < 0)
		return DB_MODEL_ERROR;
	/* The row lock conflicts with the KEY SHARE lock a concurrent request
	 * insert takes through its foreign key, so no request can slip in
	 * between the check and the delete. */
	res = db_prep(db, "model_delete_check",
		      "SELECT EXISTS (SELECT 1 FROM work_request w WHERE w.model_id = m.id"
		      "   AND w.status IN ('QUEUED', 'RUNNING')),"
		      " EXISTS (SELECT 1 FROM model_instance i WHERE i.model_id = m.id"
		      "   AND i.state <> 'TERMINATED')"
		      " FROM model m WHERE m.id = $1 FOR UPDATE OF m",
		      1, p);
	if (!res)
		goto fail;
	if (PQntuples(res) != 1)
		rc = DB_MODEL_NOT_FOUND;
	else if (PQgetvalue(res, 0, 0)[0] == 't' || PQgetvalue(res, 0, 1)[0] == 't')
		rc = DB_MODEL_BUSY;
	PQclear(res);
	if (rc != DB_MODEL_OK) {
		db_rollback(db);
		return rc;
	}
	res = db_prep(db, "model_delete", "DELETE FROM model WHERE id = $1", 1, p);
	if (!res)
		goto fail;
	PQclear(res);
	if (notify_changed(db, id) < 0 || db_commit(db) < 0)
		goto fail;
	log_info("model msg=deleted model=%s", id);
	return DB_MODEL_OK;
fail:
	db_rollback(db);
	return DB_MODEL_ERROR;
}

int db_model_clear_cache(struct db *db, const char *id, long *deleted)
{
	const char *p[1] = {id};
	PGresult *res;

	*deleted = 0;
	res = db_prep(db, "model_clear_cache",
		      "WITH d AS (DELETE FROM input_cache WHERE model_id = $1 RETURNING 1),"
		      " f AS (DELETE FROM input_failure WHERE model_id = $1 RETURNING 1)"
		      " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM f),"
		      "  EXISTS (SELECT 1 FROM model WHERE id = $1)",
		      1, p);
	if (!res)
		return -1;
	*deleted = atol(PQgetvalue(res, 0, 0));
	if (PQgetvalue(res, 0, 1)[0] != 't') {
		PQclear(res);
		return 1;
	}
	PQclear(res);
	log_info("model msg=\"cache cleared\" model=%s rows=%ld", id, *deleted);
	return 0;
}

PGresult *db_model_table(struct db *db)
{
	return db_exec(db, "SELECT id, enabled, execution_mode, cpu_request_m, cpu_limit_m,"
			   " memory_request_mib, memory_limit_mib, max_instances, idle_seconds, version"
			   " FROM model ORDER BY id",
		       0, NULL);
}
