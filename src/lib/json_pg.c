/*
 * json_pg.c — the PostgreSQL half of json.h: result columns to JSON
 * members. Called by: see json.h. Owns: nothing (the PGresult stays the
 * caller's; the new values belong to the object they are added to).
 *
 * NOTES: a separate file so that json.o needs no libpq: programs and unit
 * tests that only read JSON (the backends, the metrics tests) do not link
 * it. Integer and double columns are converted from their text form; a
 * json/jsonb column that does not parse (it cannot, coming from Postgres)
 * would be added as null.
 */
#include "lib/json.h"

#include <libpq-fe.h>
#include <stdlib.h>

#define PG(res) ((const PGresult *)(res))

static void add(json_object *o, const char *key, json_object *v) { json_object_object_add(o, key, v); }

void jx_add_pg_str(json_object *o, const char *key, const void *res, int row, int col)
{
	if (PQgetisnull(PG(res), row, col))
		add(o, key, NULL);
	else
		add(o, key, json_object_new_string_len(PQgetvalue(PG(res), row, col),
						       PQgetlength(PG(res), row, col)));
}

void jx_add_pg_int(json_object *o, const char *key, const void *res, int row, int col)
{
	if (PQgetisnull(PG(res), row, col))
		add(o, key, NULL);
	else
		add(o, key, json_object_new_int64(strtoll(PQgetvalue(PG(res), row, col), NULL, 10)));
}

void jx_add_pg_bool(json_object *o, const char *key, const void *res, int row, int col)
{
	if (PQgetisnull(PG(res), row, col))
		add(o, key, NULL);
	else
		add(o, key, json_object_new_boolean(PQgetvalue(PG(res), row, col)[0] == 't'));
}

void jx_add_pg_double(json_object *o, const char *key, const void *res, int row, int col)
{
	if (PQgetisnull(PG(res), row, col))
		add(o, key, NULL);
	else
		add(o, key, json_object_new_double(strtod(PQgetvalue(PG(res), row, col), NULL)));
}

void jx_add_pg_json(json_object *o, const char *key, const void *res, int row, int col)
{
	if (PQgetisnull(PG(res), row, col))
		add(o, key, NULL);
	else
		add(o, key, json_tokener_parse(PQgetvalue(PG(res), row, col)));
}
