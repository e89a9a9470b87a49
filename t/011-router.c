/* 011-router — fcgi/router.c: matching, captures, 404/405+Allow, access rules, CSRF, handler failures, rendering. */
#include "fcgi/api.h"
#include "lib/log.h"
#include "lib/tap.h"

#include <string.h>

static int calls;
static char seen[4][64];

static enum api_err h_ok(struct api_req *r)
{
	calls++;
	for (int i = 0; i < r->nparams && i < 4; i++)
		snprintf(seen[i], sizeof seen[i], "%s", r->params[i]);
	return api_text(r, 200, "text/plain", "hi", 2);
}
static enum api_err h_noresp(struct api_req *r) { (void)r; calls++; return API_OK; }
static enum api_err h_bare_err(struct api_req *r) { (void)r; calls++; return API_CONFLICT; }
static enum api_err h_internal(struct api_req *r)
{
	calls++;
	return api_fail(r, API_INTERNAL, "oops", "secret detail password=hunter2");
}

static const struct api_route t_routes[] = {
	{"GET", "/api/things", ACCESS_PUBLIC, h_ok},
	{"POST", "/api/things", ACCESS_USER, h_ok},
	{"GET", "/api/things/{}", ACCESS_SESSION, h_ok},
	{"DELETE", "/api/things/{}", ACCESS_ADMIN, h_ok},
	{"PATCH", "/api/things/{}", ACCESS_ADMIN, h_ok},
	{"GET", "/api/things/{}/parts/{}", ACCESS_PUBLIC, h_ok},
	{"GET", "/api/noresp", ACCESS_PUBLIC, h_noresp},
	{"GET", "/api/bare", ACCESS_PUBLIC, h_bare_err},
	{"GET", "/api/internal", ACCESS_PUBLIC, h_internal},
	{0},
};
static const struct api_route t_more[] = {
	{"PUT", "/api/things/{}", ACCESS_ADMIN, h_ok},
	{0},
};
static const struct api_route *const t_tables[] = {t_routes, t_more, NULL};

enum who { NOBODY, EXPIRED, ANON, USER, ADMIN };

static void setup(struct api_req *r, const char *method, const char *path, enum who w,
		  char *const *env)
{
	api_req_init(r);
	strcpy(r->req_id, "test0001");
	r->method = method;
	r->path = path;
	r->env = env;
	calls = 0;
	memset(seen, 0, sizeof seen);
	if (w == EXPIRED)
		r->auth_error = 1;
	if (w >= ANON)
		r->auth.present = 1;
	if (w == ANON)
		r->auth.is_anon = 1;
	if (w >= USER)
		r->auth.user_id = 7;
	if (w == ADMIN)
		r->auth.is_admin = 1;
}

static const char *code_of(struct api_req *r)
{
	static char code[64];
	json_object *o = json_tokener_parse(buf_cstr(&r->out)), *e, *c;

	code[0] = '\0';
	if (o && json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "code", &c))
		snprintf(code, sizeof code, "%s", json_object_get_string(c));
	json_object_put(o);
	return code;
}

static int run(const char *method, const char *path, enum who w, int want_status,
	       const char *want_code)
{
	struct api_req r;
	int good;

	setup(&r, method, path, w, NULL);
	api_route(&r, t_tables);
	good = r.status == want_status && (!want_code || strcmp(code_of(&r), want_code) == 0);
	if (!good)
		printf("# %s %s: status %d body %s\n", method, path, r.status, buf_cstr(&r.out));
	api_req_end(&r);
	return good;
}

int main(void)
{
	struct api_req r;
	struct buf out = BUF_INIT;

	log_init("t011");
	log_set_level(LOG_ERROR);

	/* matching and captures */
	setup(&r, "GET", "/api/things", NOBODY, NULL);
	ok(api_route(&r, t_tables) == API_OK && r.status == 200 && calls == 1, "literal route");
	api_req_end(&r);
	setup(&r, "GET", "/api/things/abc", ANON, NULL);
	api_route(&r, t_tables);
	is_int(r.status, 200, "one capture");
	is_int(r.nparams, 1, "nparams 1");
	is_str(seen[0], "abc", "capture value");
	api_req_end(&r);
	setup(&r, "GET", "/api/things/a%20b%2Fc/parts/x.y-z", NOBODY, NULL);
	api_route(&r, t_tables);
	is_str(seen[0], "a b/c", "capture is percent-decoded");
	is_str(seen[1], "x.y-z", "second capture");
	api_req_end(&r);

	ok(run("GET", "/api/nothing", NOBODY, 404, "not_found"), "unknown path 404 not_found");
	ok(run("GET", "/api/things/", NOBODY, 404, "not_found"), "empty segment does not match {}");
	ok(run("GET", "/api/things/a/b", NOBODY, 404, "not_found"), "extra segment 404");
	ok(run("GET", "/api/thing", NOBODY, 404, "not_found"), "prefix of a literal 404");
	ok(run("GET", "/api/thingsX", NOBODY, 404, "not_found"), "longer literal 404");
	ok(run("GET", "", NOBODY, 404, "not_found"), "empty path 404");
	ok(run("GET", "/", NOBODY, 404, "not_found"), "root 404");
	ok(run("GET", "/api/things/a/parts/", NOBODY, 404, "not_found"), "empty last capture 404");

	/* 405 with Allow, across tables, no duplicates */
	setup(&r, "POST", "/api/things/abc", ADMIN, NULL);
	api_route(&r, t_tables);
	is_int(r.status, 405, "wrong method 405");
	is_str(code_of(&r), "method_not_allowed", "code method_not_allowed");
	ok(strstr(buf_cstr(&r.headers), "Allow: GET, DELETE, PATCH, PUT\r\n") != NULL,
	   "Allow lists the methods of every table, once each");
	ok(calls == 0, "no handler ran");
	api_req_end(&r);
	setup(&r, "DELETE", "/api/things", ADMIN, NULL);
	api_route(&r, t_tables);
	ok(r.status == 405 && strstr(buf_cstr(&r.headers), "Allow: GET, POST\r\n"),
	   "Allow for the collection");
	api_req_end(&r);

	/* access */
	ok(run("POST", "/api/things", NOBODY, 401, "unauthorized"), "USER route, nobody: 401");
	ok(run("POST", "/api/things", EXPIRED, 401, "session_expired"),
	   "USER route, expired token: 401 session_expired");
	ok(run("POST", "/api/things", ANON, 403, "forbidden"), "USER route, anonymous: 403");
	ok(run("POST", "/api/things", USER, 200, NULL), "USER route, user: 200");
	ok(run("POST", "/api/things", ADMIN, 200, NULL), "USER route, admin: 200");
	ok(run("GET", "/api/things/x", NOBODY, 401, "unauthorized"), "SESSION route, nobody: 401");
	ok(run("GET", "/api/things/x", EXPIRED, 401, "session_expired"),
	   "SESSION route, expired: session_expired");
	ok(run("GET", "/api/things/x", ANON, 200, NULL), "SESSION route, anonymous: 200");
	ok(run("DELETE", "/api/things/x", NOBODY, 401, "unauthorized"), "ADMIN route, nobody: 401");
	ok(run("DELETE", "/api/things/x", ANON, 403, "forbidden"), "ADMIN route, anonymous: 403");
	ok(run("DELETE", "/api/things/x", USER, 403, "forbidden"), "ADMIN route, user: 403");
	ok(run("DELETE", "/api/things/x", ADMIN, 200, NULL), "ADMIN route, admin: 200");
	ok(run("GET", "/api/things", EXPIRED, 200, NULL), "PUBLIC route ignores an expired token");
	setup(&r, "DELETE", "/api/things/x", USER, NULL);
	api_route(&r, t_tables);
	ok(calls == 0, "a forbidden caller never reaches the handler");
	api_req_end(&r);

	/* CSRF for cookie sessions */
	{
		char *none[] = {NULL};
		char *xrw[] = {"HTTP_X_REQUESTED_WITH=fetch", NULL};
		char *same[] = {"HTTP_ORIGIN=https://hub.example", "HTTP_HOST=hub.example", NULL};
		char *other[] = {"HTTP_ORIGIN=https://evil.example", "HTTP_HOST=hub.example", NULL};

		setup(&r, "DELETE", "/api/things/x", ADMIN, none);
		r.auth.via_cookie = 1;
		api_route(&r, t_tables);
		ok(r.status == 403 && strcmp(code_of(&r), "csrf") == 0 && calls == 0,
		   "cookie DELETE without header: 403 csrf");
		api_req_end(&r);
		setup(&r, "DELETE", "/api/things/x", ADMIN, xrw);
		r.auth.via_cookie = 1;
		api_route(&r, t_tables);
		is_int(r.status, 200, "cookie DELETE with X-Requested-With: allowed");
		api_req_end(&r);
		setup(&r, "PATCH", "/api/things/x", ADMIN, same);
		r.auth.via_cookie = 1;
		api_route(&r, t_tables);
		is_int(r.status, 200, "cookie PATCH with same-origin Origin: allowed");
		api_req_end(&r);
		setup(&r, "PUT", "/api/things/x", ADMIN, other);
		r.auth.via_cookie = 1;
		api_route(&r, t_tables);
		ok(r.status == 403 && strcmp(code_of(&r), "csrf") == 0, "cookie PUT cross-origin: csrf");
		api_req_end(&r);
		setup(&r, "GET", "/api/things/x", USER, none);
		r.auth.via_cookie = 1;
		api_route(&r, t_tables);
		is_int(r.status, 200, "cookie GET needs no CSRF header");
		api_req_end(&r);
		setup(&r, "DELETE", "/api/things/x", ADMIN, none);
		api_route(&r, t_tables);
		is_int(r.status, 200, "Bearer DELETE needs no CSRF header");
		api_req_end(&r);
	}

	/* handler failures */
	ok(run("GET", "/api/noresp", NOBODY, 500, "internal"), "handler without a response: 500");
	ok(run("GET", "/api/bare", NOBODY, 409, "conflict"),
	   "error enum without a body gets the default code");
	setup(&r, "GET", "/api/internal", NOBODY, NULL);
	api_route(&r, t_tables);
	is_int(r.status, 500, "internal error 500");
	is_str(code_of(&r), "internal", "internal code replaces the handler's code");
	ok(!strstr(buf_cstr(&r.out), "hunter2") && !strstr(buf_cstr(&r.out), "secret"),
	   "internal detail is not sent: %s", buf_cstr(&r.out));
	ok(strstr(buf_cstr(&r.out), "test0001") != NULL, "internal error quotes the request id");

	/* rendering */
	api_render(&r, &out);
	ok(strncmp(buf_cstr(&out), "Status: 500 Internal Server Error\r\n", 35) == 0,
	   "render: status line");
	ok(strstr(buf_cstr(&out), "X-Request-Id: test0001\r\n") != NULL, "render: X-Request-Id");
	ok(strstr(buf_cstr(&out), "Content-Type: application/json\r\n") != NULL, "render: type");
	ok(strstr(buf_cstr(&out), "\r\n\r\n{\"error\"") != NULL, "render: body after blank line");
	buf_free(&out);
	api_req_end(&r);

	setup(&r, "GET", "/x", NOBODY, NULL);
	api_text(&r, 204, NULL, "", 0);
	api_header(&r, "X-Evil", "a\r\nSet-Cookie: x=1");
	api_render(&r, &out);
	ok(strstr(buf_cstr(&out), "Status: 204 No Content\r\n") && !strstr(buf_cstr(&out), "Content-Length"),
	   "204 has no body headers");
	ok(!strstr(buf_cstr(&out), "\r\nSet-Cookie"), "CR/LF in a header value cannot inject a header");
	buf_free(&out);
	api_req_end(&r);

	/* HEAD is served by the GET route, without a body */
	setup(&r, "HEAD", "/api/things", NOBODY, NULL);
	api_route(&r, t_tables);
	ok(r.status == 200 && calls == 1, "HEAD runs the GET handler");
	api_render(&r, &out);
	ok(strstr(buf_cstr(&out), "Content-Length: 2\r\n") && strstr(buf_cstr(&out), "\r\n\r\n") &&
	   strcmp(strstr(buf_cstr(&out), "\r\n\r\n"), "\r\n\r\n") == 0,
	   "HEAD: headers (with the GET length) and no body");
	buf_free(&out);
	api_req_end(&r);
	ok(run("HEAD", "/api/things/x", NOBODY, 401, "unauthorized"), "HEAD obeys the GET route's access");

	/* the real table list */
	setup(&r, "GET", "/api/ping", NOBODY, NULL);
	ok(api_dispatch(&r) == API_OK && r.status == 200, "api_dispatch serves /api/ping");
	api_req_end(&r);
	setup(&r, "POST", "/api/models", USER, NULL);
	api_dispatch(&r);
	ok(r.status == 403, "api_dispatch: POST /api/models is admin-only (403 for a user)");
	api_req_end(&r);
	setup(&r, "PUT", "/api/health", NOBODY, NULL);
	api_dispatch(&r);
	ok(r.status == 405 && strstr(buf_cstr(&r.headers), "Allow: GET"), "api_dispatch: 405 on /api/health");
	api_req_end(&r);
	return done_testing();
}
