/*
 * db_catalog.c — import of an Ersilia catalogue: the identification
 * fields of each record onto the model with its Identifier.
 *
 * Runs in: modelhub-fcgi workers, modelhubctl.
 * Called by: api_models.c (POST /api/models/import-catalog),
 * ctl_model.c (`modelhubctl import-catalog FILE`).
 * Owns: nothing global; the report it returns belongs to the caller.
 * Shared state: table model through db_model_write (one transaction and
 * one NOTIFY model_changed per model).
 *
 * A catalogue is a JSON array of records (or one record) as the Ersilia
 * catalogue serves them: keys Identifier, Title, Slug, Description,
 * Interpretation, Publication, "Source Code" (or GitHub), License, Task,
 * Input, Output, "Target Organism", "Biomedical Area"; a list may also be
 * a single string. The old hub's camelCase identificationDetails keys
 * (title, sourceCode, targetOrganisms, ...) are read too, so a model
 * exported from it imports as well. Other keys are ignored.
 *
 * DESIGN: records are independent: a bad record (no identifier, a field
 * the model validation refuses, a title another model has) is skipped
 * with its reason and the others are written, so one odd entry of a
 * catalogue of hundreds does not block the rest. Models not registered
 * are skipped unless create is set; then they are created disabled (the
 * catalogue says what a model is, not how to run it: an admin registers
 * its image or command and enables it).
 */
#include "db/db_model.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *key, *alt, *field;
	int list;
} map[] = {
	{"Title", "title", "title", 0},
	{"Slug", "slug", "slug", 0},
	{"Description", "description", "description", 0},
	{"Interpretation", "interpretation", "interpretation", 0},
	{"Publication", "publication", "publication", 0},
	{"Source Code", "sourceCode", "source_code", 0},
	{"GitHub", NULL, "source_code", 0},
	{"License", "license", "license", 0},
	{"Task", "tasks", "tasks", 1},
	{"Input", "inputTypes", "input_types", 1},
	{"Output", "outputTypes", "output_types", 1},
	{"Target Organism", "targetOrganisms", "target_organisms", 1},
	{"Biomedical Area", "biomedicalAreas", "biomedical_areas", 1},
};

/* A string with surrounding blanks removed, or NULL when empty. */
static json_object *trimmed(const char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return n ? json_object_new_string_len(s, (int)n) : NULL;
}

/* A list value: an array of strings, or one string; empty items dropped. */
static json_object *as_list(json_object *v)
{
	json_object *out = json_object_new_array(), *e;

	if (json_object_is_type(v, json_type_string)) {
		if ((e = trimmed(json_object_get_string(v))))
			json_object_array_add(out, e);
	} else if (json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *x = json_object_array_get_idx(v, i);
			if (json_object_is_type(x, json_type_string) &&
			    (e = trimmed(json_object_get_string(x))))
				json_object_array_add(out, e);
		}
	}
	return out;
}

json_object *db_catalog_record(json_object *rec, char id[DB_MODEL_ID_MAX + 1])
{
	json_object *m, *v, *src = rec;
	const char *ident = NULL;

	id[0] = 0;
	if (!json_object_is_type(rec, json_type_object))
		return NULL;
	if (json_object_object_get_ex(rec, "Identifier", &v) || json_object_object_get_ex(rec, "id", &v))
		ident = json_object_get_string(v);
	if (!ident || !db_model_valid_id(ident) || strlen(ident) > DB_MODEL_ID_MAX)
		return NULL;
	strcpy(id, ident);
	/* the old hub keeps these under identificationDetails */
	if (json_object_object_get_ex(rec, "identification_details", &v) ||
	    json_object_object_get_ex(rec, "identificationDetails", &v))
		src = v;
	m = json_object_new_object();
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		json_object *x;

		if (json_object_object_get_ex(m, map[i].field, NULL))
			continue; /* "Source Code" wins over GitHub */
		if (!json_object_object_get_ex(src, map[i].key, &v) &&
		    !(map[i].alt && json_object_object_get_ex(src, map[i].alt, &v)))
			continue;
		if (map[i].list)
			json_object_object_add(m, map[i].field, as_list(v));
		else if (json_object_is_type(v, json_type_string) &&
			 (x = trimmed(json_object_get_string(v))))
			json_object_object_add(m, map[i].field, x);
	}
	return m;
}

static void skip(json_object *report, const char *ident, const char *why)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "identifier", ident ? json_object_new_string(ident) : NULL);
	json_object_object_add(o, "reason", json_object_new_string(why));
	json_object_array_add(json_object_object_get(report, "skipped"), o);
}

/* One record: written, or skipped with its reason. -1 on a database error. */
static int import_one(struct db *db, json_object *rec, int create, json_object *report)
{
	char id[DB_MODEL_ID_MAX + 1], *json = NULL;
	json_object *m = db_catalog_record(rec, id), *fields = NULL, *v;
	int rc, exists;
	enum db_model_rc wr;

	if (!m) {
		v = json_object_is_type(rec, json_type_object) ? json_object_object_get(rec, "Identifier") : NULL;
		skip(report, v ? json_object_get_string(v) : NULL,
		     "no valid Identifier (1 to 64 lower-case letters, digits, '_', '.' or '-', "
		     "starting with a letter or digit)");
		return 0;
	}
	rc = db_model_get_json(db, id, &json, NULL, NULL);
	free(json);
	json = NULL;
	if (rc < 0) {
		json_object_put(m);
		return -1;
	}
	exists = rc == 0;
	if (!exists && !create) {
		skip(report, id, "not registered (import with create to add it, disabled)");
		json_object_put(m);
		return 0;
	}
	if (!exists)
		json_object_object_add(m, "enabled", json_object_new_boolean(0));
	if (db_model_validate(m, DB_MODEL_PATCH, &fields) == 0)
		wr = db_model_write(db, &(struct db_model_change){.mode = DB_MODEL_UPSERT, .id = id,
								    .m = m, .fields = &fields},
				    &json, NULL);
	else
		wr = DB_MODEL_INVALID;
	free(json);
	json_object_put(m);
	if (wr == DB_MODEL_INVALID)
		skip(report, id, json_object_to_json_string_ext(fields, JSON_C_TO_STRING_PLAIN));
	else if (wr == DB_MODEL_OK)
		json_object_array_add(json_object_object_get(report, exists ? "updated" : "created"),
				      json_object_new_string(id));
	json_object_put(fields);
	return wr == DB_MODEL_OK || wr == DB_MODEL_INVALID ? 0 : -1;
}

json_object *db_catalog_import(struct db *db, json_object *catalog, int create)
{
	json_object *report = json_object_new_object();
	size_t n;

	json_object_object_add(report, "updated", json_object_new_array());
	json_object_object_add(report, "created", json_object_new_array());
	json_object_object_add(report, "skipped", json_object_new_array());
	if (!json_object_is_type(catalog, json_type_array))
		return import_one(db, catalog, create, report) < 0 ? (json_object_put(report), NULL)
								  : report;
	n = json_object_array_length(catalog);
	for (size_t i = 0; i < n; i++)
		if (import_one(db, json_object_array_get_idx(catalog, i), create, report) < 0) {
			json_object_put(report);
			return NULL;
		}
	return report;
}
