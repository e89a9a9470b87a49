/*
 * api_core.c — responses, errors and request helpers shared by every handler.
 *
 * Runs in: modelhub-fcgi workers (and the C unit tests, with r->fcgi NULL).
 * Called by: worker.c (api_req_init/api_req_end/api_render), router.c and
 * every api_<resource>.c.
 * Owns: nothing global. Everything allocated here for a request hangs off
 * the struct api_req (body, params, api_own list, header/body buffers) and
 * is released by api_req_end().
 *
 * DESIGN: one table (err_tab) maps enum api_err to the HTTP status, the
 * default error code and the reason phrase, so a status is never chosen in
 * a handler. API_INTERNAL bodies never carry the handler's text: the detail
 * goes to the log line (with the request id) and the client gets a generic
 * message plus the request id to quote.
 */
#include "fcgi/api.h"
#include "lib/log.h"
#include "lib/utf8.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_JSON_MAX_DEPTH 32

static const struct {
	int status;
	const char *code;
	const char *reason;
} err_tab[API_ERR_MAX] = {
	[API_OK] = {200, "ok", "OK"},
	[API_BAD_REQUEST] = {400, "bad_request", "Bad Request"},
	[API_UNAUTHORIZED] = {401, "unauthorized", "Unauthorized"},
	[API_FORBIDDEN] = {403, "forbidden", "Forbidden"},
	[API_NOT_FOUND] = {404, "not_found", "Not Found"},
	[API_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", "Method Not Allowed"},
	[API_CONFLICT] = {409, "conflict", "Conflict"},
	[API_TOO_LARGE] = {413, "body_too_large", "Payload Too Large"},
	[API_UNSUPPORTED_MEDIA] = {415, "unsupported_media_type", "Unsupported Media Type"},
	[API_UNPROCESSABLE] = {422, "validation_failed", "Unprocessable Entity"},
	[API_RATE_LIMITED] = {429, "rate_limited", "Too Many Requests"},
	[API_INTERNAL] = {500, "internal", "Internal Server Error"},
	[API_UNAVAILABLE] = {503, "unavailable", "Service Unavailable"},
};

int api_status_of(enum api_err e)
{
	return (unsigned)e < API_ERR_MAX ? err_tab[e].status : 500;
}

const char *api_err_code(enum api_err e)
{
	return (unsigned)e < API_ERR_MAX ? err_tab[e].code : "internal";
}

static const char *reason_of(int status)
{
	switch (status) {
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	}
	for (int i = 0; i < API_ERR_MAX; i++)
		if (err_tab[i].status == status)
			return err_tab[i].reason;
	return status < 400 ? "OK" : "Error";
}

/* ---- lifecycle ---- */

void api_req_init(struct api_req *r)
{
	memset(r, 0, sizeof *r);
	r->method = "";
	r->path = "";
	r->query = "";
}

void api_req_end(struct api_req *r)
{
	for (int i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->body);
	free(r->path_copy);
	buf_free(&r->headers);
	buf_free(&r->out);
	r->owned = NULL;
	r->nowned = r->cap_owned = 0;
	r->body = NULL;
	r->path_copy = NULL;
}

void *api_own(struct api_req *r, void *p)
{
	if (!p)
		return NULL;
	if (r->nowned == r->cap_owned) {
		int ncap = r->cap_owned ? r->cap_owned * 2 : 8;
		void **n = realloc(r->owned, (size_t)ncap * sizeof *n);
		if (!n) {
			/* Cannot track it: free now rather than leak; caller gets NULL. */
			free(p);
			return NULL;
		}
		r->owned = n;
		r->cap_owned = ncap;
	}
	r->owned[r->nowned++] = p;
	return p;
}

/* ---- responses ---- */

enum api_err api_json(struct api_req *r, int status, json_object *obj)
{
	const char *s;

	if (!obj)
		return api_fail(r, API_INTERNAL, "internal", "no JSON object (out of memory?)");
	s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	buf_reset(&r->out);
	buf_adds(&r->out, s);
	json_object_put(obj);
	if (r->out.oom)
		return api_fail(r, API_INTERNAL, "internal", "out of memory building response");
	r->status = status;
	r->out_type = "application/json";
	return API_OK;
}

enum api_err api_text(struct api_req *r, int status, const char *type, const char *text,
		      size_t len)
{
	buf_reset(&r->out);
	if (len)
		buf_add(&r->out, text, len);
	if (r->out.oom)
		return api_fail(r, API_INTERNAL, "internal", "out of memory building response");
	r->status = status;
	r->out_type = type;
	return API_OK;
}

void api_header(struct api_req *r, const char *name, const char *fmt, ...)
{
	char val[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof val, fmt, ap);
	va_end(ap);
	/* A header value must never split the response: drop CR/LF. */
	for (char *p = val; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	buf_printf(&r->headers, "%s: %s\r\n", name, val);
}

static enum api_err fail_v(struct api_req *r, enum api_err e, const char *code,
			   json_object *fields, const char *fmt, va_list ap)
{
	char msg[512];
	json_object *root, *err;

	if ((unsigned)e >= API_ERR_MAX || e == API_OK)
		e = API_INTERNAL;
	vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
	if (e == API_INTERNAL) {
		log_error_x("api msg=\"internal error\" method=%s path=%s detail=\"%s\"",
			    r->method, r->path, msg);
		snprintf(msg, sizeof msg, "internal error (request id %s)", r->req_id);
		code = "internal";
		if (fields) {
			json_object_put(fields);
			fields = NULL;
		}
	}
	root = json_object_new_object();
	err = json_object_new_object();
	if (!root || !err) {
		json_object_put(root);
		json_object_put(err);
		json_object_put(fields);
		buf_reset(&r->out);
		buf_adds(&r->out, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
		r->status = 500;
		r->out_type = "application/json";
		r->has_error = 1;
		return API_INTERNAL;
	}
	json_object_object_add(err, "code", json_object_new_string(code ? code : api_err_code(e)));
	json_object_object_add(err, "message", json_object_new_string(msg));
	if (fields)
		json_object_object_add(err, "fields", fields);
	json_object_object_add(root, "error", err);
	buf_reset(&r->out);
	buf_adds(&r->out, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	r->status = api_status_of(e);
	r->out_type = "application/json";
	r->has_error = 1;
	return e;
}

enum api_err api_fail(struct api_req *r, enum api_err e, const char *code, const char *fmt, ...)
{
	va_list ap;
	enum api_err rc;

	va_start(ap, fmt);
	rc = fail_v(r, e, code, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

enum api_err api_fail_fields(struct api_req *r, enum api_err e, const char *code,
			     json_object *fields, const char *fmt, ...)
{
	va_list ap;
	enum api_err rc;

	va_start(ap, fmt);
	rc = fail_v(r, e, code, fields, fmt, ap);
	va_end(ap);
	return rc;
}

enum api_err api_db_fail(struct api_req *r)
{
	const char *st = r->db ? db_sqlstate(r->db) : "";

	if (r->db && db_is_unique_violation(r->db))
		return api_fail(r, API_CONFLICT, "conflict", "the object already exists");
	if (r->db && db_is_unavailable(r->db))
		return api_fail(r, API_UNAVAILABLE, "db_unavailable",
				"the database is unavailable, retry later");
	if (strcmp(st, "23514") == 0 || strcmp(st, "23502") == 0 || strcmp(st, "22P02") == 0)
		return api_fail(r, API_UNPROCESSABLE, "validation_failed",
				"the values break a database constraint");
	if (strncmp(st, "22", 2) == 0) /* data exception: bad date, UTF-8, range... */
		return api_fail(r, API_BAD_REQUEST, "bad_request",
				"a value in the request is not valid (sqlstate %s)", st);
	if (strcmp(st, "23503") == 0)
		return api_fail(r, API_CONFLICT, "conflict",
				"the object is referenced by or refers to a missing object");
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
		return api_fail(r, API_CONFLICT, "conflict", "concurrent update, retry");
	return api_fail(r, API_INTERNAL, "internal", "database error sqlstate=%s", st);
}

void api_render(struct api_req *r, struct buf *o)
{
	int status = r->status ? r->status : 500;

	buf_printf(o, "Status: %d %s\r\n", status, reason_of(status));
	if (status != 204 && status != 304)
		buf_printf(o, "Content-Type: %s\r\nContent-Length: %zu\r\n",
			   r->out_type ? r->out_type : "application/json", r->out.len);
	buf_printf(o, "X-Request-Id: %s\r\nCache-Control: no-store\r\n", r->req_id);
	if (r->headers.len)
		buf_add(o, r->headers.data, r->headers.len);
	buf_adds(o, "\r\n");
	if (status != 204 && status != 304 && r->out.len && strcmp(r->method, "HEAD") != 0)
		buf_add(o, r->out.data, r->out.len);
}

FCGX_Stream *api_stream_begin(struct api_req *r, int status, const char *type)
{
	struct buf h = BUF_INIT;

	if (!r->fcgi)
		return NULL;
	buf_printf(&h, "Status: %d %s\r\nContent-Type: %s\r\nX-Request-Id: %s\r\n"
		   "Cache-Control: no-store\r\n", status, reason_of(status), type, r->req_id);
	if (r->headers.len)
		buf_add(&h, r->headers.data, r->headers.len);
	buf_adds(&h, "\r\n");
	FCGX_PutStr(h.data, (int)h.len, r->fcgi->out);
	buf_free(&h);
	r->status = status;
	r->streamed = 1;
	return r->fcgi->out;
}

/* ---- request helpers ---- */

const char *api_env(struct api_req *r, const char *name)
{
	size_t n;

	if (r->fcgi)
		return FCGX_GetParam(name, r->fcgi->envp);
	if (!r->env)
		return NULL;
	n = strlen(name);
	for (char *const *e = r->env; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int media_is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* An RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int rfc_number(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
	else
		return 0;
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && isdigit((unsigned char)s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && isdigit((unsigned char)s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	return i == n;
}

static int rfc_word(const char *s, size_t n)
{
	return (n == 4 && (memcmp(s, "true", 4) == 0 || memcmp(s, "null", 4) == 0)) ||
	       (n == 5 && memcmp(s, "false", 5) == 0) || rfc_number(s, n);
}

/* json-c accepts 'single-quoted' strings even in strict mode, and NaN,
 * Infinity, +1, 01, .5 and 1. as numbers; RFC 8259 does not. 1 when every
 * token outside double-quoted strings is RFC 8259. */
static int rfc_tokens(const char *s, size_t n)
{
	int in_str = 0;

	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = 0;
		} else if (s[i] == '"') {
			in_str = 1;
		} else if (s[i] == '\'') {
			return 0;
		} else if (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.') {
			size_t j = i;
			while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '-' || s[j] == '+' ||
					 s[j] == '.'))
				j++;
			if (!rfc_word(s + i, j - i))
				return 0;
			i = j - 1;
		}
	}
	return 1;
}

/* 1 when no string in o holds a NUL (from \u0000), which neither
 * C strings nor Postgres text/jsonb can carry, and no number overflowed
 * to infinity. */
static int no_nul(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		return strlen(json_object_get_string(o)) == (size_t)json_object_get_string_len(o);
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (!no_nul(json_object_array_get_idx(o, i)))
				return 0;
		return 1;
	case json_type_object: {
		/* keys are C strings in json-c: a \u0000 truncates them */
		json_object_object_foreach(o, k, v) {
			(void)k;
			if (!no_nul(v))
				return 0;
		}
		return 1;
	}
	case json_type_double: /* 1e999 parses to inf */
		return isfinite(json_object_get_double(o));
	default:
		return 1;
	}
}

enum api_err api_body_json(struct api_req *r, json_object **out)
{
	struct json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	size_t used;

	*out = NULL;
	if (!media_is_json(r->content_type))
		return api_fail(r, API_UNSUPPORTED_MEDIA, "unsupported_media_type",
				"the body must be application/json");
	if (!r->body || r->body_len == 0)
		return api_fail(r, API_BAD_REQUEST, "bad_json", "the body is empty");
	if (r->body_len > (size_t)INT32_MAX)
		return api_fail(r, API_TOO_LARGE, "body_too_large", "the body is too large");
	if (!utf8_valid(r->body, r->body_len))
		return api_fail(r, API_BAD_REQUEST, "bad_json", "the body is not valid UTF-8");
	tok = json_tokener_new_ex(API_JSON_MAX_DEPTH);
	if (!tok)
		return api_fail(r, API_INTERNAL, "internal", "json_tokener_new failed");
	/* RFC 8259 only: no single quotes, trailing commas or comments */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_success) {
		/* Only whitespace may follow the value. */
		for (size_t i = used; i < r->body_len; i++)
			if (!isspace((unsigned char)r->body[i])) {
				jerr = json_tokener_error_parse_unexpected;
				break;
			}
	} else if (jerr == json_tokener_continue) {
		jerr = json_tokener_error_parse_eof;
	}
	if (jerr == json_tokener_success && !rfc_tokens(r->body, r->body_len))
		jerr = json_tokener_error_parse_unexpected;
	if (jerr != json_tokener_success) {
		json_object_put(o);
		return api_fail(r, API_BAD_REQUEST, "bad_json", "invalid JSON: %s",
				json_tokener_error_desc(jerr));
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return api_fail(r, API_BAD_REQUEST, "bad_json", "the body must be a JSON object");
	}
	if (!no_nul(o)) {
		json_object_put(o);
		return api_fail(r, API_BAD_REQUEST, "bad_json",
				"\\u0000 in a string or a number out of range");
	}
	*out = o;
	return API_OK;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode %XX and (when plus) '+' of [s, s+n) into dst (size > n).
 * Returns the decoded length. Invalid escapes are kept literally. */
static size_t url_decode(char *dst, const char *s, size_t n, int plus)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n &&
		    (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)s[i + 2])) >= 0) {
			dst[j++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (plus && s[i] == '+') {
			dst[j++] = ' ';
		} else {
			dst[j++] = s[i];
		}
	}
	dst[j] = '\0';
	return j;
}

char *api_url_decode(const char *s, size_t n, int plus)
{
	char *d = malloc(n + 1);

	if (d)
		url_decode(d, s, n, plus);
	return d;
}

const char *api_query(struct api_req *r, const char *name)
{
	const char *q = r->query ? r->query : "";
	size_t nl = strlen(name);

	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		char *key = api_url_decode(q, klen, 1);

		if (key && strlen(key) == nl && memcmp(key, name, nl) == 0) {
			free(key);
			if (!eq)
				return api_own(r, strdup(""));
			return api_own(r, api_url_decode(eq + 1, len - klen - 1, 1));
		}
		free(key);
		q += len;
		if (*q == '&')
			q++;
	}
	return NULL;
}

