/*
 * json.c — the reading half of json.h (json-c only; see json_pg.c for
 * result columns). Called by: see json.h. Owns: nothing.
 */
#include "lib/json.h"

#include <stdarg.h>

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *jx_str(json_object *o, const char *key)
{
	json_object *v = member(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int jx_has(json_object *o, const char *key)
{
	return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, NULL);
}

double jx_num(json_object *o, const char *key, double def)
{
	json_object *v = member(o, key);

	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_double(v);
}

static json_object *walk(json_object *o, va_list ap)
{
	const char *k;

	while (o && (k = va_arg(ap, const char *)) != NULL)
		o = member(o, k);
	return o;
}

json_object *jx_get(json_object *o, ...)
{
	va_list ap;

	va_start(ap, o);
	o = walk(o, ap);
	va_end(ap);
	return o;
}

const char *jx_get_str(json_object *o, ...)
{
	va_list ap;

	va_start(ap, o);
	o = walk(o, ap);
	va_end(ap);
	return json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}
