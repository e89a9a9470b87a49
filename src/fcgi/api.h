/*
 * api.h — the contract between the FastCGI accept loop, the router and the
 * per-resource handlers (api_<resource>.c).
 *
 * Runs in: modelhub-fcgi workers. Called by: worker.c (accept loop) and
 * every handler. Owns: nothing global; everything for one HTTP request hangs
 * off one struct api_req, freed by api_req_end() at the end of the
 * accept-loop iteration.
 *
 * Handler contract: a handler is `enum api_err h(struct api_req *r)`.
 * On success it has set a response with api_json()/api_text()/api_send_*
 * and returns API_OK. On failure it returns api_fail(r, API_x, "code",
 * "message", ...) which records the JSON error body; the router maps the
 * enum to the HTTP status through one table (api_status_of()).
 */
#ifndef MH_API_H
#define MH_API_H

#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "db/db.h"
#include "lib/buf.h"
#include "lib/json.h" /* jx_* member readers and result-column helpers */

enum api_err {
	API_OK = 0,
	API_BAD_REQUEST,        /* 400 */
	API_UNAUTHORIZED,       /* 401 */
	API_FORBIDDEN,          /* 403 */
	API_NOT_FOUND,          /* 404 */
	API_METHOD_NOT_ALLOWED, /* 405 */
	API_CONFLICT,           /* 409 */
	API_TOO_LARGE,          /* 413 */
	API_UNSUPPORTED_MEDIA,  /* 415 */
	API_UNPROCESSABLE,      /* 422 */
	API_RATE_LIMITED,       /* 429 */
	API_INTERNAL,           /* 500 */
	API_UNAVAILABLE,        /* 503 */
	API_ERR_MAX
};

int api_status_of(enum api_err e);

/* Who is calling. Filled by the auth step before the handler runs. */
struct api_auth {
	int present;            /* a valid session/token was given */
	int is_anon;            /* anonymous (curl) session */
	int is_admin;           /* roles contain ADMIN */
	int64_t user_id;        /* 0 for anon */
	int64_t session_id;     /* session row id (anon requests are keyed by it) */
	int via_cookie;         /* authenticated by cookie (CSRF rules apply) */
	char username[64];
	char expires_at[40];    /* idle expiry, ISO 8601 UTC */
	char absolute_expires_at[40];
};

#define API_MAX_PARAMS 4

struct api_req {
	FCGX_Request *fcgi;     /* NULL in unit tests */
	struct db *db;          /* the worker's connection */
	char req_id[24];        /* also in X-Request-Id and log lines */
	const char *method;
	const char *path;       /* without the query string */
	const char *query;      /* may be "" */
	const char *content_type;
	char *body;             /* NUL-terminated, owned */
	size_t body_len;
	const char *params[API_MAX_PARAMS]; /* {} captures, owned by req */
	int nparams;
	struct api_auth auth;
	int auth_error;         /* 1: token given but unknown/expired/revoked;
				 * 2: could not be checked (database down) */

	/* response */
	int status;
	struct buf headers;     /* extra "Name: value\r\n" lines */
	struct buf out;         /* body */
	const char *out_type;   /* content type of out */
	int streamed;           /* handler wrote the response itself */
	char *path_copy;        /* backing store for params */
	int64_t t_start_us;

	/* added by api_core.c (private to the core; handlers use the API) */
	char *const *env;       /* CGI variables when fcgi is NULL (unit tests) */
	void **owned;           /* api_own() list, freed by api_req_end() */
	int nowned, cap_owned;
	int has_error;          /* api_fail() recorded an error body */
};

/* Route table entry: pattern segments are literal or "{}" (one segment). */
enum api_access { ACCESS_PUBLIC = 0, ACCESS_SESSION, ACCESS_USER, ACCESS_ADMIN };

struct api_route {
	const char *method;     /* "GET", "POST", "PATCH", "DELETE", "PUT" */
	const char *pattern;    /* e.g. "/api/models/{}" */
	enum api_access access; /* checked by the router before the handler */
	enum api_err (*handler)(struct api_req *r);
};

/* Each api_<resource>.c exports one table terminated by {0}. */
extern const struct api_route api_health_routes[];
extern const struct api_route api_auth_routes[];
extern const struct api_route api_models_routes[];
extern const struct api_route api_requests_routes[];
extern const struct api_route api_instances_routes[];
extern const struct api_route api_recommend_routes[];
extern const struct api_route api_metrics_routes[];
extern const struct api_route api_autoscaler_routes[];
extern const struct api_route api_account_routes[];
extern const struct api_route api_users_routes[];
extern const struct api_route api_stats_routes[];
extern const struct api_route api_openapi_routes[];
extern const struct api_route api_compat_routes[];

/* api_compat.c, for api_auth.c: 1 when path is one of the old Ersilia
 * hub's routes (where `Authorization: ErsiliaAnonymous` is accepted);
 * and the modelhub token of such a credential (the base64 of the session
 * JSON): 1 with tok (64 hex) filled, -1 when malformed or inconsistent. */
int api_compat_route(const char *path);
int api_compat_token(const char *cred, char tok[65]);

/* api_autoscaler.c: 1 when a model's pod with these requests fits some node
 * group of autoscale.* (or none is configured); 0 with why filled. */
int api_autoscale_fits(int cpu_m, int mem_mib, char *why, size_t n);

/* ---- responses ---- */
/* Take ownership of obj (json_object_put'd here). */
enum api_err api_json(struct api_req *r, int status, json_object *obj);
enum api_err api_text(struct api_req *r, int status, const char *type, const char *text,
		      size_t len);
void api_header(struct api_req *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Record an error body; returns e so handlers can `return api_fail(...)`. */
enum api_err api_fail(struct api_req *r, enum api_err e, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Same with a "fields" object (owned) naming each rejected field. */
enum api_err api_fail_fields(struct api_req *r, enum api_err e, const char *code,
			     json_object *fields, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Map a failed db call to 409 (unique violation), 503 (unreachable) or 500. */
enum api_err api_db_fail(struct api_req *r);

/* ---- request helpers ---- */
/* Parse the body as a JSON object (415 if not application/json, 400 if bad). */
enum api_err api_body_json(struct api_req *r, json_object **out);
/* Decoded query parameter, or NULL. Result owned by the request. */
const char *api_query(struct api_req *r, const char *name);
/* The client's address (REMOTE_ADDR, or from X-Forwarded-For/Forwarded
 * when the peer is in http.trusted_proxies; see clientaddr.c). Static
 * buffer, valid until the next call. Defined in api_auth.c. */
const char *api_client_ip(struct api_req *r);
/* CGI variable (e.g. "HTTP_IDEMPOTENCY_KEY", "REMOTE_ADDR"), or NULL. */
const char *api_env(struct api_req *r, const char *name);
/* Percent-decode n bytes of s ('+' as space when plus); malloc'd, NULL on
 * out of memory. The caller frees (or api_own()s) it. */
char *api_url_decode(const char *s, size_t n, int plus);
/* Remember a pointer to free at api_req_end. Returns p (NULL if p was NULL
 * or could not be tracked, in which case p has been freed). */
void *api_own(struct api_req *r, void *p);

/* ---- lifecycle (worker.c, unit tests) ---- */
/* Zero r and set the defaults (status 0, empty buffers). */
void api_req_init(struct api_req *r);
/* Free everything the request owns (body, params, owned list, buffers). */
void api_req_end(struct api_req *r);
/* Route r through every resource table (router.c): access checks, CSRF,
 * handler, default error bodies. Always leaves a response in r. */
enum api_err api_dispatch(struct api_req *r);
/* Same over the given NULL-terminated list of tables (unit tests). */
enum api_err api_route(struct api_req *r, const struct api_route *const *tables);
/* Default snake_case error code of an enum value ("not_found", ...). */
const char *api_err_code(enum api_err e);
/* Serialise the response (Status, headers, X-Request-Id, body) into out;
 * used by the worker and by unit tests. */
void api_render(struct api_req *r, struct buf *out);
/* For large bodies (CSV downloads): write status and headers now and get
 * the stream to write the body to; sets r->streamed. NULL in unit tests. */
FCGX_Stream *api_stream_begin(struct api_req *r, int status, const char *type);

/* ---- api_metrics.c (called by main.c and the worker loop) ---- */
/* Master, before forking workers: shared request counters for /metrics.
 * -1 (logged) leaves them off; nothing else depends on them. */
int api_metrics_global_init(void);
/* Worker, after each response: count it (status, duration in us). */
void api_metrics_observe(int status, int64_t us);

/* ---- api_instances.c ---- */
/* The metrics segment of this replica, attached read-only per worker; NULL
 * while it cannot be attached. */
struct metrics_seg;
struct metrics_seg *api_seg(void);

#endif

/* ---- api_auth.c (called by the worker loop) ---- */
#ifndef MH_API_AUTH_DECL
#define MH_API_AUTH_DECL
/* Master, before forking workers: set up the shared revocation counter. */
int api_auth_global_init(void);
/* Per request, before routing: fill r->auth from the modelhub_session
 * cookie or Authorization: Bearer. Sets r->auth_error = 1 when a token was
 * given but is unknown/expired/revoked (the router then answers 401
 * session_expired for routes that need a session). */
void api_auth_resolve(struct api_req *r);
/* Rate limit of anonymous session creation (anon.per_ip_per_hour), for
 * every route that creates one (POST /api/auth/anon, the Ersilia
 * anonymous login): API_OK, or the 429 (with Retry-After) / 503 response. */
enum api_err api_auth_anon_admit(struct api_req *r);
/* CSRF rule for cookie-authenticated state-changing requests: 0 ok, -1 reject. */
int api_auth_csrf_ok(struct api_req *r);
/* Set (max_age > 0) or clear (token "", max_age 0) the session cookie
 * (HttpOnly, SameSite=Strict, Secure behind HTTPS). */
void api_auth_set_cookie(struct api_req *r, const char *token, long max_age);
#endif
