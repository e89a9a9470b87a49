/*
 * api_requests.h — the work request machinery of api_requests.c offered to
 * other front ends of the same request objects (api_compat.c: the old
 * Ersilia hub's routes). There is one submit path and one result
 * formatter; these entry points reach them without an HTTP route.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_compat.c.
 * Owns: nothing beyond the call; see each function.
 */
#ifndef MH_API_REQUESTS_H
#define MH_API_REQUESTS_H

#include <stdint.h>

#include <json-c/json.h>

#include "fcgi/api.h"
#include "lib/buf.h"

/* A submit: entries are the lines of a CSV (strings; blank ones skipped),
 * read with the same rules as every other body (csvin.h), then the same
 * model checks, Idempotency-Key, cache lookup and insert as
 * POST /api/requests. */
struct api_submit {
	const char *model_id;
	json_object *entries;   /* array, borrowed */
	int has_header;         /* 1, 0, or -1 (detected by name) */
	int cache_opt_in;       /* forced off for anonymous callers */
	const char *source;     /* metadata.source, e.g. "ersilia" */
	/* out */
	int64_t id;
	int created;            /* 1 new; 0 an idempotent retry (id is the first) */
	int header;             /* 1 when a header line was taken */
};

/* API_OK with in->id set and no response; else the error response is set
 * (the same codes as POST /api/requests). */
enum api_err api_requests_submit(struct api_req *r, struct api_submit *in);

#define API_RESULT_CSV 1     /* CSV (else the JSON document) */
#define API_RESULT_SORTED 2  /* output columns sorted by name */
#define API_RESULT_PLAIN 4   /* without the key/extra columns of the upload */

/* The result body of the caller's COMPLETED request id, as
 * GET /api/requests/{id}/result would send it, whole into *out (which the
 * caller frees with buf_free). Errors as that route (404, 409 not_ready /
 * request_failed / request_cancelled), with the response set. */
enum api_err api_requests_result(struct api_req *r, int64_t id, int flags, struct buf *out);

#endif
