/*
 * ctl_client.c — modelhubctl submit / status / result / cancel: a client
 * of the HTTP API for scripts (the same calls as the curl recipes of
 * docs/anonymous-requests.md).
 *
 * Runs in: modelhubctl. Called by: main.c (commands table).
 * Owns: one curl easy handle per call and the response buffer, both freed
 * before returning; the token read from a file (wiped when done).
 *
 * Where the hub and the token come from (first found wins):
 *   URL    --url, client.url (env MODELHUB_CLIENT_URL), http://127.0.0.1:8080
 *   token  --token-file FILE, client.token (env MODELHUB_CLIENT_TOKEN),
 *          client.token_file (env MODELHUB_CLIENT_TOKEN_FILE); without one,
 *          submit asks for an anonymous token (POST /api/auth/anon) and
 *          prints it on stderr so status/result can use it afterwards.
 * Exit status: 0 done; 1 an API or transport error (the API's message on
 * stderr), a FAILED or CANCELLED request with --wait; 2 usage.
 *
 * DESIGN: --wait polls GET /api/requests/{id} every CLIENT_POLL_MS (the API
 * holds no long-lived connection); on a terminal stderr it redraws one
 * progress line, otherwise it prints nothing until the end.
 */
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/config.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_POLL_MS 1000        /* --wait: one status call a second */
#define CLIENT_TIMEOUT_S 300       /* one HTTP call (a large upload or download) */
#define CLIENT_TOKEN_MAX 256

struct client {
	char url[512];
	char token[CLIENT_TOKEN_MAX];
};

struct reply {
	long status;
	struct buf body;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;

	buf_add(b, p, size * n);
	return b->oom ? 0 : size * n;
}

/* One call; 0 with *rep filled (any HTTP status), -1 transport error
 * (reported). body may be NULL; rep->body is the caller's to buf_free. */
static int call(const struct client *c, const char *method, const char *path,
		const char *body, size_t blen, const char *ctype, struct reply *rep)
{
	char url[1024], auth[CLIENT_TOKEN_MAX + 32], ct[128];
	struct curl_slist *h = NULL;
	CURL *e = curl_easy_init();
	CURLcode cc;

	memset(rep, 0, sizeof *rep);
	if (!e)
		return -1;
	snprintf(url, sizeof url, "%s%s", c->url, path);
	if (c->token[0]) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
		h = curl_slist_append(h, auth);
		sodium_memzero(auth, sizeof auth);
	}
	if (ctype) {
		snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
		h = curl_slist_append(h, ct);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "modelhubctl/" MH_VERSION);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)CLIENT_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &rep->body);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	}
	cc = curl_easy_perform(e);
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &rep->status);
	else
		fprintf(stderr, "modelhubctl: %s %s: %s\n", method, url, curl_easy_strerror(cc));
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return cc == CURLE_OK ? 0 : -1;
}

/* The reply as JSON (NULL when it is not). The caller puts it. */
static json_object *reply_json(const struct reply *rep)
{
	return rep->body.data ? json_tokener_parse(rep->body.data) : NULL;
}

/* Report a non-2xx answer with the API's error message; returns 1. */
static int api_error(const char *what, const struct reply *rep)
{
	json_object *j = reply_json(rep), *err, *code, *msg;

	if (j && json_object_object_get_ex(j, "error", &err) &&
	    json_object_object_get_ex(err, "code", &code) &&
	    json_object_object_get_ex(err, "message", &msg))
		fprintf(stderr, "modelhubctl: %s: %ld %s: %s\n", what, rep->status,
			json_object_get_string(code), json_object_get_string(msg));
	else
		fprintf(stderr, "modelhubctl: %s: HTTP %ld\n", what, rep->status);
	json_object_put(j);
	return 1;
}

/* Token from a file: the first line, trimmed. 0 / -1 (reported). */
static int token_from_file(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	size_t len;

	if (!f || !fgets(out, (int)n, f)) {
		fprintf(stderr, "modelhubctl: cannot read the token from %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	len = strcspn(out, "\r\n \t");
	out[len] = '\0';
	return 0;
}

static int client_init(const struct ctl_opts *o, struct client *c)
{
	const char *url = o->url ? o->url : cfg_str("client.url", "http://127.0.0.1:8080");
	const char *tf = o->token_file ? o->token_file : cfg_str("client.token_file", "");
	const char *tok = o->token_file ? "" : cfg_str("client.token", "");
	size_t ul = strlen(url);

	memset(c, 0, sizeof *c);
	if (ul == 0 || ul >= sizeof c->url) {
		fprintf(stderr, "modelhubctl: bad --url\n");
		return -1;
	}
	snprintf(c->url, sizeof c->url, "%.*s", (int)(url[ul - 1] == '/' ? ul - 1 : ul), url);
	if (tok && *tok)
		snprintf(c->token, sizeof c->token, "%s", tok);
	else if (tf && *tf && token_from_file(tf, c->token, sizeof c->token) < 0)
		return -1;
	return 0;
}

static int anon_token(struct client *c)
{
	struct reply rep;
	json_object *j, *t;
	int rc = 1;

	if (call(c, "POST", "/api/auth/anon", "", 0, NULL, &rep) < 0)
		return 1;
	if (rep.status != 201) {
		rc = api_error("anonymous token", &rep);
	} else if ((j = reply_json(&rep)) && json_object_object_get_ex(j, "token", &t)) {
		snprintf(c->token, sizeof c->token, "%s", json_object_get_string(t));
		fprintf(stderr, "modelhubctl: no token given: using the anonymous token %s "
			"(set MODELHUB_CLIENT_TOKEN to it for status/result/cancel)\n", c->token);
		json_object_put(j);
		rc = 0;
	}
	buf_free(&rep.body);
	return rc;
}

/* A request id argument: digits only. */
static int id_arg(const char *s, long long *id)
{
	char *end;

	*id = strtoll(s, &end, 10);
	if (!*s || *end || *id <= 0) {
		fprintf(stderr, "modelhubctl: %s is not a request id\n", s);
		return -1;
	}
	return 0;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

static long jprog(json_object *o, const char *k)
{
	json_object *p, *v;

	if (!json_object_object_get_ex(o, "progress", &p) || !json_object_object_get_ex(p, k, &v))
		return 0;
	return (long)json_object_get_int64(v);
}

/* GET the request: 0 with *out (put by the caller), 1 error (reported). */
static int get_request(const struct client *c, long long id, json_object **out)
{
	char path[64];
	struct reply rep;
	int rc = 1;

	*out = NULL;
	snprintf(path, sizeof path, "/api/requests/%lld", id);
	if (call(c, "GET", path, NULL, 0, NULL, &rep) < 0)
		return 1;
	if (rep.status != 200)
		rc = api_error("status", &rep);
	else if ((*out = reply_json(&rep)) != NULL)
		rc = 0;
	buf_free(&rep.body);
	return rc;
}

static int terminal(const char *st)
{
	return st && (!strcmp(st, "COMPLETED") || !strcmp(st, "FAILED") || !strcmp(st, "CANCELLED"));
}

static void print_status(FILE *f, json_object *r)
{
	const char *fr = jstr(r, "failure_reason"), *fd = jstr(r, "failure_detail");

	fprintf(f, "%s %s %ld/%ld", jstr(r, "id"), jstr(r, "status"), jprog(r, "done"),
		jprog(r, "total"));
	if (fr)
		fprintf(f, " %s%s%s", fr, fd ? ": " : "", fd ? fd : "");
	fputc('\n', f);
}

/* ---- result ---- */

static int fetch_result(const struct client *c, long long id, const char *format,
			const char *out)
{
	char path[96];
	struct reply rep;
	FILE *f;
	int rc = 1;

	snprintf(path, sizeof path, "/api/requests/%lld/result?format=%s", id, format);
	if (call(c, "GET", path, NULL, 0, NULL, &rep) < 0)
		return 1;
	if (rep.status != 200) {
		rc = api_error("result", &rep);
		goto done;
	}
	f = out && strcmp(out, "-") != 0 ? fopen(out, "w") : stdout;
	if (!f) {
		fprintf(stderr, "modelhubctl: cannot write %s\n", out);
		goto done;
	}
	if (rep.body.len)
		fwrite(rep.body.data, 1, rep.body.len, f);
	rc = (f == stdout ? fflush(f) : fclose(f)) == 0 ? 0 : 1;
done:
	buf_free(&rep.body);
	return rc;
}

static const char *format_of(const struct ctl_opts *o)
{
	const char *fmt = o->format ? o->format : "csv";

	if (strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0) {
		fprintf(stderr, "modelhubctl: --format must be csv or json\n");
		return NULL;
	}
	return fmt;
}

int ctl_result(const struct ctl_opts *o)
{
	struct client c;
	long long id;
	const char *fmt = format_of(o);

	if (!fmt || id_arg(o->args[0], &id) < 0)
		return 2;
	if (client_init(o, &c) < 0)
		return 1;
	return fetch_result(&c, id, fmt, o->out);
}

/* ---- status, cancel ---- */

int ctl_status(const struct ctl_opts *o)
{
	struct client c;
	json_object *r;
	long long id;

	if (id_arg(o->args[0], &id) < 0)
		return 2;
	if (client_init(o, &c) < 0 || get_request(&c, id, &r) != 0)
		return 1;
	if (o->format && strcmp(o->format, "json") == 0)
		printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
	else
		print_status(stdout, r);
	json_object_put(r);
	return 0;
}

int ctl_cancel(const struct ctl_opts *o)
{
	struct client c;
	struct reply rep;
	json_object *r;
	char path[64];
	long long id;
	int rc = 1;

	if (id_arg(o->args[0], &id) < 0)
		return 2;
	if (client_init(o, &c) < 0)
		return 1;
	snprintf(path, sizeof path, "/api/requests/%lld", id);
	if (call(&c, "DELETE", path, NULL, 0, NULL, &rep) < 0)
		return 1;
	if (rep.status != 200) {
		rc = api_error("cancel", &rep);
	} else if ((r = reply_json(&rep)) != NULL) {
		print_status(stdout, r);
		json_object_put(r);
		rc = 0;
	}
	buf_free(&rep.body);
	return rc;
}

/* ---- submit ---- */

static int read_file(const char *path, struct buf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[65536];
	size_t n;

	if (!f) {
		fprintf(stderr, "modelhubctl: cannot open %s\n", path);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(b, chunk, n);
	if (f != stdin)
		fclose(f);
	if (b->oom || b->len == 0) {
		fprintf(stderr, "modelhubctl: %s is empty or too large\n", path);
		return -1;
	}
	return 0;
}

/* Poll until the request ends; progress on a terminal. 0 COMPLETED, 1 not. */
static int wait_done(const struct client *c, long long id)
{
	int tty = isatty(STDERR_FILENO), rc = 1;
	struct timespec ts = {CLIENT_POLL_MS / 1000, (CLIENT_POLL_MS % 1000) * 1000000L};
	json_object *r = NULL;

	for (;;) {
		if (get_request(c, id, &r) != 0)
			return 1;
		const char *st = jstr(r, "status");
		long done = jprog(r, "done"), total = jprog(r, "total");
		if (tty) {
			int w = total > 0 ? (int)(30 * done / total) : 0;
			fprintf(stderr, "\rrequest %lld [%.*s%*s] %ld/%ld %-9s", id, w,
				"##############################", 30 - w, "", done, total, st);
		}
		if (terminal(st))
			break;
		json_object_put(r);
		nanosleep(&ts, NULL);
	}
	if (tty)
		fputc('\n', stderr);
	rc = strcmp(jstr(r, "status"), "COMPLETED") == 0 ? 0 : 1;
	if (rc)
		print_status(stderr, r);
	json_object_put(r);
	return rc;
}

int ctl_submit(const struct ctl_opts *o)
{
	struct client c;
	struct buf file = BUF_INIT;
	struct reply rep = {0};
	json_object *j = NULL;
	char path[256];
	const char *fmt = format_of(o);
	long long id = 0;
	int rc = 1;

	if (!fmt)
		return 2;
	if (client_init(o, &c) < 0 || read_file(o->args[1], &file) < 0)
		goto out;
	if (!c.token[0] && anon_token(&c) != 0)
		goto out;
	snprintf(path, sizeof path, "/api/models/%s/requests?has_header=%s", o->args[0],
		 o->header ? "true" : "false");
	if (call(&c, "POST", path, file.data, file.len, "text/csv", &rep) < 0)
		goto out;
	if (rep.status != 201 && rep.status != 200) {
		rc = api_error("submit", &rep);
		goto out;
	}
	j = reply_json(&rep);
	id = j && jstr(j, "id") ? strtoll(jstr(j, "id"), NULL, 10) : 0;
	if (id <= 0) {
		fprintf(stderr, "modelhubctl: submit: no request id in the answer\n");
		goto out;
	}
	if (!o->wait) {
		printf("%lld\n", id);
		rc = 0;
		goto out;
	}
	fprintf(stderr, "modelhubctl: request %lld submitted\n", id);
	rc = wait_done(&c, id);
	if (rc == 0)
		rc = fetch_result(&c, id, fmt, o->out);
out:
	json_object_put(j);
	buf_free(&rep.body);
	buf_free(&file);
	sodium_memzero(c.token, sizeof c.token);
	return rc;
}
