/*
 * api_models.c — the model catalogue API.
 *
 * Runs in: modelhub-fcgi workers. Called by: the router.
 * Owns: nothing beyond the request.
 * Shared state: table model and input_cache through db/db_model.h (which
 * also sends NOTIFY model_changed in the same transaction as a change).
 *
 *   GET    /api/models              public; {"items":[...]}, enabled models
 *                                   only unless the caller is an admin;
 *                                   local_command, image and resources
 *                                   (DB_MODEL_PRIVATE_FIELDS) for admins only
 *   GET    /api/models/{id}         public; a disabled model is 404 except
 *                                   for admins; ETag = "version"
 *   POST   /api/models              admin; 201 + the model (Location)
 *   PATCH  /api/models/{id}         admin; needs the current version in the
 *                                   body ("version") or If-Match; 409
 *                                   stale_version when it moved on
 *   DELETE /api/models/{id}         admin; 204, or 409 model_busy while it
 *                                   has queued/running requests or live
 *                                   instances (disable it first)
 *   DELETE /api/models/{id}/cache   admin; clears the model's input cache
 *   POST   /api/models/import-catalog[?create=true]
 *                                   admin; an Ersilia catalogue (JSON array)
 *                                   onto the models' identification fields
 *                                   (db_catalog_import): 200 {updated,
 *                                   created, skipped:[{identifier, reason}]}
 *
 * Validation is db_model_validate (shared with modelhubctl add-model):
 * every rejected field is named in error.fields, 422 validation_failed.
 * With node groups configured (autoscale.*), requests that fit no group
 * are 422 fits_no_node_group (api_autoscale_fits).
 *
 * DESIGN: the list is the hottest read of the site (every page shows the
 * catalogue) and changes rarely, so each worker keeps the two list bodies
 * (enabled only / all) and reuses them while nothing changed. "Nothing
 * changed" = no NOTIFY model_changed received since the body was built and
 * no reconnect in between (notifications sent while disconnected are lost).
 * Every writer — this API, modelhubctl, another replica — notifies in the
 * same transaction as the change, so a worker sees a change at its next
 * request. The counter is read before the query that fills the cache, so a
 * change racing with the fill invalidates it.
 */
#include "fcgi/api.h"
#include "db/db_model.h"
#include "lib/cmdpath.h"
#include "lib/config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static struct list_cache {
	char *json;
	unsigned long gen;        /* db_notify_count(model_changed) at fill time */
	unsigned long reconnects; /* db_reconnects() at fill time */
} list_cache[2];              /* [0] enabled models, [1] all (admins) */
static int list_listening;

static void list_cache_clear(void)
{
	for (int i = 0; i < 2; i++) {
		free(list_cache[i].json);
		list_cache[i].json = NULL;
	}
}

/* The model list as JSON text (owned by the cache, valid until the next
 * call), or NULL on a database error. */
static const char *list_json(struct db *db, int all)
{
	struct list_cache *c = &list_cache[all ? 1 : 0];
	unsigned long gen, rc;
	char *json;
	int usable;

	if (!list_listening && db_listen(db, "model_changed") == 0)
		list_listening = 1;
	usable = list_listening && db_poll_notify(db) == 0;
	gen = db_notify_count(db, "model_changed");
	rc = db_reconnects(db);
	if (usable && c->json && c->gen == gen && c->reconnects == rc)
		return c->json;
	json = db_model_list_json(db, all);
	if (!json)
		return NULL;
	free(c->json);
	c->json = json;
	/* a reconnect during the query may have missed notifications */
	c->gen = gen;
	c->reconnects = usable && db_reconnects(db) == rc ? rc : (unsigned long)-1;
	return json;
}

static enum api_err send_model(struct api_req *r, int status, char *json)
{
	api_own(r, json);
	return api_text(r, status, "application/json", json, strlen(json));
}

/* A path id that cannot be a model id (bad pattern, non-UTF-8) is simply
 * not found; it never reaches SQL, where invalid UTF-8 would be an error. */
static int bad_path_id(struct api_req *r)
{
	return !db_model_valid_id(r->params[0]);
}

static enum api_err no_model(struct api_req *r)
{
	return api_fail(r, API_NOT_FOUND, "not_found", "no such model");
}

static enum api_err invalid(struct api_req *r, json_object *fields)
{
	return api_fail_fields(r, API_UNPROCESSABLE, "validation_failed", fields,
			       "the model has invalid fields");
}

/* 422 fits_no_node_group when node groups are configured and the model's
 * requests (the body's, else the stored model's) fit none of them: its
 * instances could never start (DESIGN.md §7). API_OK otherwise. */
static enum api_err groups_check(struct api_req *r, json_object *m, const char *id)
{
	int cpu = -1, mem = -1;
	json_object *v, *cur = NULL, *fields;
	char *json = NULL, why[400];

	if (json_object_object_get_ex(m, "cpu_request_m", &v))
		cpu = json_object_get_int(v);
	if (json_object_object_get_ex(m, "memory_request_mib", &v))
		mem = json_object_get_int(v);
	if (cpu < 0 && mem < 0)
		return API_OK;
	if ((cpu < 0 || mem < 0) && id && db_model_get_json(r->db, id, &json, NULL, NULL) == 0 &&
	    (cur = json_tokener_parse(json))) {
		if (cpu < 0 && json_object_object_get_ex(cur, "cpu_request_m", &v))
			cpu = json_object_get_int(v);
		if (mem < 0 && json_object_object_get_ex(cur, "memory_request_mib", &v))
			mem = json_object_get_int(v);
	}
	free(json);
	json_object_put(cur);
	if (api_autoscale_fits(cpu < 0 ? 0 : cpu, mem < 0 ? 0 : mem, why, sizeof why))
		return API_OK;
	fields = json_object_new_object();
	json_object_object_add(fields, "cpu_request_m", json_object_new_string(why));
	json_object_object_add(fields, "memory_request_mib", json_object_new_string(why));
	return api_fail_fields(r, API_UNPROCESSABLE, "fits_no_node_group", fields,
			       "the model could never start: its %s", why);
}

/* hub.local_command_dirs: a local_command's program must be inside one of
 * them (lib/cmdpath.h); the reason goes into *fields. */
static void command_dirs_check(json_object *m, json_object **fields)
{
	json_object *cmd, *prog;
	char why[700];

	if (!json_object_object_get_ex(m, "local_command", &cmd) ||
	    !json_object_is_type(cmd, json_type_array) || json_object_array_length(cmd) < 1 ||
	    !(prog = json_object_array_get_idx(cmd, 0)) ||
	    !json_object_is_type(prog, json_type_string))
		return;
	if (cmdpath_allowed(json_object_get_string(prog), cfg_str("hub.local_command_dirs", ""),
			    cfg_str("hub.models_dir", MH_DATADIR "/models"), why, sizeof why))
		return;
	if (!*fields)
		*fields = json_object_new_object();
	json_object_object_add(*fields, "local_command", json_object_new_string(why));
}

static enum api_err models_list(struct api_req *r)
{
	const char *json = list_json(r->db, r->auth.is_admin);

	if (!json)
		return api_db_fail(r);
	return api_text(r, 200, "application/json", json, strlen(json));
}

/* The model without the admin-only fields (DB_MODEL_PRIVATE_FIELDS: how
 * the hub runs it — a registered command is code execution — and its
 * resources). Takes json. */
static enum api_err send_public(struct api_req *r, char *json)
{
	json_object *o = json_tokener_parse(json);

	free(json);
	if (!o)
		return api_fail(r, API_INTERNAL, "internal", "bad model JSON from the database");
	static const char *const private_fields[] = {DB_MODEL_PRIVATE_FIELDS};

	for (size_t i = 0; i < sizeof private_fields / sizeof private_fields[0]; i++)
		json_object_object_del(o, private_fields[i]);
	return api_json(r, 200, o);
}

static enum api_err model_get(struct api_req *r)
{
	char *json = NULL;
	int enabled = 0, version = 0, rc;

	if (bad_path_id(r))
		return no_model(r);
	rc = db_model_get_json(r->db, r->params[0], &json, &enabled, &version);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 1 || (!enabled && !r->auth.is_admin)) {
		free(json);
		return api_fail(r, API_NOT_FOUND, "not_found", "no such model");
	}
	api_header(r, "ETag", "\"%d\"", version);
	if (!r->auth.is_admin)
		return send_public(r, json);
	return send_model(r, 200, json);
}

static enum api_err model_create(struct api_req *r)
{
	json_object *m = NULL, *fields = NULL, *idv;
	char *json = NULL;
	const char *id;
	enum api_err e;
	enum db_model_rc rc;

	e = api_body_json(r, &m);
	if (e != API_OK)
		return e;
	db_model_validate(m, DB_MODEL_CREATE, &fields);
	command_dirs_check(m, &fields);
	if (fields) {
		json_object_put(m);
		return invalid(r, fields);
	}
	json_object_object_get_ex(m, "id", &idv);
	id = json_object_get_string(idv);
	if ((e = groups_check(r, m, NULL)) != API_OK) {
		json_object_put(m);
		return e;
	}
	rc = db_model_write(r->db,
			    &(struct db_model_change){.mode = DB_MODEL_CREATE, .id = id, .m = m,
						      .fields = &fields},
			    &json, NULL);
	if (rc == DB_MODEL_DUPLICATE)
		e = api_fail(r, API_CONFLICT, "conflict", "a model with id %s already exists", id);
	else if (rc == DB_MODEL_INVALID)
		e = invalid(r, fields);
	else if (rc != DB_MODEL_OK)
		e = api_db_fail(r);
	else {
		list_cache_clear();
		api_header(r, "Location", "/api/models/%s", id);
		e = send_model(r, 201, json);
	}
	if (rc != DB_MODEL_INVALID)
		json_object_put(fields);
	json_object_put(m);
	return e;
}

/* The version the client saw: "version" in the body, else If-Match ("3",
 * W/"3" or 3). 1 found, 0 absent, -1 malformed. */
static int client_version(struct api_req *r, json_object *m, int *out)
{
	json_object *v;
	const char *im;
	char *end;
	long n;

	if (json_object_object_get_ex(m, "version", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return -1;
		*out = json_object_get_int(v);
		return 1;
	}
	im = api_env(r, "HTTP_IF_MATCH");
	if (!im || !*im)
		return 0;
	if (strncmp(im, "W/", 2) == 0)
		im += 2;
	if (*im == '"')
		im++;
	n = strtol(im, &end, 10);
	if (end == im || (*end && strcmp(end, "\"") != 0) || n < 0 || n > 0x7fffffff)
		return -1;
	*out = (int)n;
	return 1;
}

static enum api_err model_patch(struct api_req *r)
{
	const char *id = r->params[0];
	json_object *m = NULL, *fields = NULL, *v;
	char *json = NULL;
	int version = 0, cur = 0, rc, cv;
	enum api_err e;

	if (bad_path_id(r))
		return no_model(r);
	e = api_body_json(r, &m);
	if (e != API_OK)
		return e;
	db_model_validate(m, DB_MODEL_PATCH, &fields);
	command_dirs_check(m, &fields);
	if (json_object_object_get_ex(m, "id", &v) && json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), id) != 0) {
		fields = fields ? fields : json_object_new_object();
		json_object_object_add(fields, "id", json_object_new_string("cannot be changed"));
	}
	cv = client_version(r, m, &version);
	if (cv <= 0) {
		fields = fields ? fields : json_object_new_object();
		json_object_object_add(fields, "version", json_object_new_string(
			cv < 0 ? "must be an integer" :
				 "required: the version you read (in the body or If-Match)"));
	}
	if (fields) {
		json_object_put(m);
		return invalid(r, fields);
	}
	if ((e = groups_check(r, m, id)) != API_OK) {
		json_object_put(m);
		return e;
	}
	rc = db_model_write(r->db,
			    &(struct db_model_change){.mode = DB_MODEL_PATCH, .id = id, .m = m,
						      .expect_version = version, .cur_version = &cur,
						      .fields = &fields},
			    &json, NULL);
	if (rc == DB_MODEL_NOT_FOUND)
		e = api_fail(r, API_NOT_FOUND, "not_found", "no such model");
	else if (rc == DB_MODEL_STALE)
		e = api_fail(r, API_CONFLICT, "stale_version",
			     "the model changed since version %d (now %d); reload and retry",
			     version, cur);
	else if (rc == DB_MODEL_INVALID)
		e = invalid(r, fields);
	else if (rc != DB_MODEL_OK)
		e = api_db_fail(r);
	else {
		list_cache_clear();
		e = send_model(r, 200, json);
	}
	if (rc != DB_MODEL_INVALID)
		json_object_put(fields);
	json_object_put(m);
	return e;
}

static enum api_err model_delete(struct api_req *r)
{
	enum db_model_rc rc;

	if (bad_path_id(r))
		return no_model(r);
	rc = db_model_delete(r->db, r->params[0]);
	if (rc == DB_MODEL_ERROR)
		return api_db_fail(r);
	if (rc == DB_MODEL_NOT_FOUND)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such model");
	if (rc == DB_MODEL_BUSY)
		return api_fail(r, API_CONFLICT, "model_busy",
				"the model has queued or running requests or live instances; "
				"disable it and let them finish first");
	list_cache_clear();
	return api_text(r, 204, NULL, "", 0);
}

/* POST /api/models/import-catalog[?create=true]: body = an Ersilia
 * catalogue (JSON array of records, or one record); 200 with the report
 * of db_catalog_import. */
static enum api_err catalog_import(struct api_req *r)
{
	const char *create = api_query(r, "create");
	json_object *cat, *report;
	enum api_err e;

	if (create && strcmp(create, "true") != 0 && strcmp(create, "false") != 0) {
		json_object *f = json_object_new_object();
		json_object_object_add(f, "create", json_object_new_string("must be true or false"));
		return api_fail_fields(r, API_UNPROCESSABLE, "invalid_parameter", f,
				       "create: must be true or false");
	}
	if (!r->content_type || strncmp(r->content_type, "application/json", 16) != 0)
		return api_fail(r, API_UNSUPPORTED_MEDIA, "unsupported_media_type",
				"send the catalogue as application/json");
	cat = json_tokener_parse(r->body ? r->body : "");
	if (!cat || !(json_object_is_type(cat, json_type_array) ||
		      json_object_is_type(cat, json_type_object))) {
		json_object_put(cat);
		return api_fail(r, API_BAD_REQUEST, "bad_json",
				"the body must be a JSON array of catalogue records (or one record)");
	}
	report = db_catalog_import(r->db, cat, create && strcmp(create, "true") == 0);
	json_object_put(cat);
	list_cache_clear();
	if (!report)
		return api_db_fail(r);
	e = api_json(r, 200, report);
	return e;
}

static enum api_err model_cache_clear(struct api_req *r)
{
	long n = 0;
	int rc;
	json_object *o;

	if (bad_path_id(r))
		return no_model(r);
	rc = db_model_clear_cache(r->db, r->params[0], &n);
	if (rc < 0)
		return api_db_fail(r);
	if (rc == 1)
		return api_fail(r, API_NOT_FOUND, "not_found", "no such model");
	o = json_object_new_object();
	json_object_object_add(o, "model_id", json_object_new_string(r->params[0]));
	json_object_object_add(o, "deleted", json_object_new_int64(n));
	return api_json(r, 200, o);
}

const struct api_route api_models_routes[] = {
	{"GET", "/api/models", ACCESS_PUBLIC, models_list},
	{"POST", "/api/models", ACCESS_ADMIN, model_create},
	{"POST", "/api/models/import-catalog", ACCESS_ADMIN, catalog_import},
	{"GET", "/api/models/{}", ACCESS_PUBLIC, model_get},
	{"PATCH", "/api/models/{}", ACCESS_ADMIN, model_patch},
	{"DELETE", "/api/models/{}", ACCESS_ADMIN, model_delete},
	{"DELETE", "/api/models/{}/cache", ACCESS_ADMIN, model_cache_clear},
	{0},
};
