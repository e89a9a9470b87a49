/*
 * ctl_model.c — `modelhubctl add-model FILE.json`, `list-models`,
 * `import-catalog FILE [--create]` and `stats-fold`.
 *
 * Runs in: modelhubctl. Called by: main.c.
 * Owns: the parsed JSON file.
 * Shared state: table model through db/db_model.h (stats-fold: the
 * request_stats_* rollups through db/db_stats.h) (same validation as the
 * API; each model written in its own transaction with NOTIFY model_changed).
 *
 * add-model takes one model object or an array of them and upserts by id:
 * given fields are set, others keep their stored value (or the default
 * for a new model). Every model is validated before anything is written,
 * so a bad file changes nothing. `{models_dir}` in local_command is kept
 * for the local backend to substitute, unless --models-dir DIR is given.
 *
 * import-catalog reads an Ersilia catalogue (db_catalog.c says which keys)
 * and sets the identification fields of the registered models; with
 * --create the others are added, disabled. Skipped records are listed
 * with their reason; the exit status is 1 only when the file cannot be
 * read or the database fails.
 */
#include "ctl/ctl.h"
#include "db/db_model.h"
#include "db/db_stats.h"
#include "lib/buf.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replace {models_dir} in every local_command element of m. */
static int subst_models_dir(json_object *m, const char *dir)
{
	json_object *argv, *nargv;

	if (!json_object_object_get_ex(m, "local_command", &argv) ||
	    !json_object_is_type(argv, json_type_array))
		return 0;
	nargv = json_object_new_array();
	if (!nargv)
		return -1;
	for (size_t i = 0; i < json_object_array_length(argv); i++) {
		json_object *e = json_object_array_get_idx(argv, i);
		const char *s, *hit;
		struct buf b = BUF_INIT;

		if (!json_object_is_type(e, json_type_string)) {
			json_object_array_add(nargv, json_object_get(e));
			continue;
		}
		s = json_object_get_string(e);
		while ((hit = strstr(s, "{models_dir}")) != NULL) {
			buf_add(&b, s, (size_t)(hit - s));
			buf_adds(&b, dir);
			s = hit + strlen("{models_dir}");
		}
		buf_adds(&b, s);
		json_object_array_add(nargv, json_object_new_string(buf_cstr(&b)));
		buf_free(&b);
	}
	json_object_object_add(m, "local_command", nargv);
	return 0;
}

static void print_fields(const char *id, json_object *fields)
{
	json_object_object_foreach(fields, key, val)
		fprintf(stderr, "modelhubctl: model %s: %s: %s\n", id, key,
			json_object_get_string(val));
}

/* The file as an array of models (a single object is wrapped); NULL with
 * the message printed. */
static json_object *load_models(const char *path)
{
	json_object *doc = json_object_from_file(path), *list = NULL;

	if (!doc) {
		fprintf(stderr, "modelhubctl: cannot read %s as JSON: %s\n", path,
			json_util_get_last_err());
		return NULL;
	}
	if (json_object_is_type(doc, json_type_array)) {
		list = json_object_get(doc);
	} else if (json_object_is_type(doc, json_type_object)) {
		list = json_object_new_array();
		json_object_array_add(list, json_object_get(doc));
	} else {
		fprintf(stderr, "modelhubctl: %s must hold a model object or an array of them\n", path);
	}
	json_object_put(doc);
	return list;
}

/* Validate every model (after the models_dir substitution) before writing
 * any: 0 all valid, -1 (messages printed). */
static int validate_all(const struct ctl_opts *o, json_object *list)
{
	size_t n = json_object_array_length(list);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(list, i), *fields = NULL;
		const char *id = json_object_is_type(m, json_type_object) ? jx_str(m, "id") : NULL;
		char label[32];

		if (!id) {
			snprintf(label, sizeof label, "#%zu", i + 1);
			id = label;
		}
		if (o->models_dir && json_object_is_type(m, json_type_object) &&
		    subst_models_dir(m, o->models_dir) < 0)
			return -1;
		if (db_model_validate(m, DB_MODEL_UPSERT, &fields) > 0) {
			print_fields(id, fields);
			bad++;
		}
		json_object_put(fields);
	}
	if (bad) {
		fprintf(stderr, "modelhubctl: %d invalid model(s); nothing written\n", bad);
		return -1;
	}
	return 0;
}

/* Upsert one valid model and say what happened: 0, -1 (message printed). */
static int write_one(struct db *db, json_object *m)
{
	const char *id = jx_str(m, "id");
	json_object *fields = NULL, *stored;
	char *json = NULL;
	int created = 0;
	enum db_model_rc r;

	r = db_model_write(db,
			   &(struct db_model_change){.mode = DB_MODEL_UPSERT, .id = id, .m = m,
						     .fields = &fields},
			   &json, &created);
	if (r == DB_MODEL_INVALID)
		print_fields(id, fields);
	json_object_put(fields);
	if (r == DB_MODEL_INVALID)
		return -1;
	if (r != DB_MODEL_OK) {
		fprintf(stderr, "modelhubctl: model %s: database error: %s\n", id, db_errmsg(db));
		return -1;
	}
	stored = json_tokener_parse(json);
	printf("%s model %s (version %d)\n", created ? "added" : "updated", id,
	       json_object_get_int(json_object_object_get(stored, "version")));
	json_object_put(stored);
	free(json);
	return 0;
}

int ctl_add_model(const struct ctl_opts *o)
{
	json_object *list = load_models(o->args[0]);
	struct db *db = ctl_db();
	size_t n;
	int rc = 1;

	if (!list)
		return 1;
	if (validate_all(o, list) < 0)
		goto out;
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++)
		if (write_one(db, json_object_array_get_idx(list, i)) < 0)
			goto out;
	rc = 0;
out:
	json_object_put(list);
	return rc;
}

int ctl_list_models(const struct ctl_opts *o)
{
	struct db *db = ctl_db();
	PGresult *res;

	(void)o;
	res = db_model_table(db);
	if (!res) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		return 1;
	}
	printf("%-24s %-7s %-5s %11s %13s %6s %6s %5s\n", "ID", "ENABLED", "MODE", "CPU_M",
	       "MEMORY_MIB", "MAX", "IDLE_S", "VER");
	for (int i = 0; i < PQntuples(res); i++) {
		char cpu[32], mem[32];
		snprintf(cpu, sizeof cpu, "%s/%s", PQgetvalue(res, i, 3), PQgetvalue(res, i, 4));
		snprintf(mem, sizeof mem, "%s/%s", PQgetvalue(res, i, 5), PQgetvalue(res, i, 6));
		printf("%-24s %-7s %-5s %11s %13s %6s %6s %5s\n", PQgetvalue(res, i, 0),
		       PQgetvalue(res, i, 1)[0] == 't' ? "yes" : "no", PQgetvalue(res, i, 2), cpu,
		       mem, PQgetvalue(res, i, 7), PQgetvalue(res, i, 8), PQgetvalue(res, i, 9));
	}
	PQclear(res);
	return 0;
}

static void print_ids(json_object *report, const char *key, const char *what)
{
	json_object *a = json_object_object_get(report, key);

	for (size_t i = 0; i < json_object_array_length(a); i++)
		printf("%s model %s\n", what, json_object_get_string(json_object_array_get_idx(a, i)));
}

int ctl_import_catalog(const struct ctl_opts *o)
{
	json_object *list = load_models(o->args[0]), *report, *sk;
	struct db *db = ctl_db();

	if (!list)
		return 1;
	report = db_catalog_import(db, list, o->create);
	json_object_put(list);
	if (!report) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		return 1;
	}
	print_ids(report, "updated", "updated");
	print_ids(report, "created", "added (disabled)");
	sk = json_object_object_get(report, "skipped");
	for (size_t i = 0; i < json_object_array_length(sk); i++) {
		json_object *e = json_object_array_get_idx(sk, i);
		const char *id = jx_str(e, "identifier");

		fprintf(stderr, "modelhubctl: skipped %s: %s\n", id ? id : "(no identifier)",
			jx_str(e, "reason"));
	}
	printf("import-catalog: %zu updated, %zu added, %zu skipped\n",
	       json_object_array_length(json_object_object_get(report, "updated")),
	       json_object_array_length(json_object_object_get(report, "created")),
	       json_object_array_length(sk));
	json_object_put(report);
	return 0;
}

/* `modelhubctl stats-fold`: what the janitor does every tick, until
 * nothing is pending (after a bulk load or with modelhubd stopped), then
 * VACUUM ANALYZE of the stats tables. */
int ctl_stats_fold(const struct ctl_opts *o)
{
	struct db *db = ctl_db();
	long total = 0;
	int n;

	(void)o;
	while ((n = db_stats_fold(db, 100000)) > 0)
		total += n;
	if (n < 0 || db_stats_vacuum(db) < 0) {
		fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
		return 1;
	}
	printf("stats-fold: %ld rollup rows written\n", total);
	return 0;
}
