/*
 * api_openapi.c — GET /api/openapi.json: the OpenAPI 3.1 description of
 * every route (src/fcgi/openapi.json, compiled in by src/fcgi/local.mk as
 * the byte array api_openapi_json).
 *
 * Runs in: modelhub-fcgi workers. Called by: router.c (route table).
 * Owns: nothing (the document is static, read-only data).
 *
 * NOTES: the file is kept by hand next to the handlers; t/177-openapi.t
 * fails when a route of any table is missing from it (or it names one the
 * router does not have), when its access level differs from the table's,
 * and when a real answer of a route does not match the documented schema.
 * The web page #/api renders it (web/pages/api-docs.js).
 */
#include "fcgi/api.h"

#include <string.h>

extern const char api_openapi_json[];

static enum api_err openapi_get(struct api_req *r)
{
	return api_text(r, 200, "application/json", api_openapi_json, strlen(api_openapi_json));
}

const struct api_route api_openapi_routes[] = {
	{"GET", "/api/openapi.json", ACCESS_PUBLIC, openapi_get},
	{0},
};
