/*
 * json.h — small json-c helpers shared by every area: typed member reads
 * that return NULL or a default instead of failing, key paths, and the
 * conversion of PostgreSQL result columns to JSON members.
 *
 * Runs in: modelhub-fcgi workers, modelhubd children, modelhubctl.
 * Called by: the API handlers (fcgi/api_*.c, through fcgi/api.h), src/db,
 * src/metrics/view.c, src/ctl, t/053-json. Owns: nothing; values returned
 * by the readers are borrowed from the object passed in (valid while it
 * lives); the jx_add_* functions hand the new value to the object.
 *
 * NOTES: the readers are NULL-safe (a NULL object reads as empty), so a
 * chain of lookups needs no checks between the steps. The jx_add_pg_*
 * half lives in json_pg.c and takes the PGresult as `const void *`, so
 * this header does not pull in libpq and only programs that convert
 * result rows link it.
 */
#ifndef MH_JSON_H
#define MH_JSON_H

#include <json-c/json.h>

/* ---- reading (json.c) ---- */
/* Member key of o when it is a string; NULL when absent, of another type,
 * or o is NULL or not an object. */
const char *jx_str(json_object *o, const char *key);
/* 1 when o is an object with member key (of any value, null included). */
int jx_has(json_object *o, const char *key);
/* Member key of o as a number (JSON integer or double); def when absent,
 * null or of another type. */
double jx_num(json_object *o, const char *key, double def);
/* Follow the NULL-terminated key path from o: jx_get(pod, "status",
 * "phase", NULL). NULL when a step is missing or is not an object. With no
 * keys, o itself. */
json_object *jx_get(json_object *o, ...) __attribute__((sentinel));
/* Same, and the value when it is a string, else NULL. */
const char *jx_get_str(json_object *o, ...) __attribute__((sentinel));

/* ---- PostgreSQL columns (json_pg.c; res is a const PGresult *) ---- */
/* Add column col of row as member key: a text column as a JSON string, an
 * integer, a boolean ('t'), a double; SQL NULL becomes JSON null. */
void jx_add_pg_str(json_object *o, const char *key, const void *res, int row, int col);
void jx_add_pg_int(json_object *o, const char *key, const void *res, int row, int col);
void jx_add_pg_bool(json_object *o, const char *key, const void *res, int row, int col);
void jx_add_pg_double(json_object *o, const char *key, const void *res, int row, int col);
/* A json/jsonb column, parsed and added as a JSON value. */
void jx_add_pg_json(json_object *o, const char *key, const void *res, int row, int col);

#endif
