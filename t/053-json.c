/* t/053-json.c — unit tests of the json-c helpers (lib/json.c, lib/json_pg.c): readers, key paths, result columns. */
#include "lib/json.h"
#include "../t/lib/tap.h"

#include <libpq-fe.h>

static void readers(void)
{
	json_object *o = json_tokener_parse(
		"{\"a\":1,\"b\":\"x\",\"d\":2.5,\"n\":null,\"t\":true,\"s\":\"7\",\"arr\":[1]}");

	is_str(jx_str(o, "b"), "x", "jx_str");
	ok(jx_str(o, "a") == NULL, "jx_str of a number is NULL");
	ok(jx_str(o, "n") == NULL, "jx_str of null is NULL");
	ok(jx_str(o, "zz") == NULL, "jx_str of a missing key is NULL");
	ok(jx_str(NULL, "b") == NULL, "jx_str of NULL is NULL");
	ok(jx_str(jx_get(o, "arr", NULL), "0") == NULL, "jx_str of an array is NULL");
	ok(jx_has(o, "a") && jx_has(o, "n"), "jx_has: present, null included");
	ok(!jx_has(o, "zz") && !jx_has(NULL, "a"), "jx_has: missing, NULL object");
	ok(!jx_has(jx_get(o, "b", NULL), "x"), "jx_has on a string is 0");
	is_dbl(jx_num(o, "a", -1), 1, 0, "jx_num of an integer");
	is_dbl(jx_num(o, "d", -1), 2.5, 0, "jx_num of a double");
	is_dbl(jx_num(o, "s", -1), -1, 0, "jx_num of a numeric string is the default");
	is_dbl(jx_num(o, "t", -1), -1, 0, "jx_num of a boolean is the default");
	is_dbl(jx_num(o, "n", -3), -3, 0, "jx_num of null is the default");
	is_dbl(jx_num(o, "zz", 9), 9, 0, "jx_num of a missing key is the default");
	is_dbl(jx_num(NULL, "a", 4), 4, 0, "jx_num of NULL is the default");
	json_object_put(o);
}

static void paths(void)
{
	json_object *pod = json_tokener_parse(
		"{\"metadata\":{\"name\":\"p1\",\"labels\":{\"app\":\"m\"}},"
		"\"status\":{\"phase\":\"Running\",\"n\":3,\"list\":[{\"x\":1}]}}");

	is_str(jx_get_str(pod, "metadata", "name", NULL), "p1", "two-step path");
	is_str(jx_get_str(pod, "metadata", "labels", "app", NULL), "m", "three-step path");
	ok(jx_get(pod, NULL) == pod, "empty path is the object itself");
	ok(jx_get(pod, "status", "n", NULL) != NULL, "path to a number");
	ok(jx_get_str(pod, "status", "n", NULL) == NULL, "jx_get_str of a number is NULL");
	ok(jx_get(pod, "status", "missing", "deeper", NULL) == NULL, "missing step is NULL");
	ok(jx_get(pod, "status", "phase", "deeper", NULL) == NULL, "step through a string is NULL");
	ok(jx_get(pod, "status", "list", "0", NULL) == NULL, "step through an array is NULL");
	ok(jx_get(NULL, "a", NULL) == NULL, "NULL object is NULL");
	is_dbl(jx_num(jx_get(pod, "status", NULL), "n", -1), 3, 0, "jx_num after jx_get");
	is_dbl(jx_num(jx_get(pod, "nope", NULL), "n", -1), -1, 0, "jx_num after a failed jx_get");
	json_object_put(pod);
}

/* jx_add_pg_* on a hand-built PGresult (no server needed) */
static void columns(void)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[5];
	const char *vals[5] = {"hello", "-42", "t", "2.5", "{\"k\":[1]}"};
	json_object *row = json_object_new_object();

	memset(att, 0, sizeof att);
	for (int i = 0; i < 5; i++)
		att[i].name = (char *)"c";
	PQsetResultAttrs(res, 5, att);
	for (int i = 0; i < 5; i++) {
		PQsetvalue(res, 0, i, (char *)vals[i], (int)strlen(vals[i]));
		PQsetvalue(res, 1, i, NULL, -1);
	}
	PQsetvalue(res, 2, 0, (char *)"a\0b", 3); /* text with its length, not up to a NUL */
	PQsetvalue(res, 2, 2, (char *)"f", 1);
	PQsetvalue(res, 2, 1, (char *)"9007199254740993", 16);
	jx_add_pg_str(row, "s", res, 0, 0);
	jx_add_pg_int(row, "i", res, 0, 1);
	jx_add_pg_bool(row, "b", res, 0, 2);
	jx_add_pg_double(row, "d", res, 0, 3);
	jx_add_pg_json(row, "j", res, 0, 4);
	jx_add_pg_str(row, "sn", res, 1, 0);
	jx_add_pg_int(row, "in", res, 1, 1);
	jx_add_pg_bool(row, "bn", res, 1, 2);
	jx_add_pg_double(row, "dn", res, 1, 3);
	jx_add_pg_json(row, "jn", res, 1, 4);
	jx_add_pg_bool(row, "bf", res, 2, 2);
	jx_add_pg_int(row, "big", res, 2, 1);
	is_str(json_object_to_json_string_ext(row, JSON_C_TO_STRING_PLAIN),
	       "{\"s\":\"hello\",\"i\":-42,\"b\":true,\"d\":2.5,\"j\":{\"k\":[1]},"
	       "\"sn\":null,\"in\":null,\"bn\":null,\"dn\":null,\"jn\":null,\"bf\":false,"
	       "\"big\":9007199254740993}", "jx_add_pg_* values and NULLs");
	jx_add_pg_str(row, "nul", res, 2, 0);
	is_int(json_object_get_string_len(jx_get(row, "nul", NULL)), 3, "text column keeps its length");
	json_object_put(row);
	PQclear(res);
}

int main(void)
{
	readers();
	paths();
	columns();
	return done_testing();
}
