/* 012-json — fcgi/api_core.c: status table, error bodies, JSON body parsing, query parsing (jx_* helpers: t/053). */
#include "fcgi/api.h"
#include "lib/log.h"
#include "lib/tap.h"

#include <stdlib.h>
#include <string.h>

static json_object *out_json(struct api_req *r)
{
	return json_tokener_parse(buf_cstr(&r->out));
}

static void req(struct api_req *r, const char *ct, const char *body)
{
	api_req_init(r);
	strcpy(r->req_id, "rid42");
	r->content_type = ct;
	if (body) {
		r->body = strdup(body);
		r->body_len = strlen(body);
	}
}

static int body_status(const char *ct, const char *body, const char *want_code)
{
	struct api_req r;
	json_object *o = NULL, *j, *e, *c;
	enum api_err rc;
	int good;

	req(&r, ct, body);
	rc = api_body_json(&r, &o);
	j = out_json(&r);
	good = rc != API_OK && o == NULL && json_object_object_get_ex(j, "error", &e) &&
	       json_object_object_get_ex(e, "code", &c) &&
	       strcmp(json_object_get_string(c), want_code) == 0;
	if (!good)
		printf("# rc=%d out=%s\n", rc, buf_cstr(&r.out));
	json_object_put(j);
	json_object_put(o);
	api_req_end(&r);
	return good;
}

int main(void)
{
	static const int want[API_ERR_MAX] = {200, 400, 401, 403, 404, 405, 409, 413, 415, 422,
					      429, 500, 503};
	struct api_req r;
	json_object *o, *e, *v, *fields;

	log_init("t012");

	/* one table maps every enum */
	for (int i = 0; i < API_ERR_MAX; i++)
		is_int(api_status_of((enum api_err)i), want[i], "status of enum %d", i);
	is_int(api_status_of(API_ERR_MAX), 500, "out of range enum is 500");
	is_str(api_err_code(API_NOT_FOUND), "not_found", "default code not_found");
	is_str(api_err_code(API_UNPROCESSABLE), "validation_failed", "default code validation_failed");
	is_str(api_err_code(API_TOO_LARGE), "body_too_large", "default code body_too_large");

	/* api_fail / api_fail_fields */
	req(&r, NULL, NULL);
	ok(api_fail(&r, API_CONFLICT, "stale_version", "now %d", 3) == API_CONFLICT,
	   "api_fail returns its enum");
	is_int(r.status, 409, "api_fail sets the status");
	o = out_json(&r);
	ok(json_object_object_get_ex(o, "error", &e), "body has error");
	is_str(json_object_get_string(json_object_object_get(e, "code")), "stale_version", "code");
	is_str(json_object_get_string(json_object_object_get(e, "message")), "now 3", "message");
	ok(!json_object_object_get_ex(e, "fields", NULL), "no fields key without fields");
	is_str(r.out_type, "application/json", "error type is JSON");
	json_object_put(o);
	api_req_end(&r);

	req(&r, NULL, NULL);
	fields = json_object_new_object();
	json_object_object_add(fields, "email", json_object_new_string("required"));
	api_fail_fields(&r, API_UNPROCESSABLE, "validation_failed", fields, "bad");
	o = out_json(&r);
	e = json_object_object_get(o, "error");
	v = json_object_object_get(e, "fields");
	ok(v && json_object_is_type(v, json_type_object), "fields object present");
	is_str(jx_str(v, "email"), "required", "field message");
	is_int(r.status, 422, "422");
	json_object_put(o);
	api_req_end(&r);

	req(&r, NULL, NULL);
	api_fail(&r, API_OK, "x", "API_OK is not an error");
	is_int(r.status, 500, "api_fail with API_OK becomes 500");
	api_req_end(&r);

	req(&r, NULL, NULL);
	api_fail(&r, API_UNAVAILABLE, "db_unavailable", "%s", "quote \" and \\ backslash\n");
	o = out_json(&r);
	ok(o != NULL, "message with quotes and newline still gives valid JSON");
	json_object_put(o);
	api_req_end(&r);

	req(&r, NULL, NULL);
	ok(api_db_fail(&r) == API_INTERNAL && r.status == 500, "api_db_fail without a db: 500");
	api_req_end(&r);

	/* api_json / api_text */
	req(&r, NULL, NULL);
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string("/a/b"));
	ok(api_json(&r, 201, o) == API_OK && r.status == 201, "api_json status");
	is_str(buf_cstr(&r.out), "{\"path\":\"/a/b\"}", "plain JSON, slashes not escaped");
	api_req_end(&r);
	req(&r, NULL, NULL);
	ok(api_json(&r, 200, NULL) == API_INTERNAL && r.status == 500, "api_json(NULL) is 500");
	api_req_end(&r);

	/* api_body_json */
	req(&r, "application/json", "{\"a\": [1, 2], \"b\": \"x\"}  \n");
	ok(api_body_json(&r, &o) == API_OK && o, "valid object with trailing whitespace");
	is_str(jx_str(o, "b"), "x", "parsed members");
	json_object_put(o);
	api_req_end(&r);
	req(&r, "application/json", "{\"a\":\"it's \\\" ok\"}");
	ok(api_body_json(&r, &o) == API_OK, "a single quote inside a string is fine");
	json_object_put(o);
	api_req_end(&r);
	req(&r, "Application/JSON; charset=utf-8", "{}");
	ok(api_body_json(&r, &o) == API_OK, "media type is case-insensitive, parameters allowed");
	json_object_put(o);
	api_req_end(&r);
	ok(body_status("text/plain", "{}", "unsupported_media_type"), "text/plain: 415");
	ok(body_status(NULL, "{}", "unsupported_media_type"), "no content type: 415");
	ok(body_status("application/jsonx", "{}", "unsupported_media_type"), "application/jsonx: 415");
	ok(body_status("application/json", NULL, "bad_json"), "empty body: 400");
	ok(body_status("application/json", "{\"a\":", "bad_json"), "truncated JSON: 400");
	ok(body_status("application/json", "{\"a\":1} x", "bad_json"), "trailing garbage: 400");
	ok(body_status("application/json", "{\"a\":1}{}", "bad_json"), "two objects: 400");
	ok(body_status("application/json", "[1,2]", "bad_json"), "array instead of object: 400");
	ok(body_status("application/json", "\"str\"", "bad_json"), "string instead of object: 400");
	ok(body_status("application/json", "{'a':1}", "bad_json"), "single quotes: 400");
	ok(body_status("application/json", "{\"a\":\"\xff\"}", "bad_json"), "invalid UTF-8: 400");
	ok(body_status("application/json", "{\"a\":\"\xc0\xaf\"}", "bad_json"), "overlong UTF-8: 400");
	ok(body_status("application/json", "{\"a\":\"\xed\xa0\x80\"}", "bad_json"),
	   "UTF-8 surrogate: 400");
	ok(body_status("application/json", "{\"a\":\"\xe2\x82\"}", "bad_json"), "truncated UTF-8: 400");
	ok(body_status("application/json", "{\"a\":{\"b\":[\"x\\u0000y\"]}}", "bad_json"),
	   "\\u0000 deep inside: 400");
	req(&r, "application/json", "{\"a\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\u00e9\"}");
	ok(api_body_json(&r, &o) == API_OK, "valid multi-byte UTF-8 and \\u escapes accepted");
	json_object_put(o);
	api_req_end(&r);
	{
		char d[256] = "{\"a\":";
		for (int i = 0; i < 40; i++)
			strcat(d, "[");
		ok(body_status("application/json", d, "bad_json"), "nesting deeper than 32: 400");
	}
	req(&r, "application/json", "{}");
	r.status = 0;
	api_body_json(&r, &o);
	is_int(r.status, 0, "a good body sets no status");
	json_object_put(o);
	api_req_end(&r);

	/* api_query */
	req(&r, NULL, NULL);
	r.query = "a=1&name=J%C3%B6rg+M&empty=&flag&name2=x&n%61me3=y&bad=%zz%4";
	is_str(api_query(&r, "a"), "1", "simple parameter");
	is_str(api_query(&r, "name"), "J\xc3\xb6rg M", "percent and plus decoded");
	is_str(api_query(&r, "empty"), "", "empty value");
	is_str(api_query(&r, "flag"), "", "key without =");
	is_str(api_query(&r, "name3"), "y", "encoded key");
	is_str(api_query(&r, "bad"), "%zz%4", "invalid escapes kept literally");
	ok(api_query(&r, "nam") == NULL, "prefix of a key does not match");
	ok(api_query(&r, "missing") == NULL, "missing parameter");
	api_req_end(&r);
	req(&r, NULL, NULL);
	r.query = "";
	ok(api_query(&r, "a") == NULL, "empty query");
	api_req_end(&r);

	/* api_env with the unit-test environment */
	{
		char *env[] = {"HTTP_HOST=h", "HTTP_HOSTX=no", "REMOTE_ADDR=127.0.0.1", NULL};
		req(&r, NULL, NULL);
		r.env = env;
		is_str(api_env(&r, "HTTP_HOST"), "h", "api_env exact name");
		is_str(api_env(&r, "REMOTE_ADDR"), "127.0.0.1", "api_env");
		ok(api_env(&r, "HTTP_HOS") == NULL, "api_env prefix does not match");
		api_req_end(&r);
	}

	/* api_own */
	req(&r, NULL, NULL);
	for (int i = 0; i < 50; i++)
		api_own(&r, malloc(10));
	is_int(r.nowned, 50, "api_own tracks many pointers (freed by api_req_end; ASan checks)");
	ok(api_own(&r, NULL) == NULL, "api_own(NULL) is NULL");
	api_req_end(&r);

	return done_testing();
}
