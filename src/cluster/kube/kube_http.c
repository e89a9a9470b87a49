/*
 * kube_http.c — REST calls and watch streams to the Kubernetes API server.
 *
 * Runs in: modelhubd children using the kubernetes backend, modelhubctl.
 * Called by: kube.c, kube_watch.c, kube_nodes.c, kube_scrape.c.
 * Owns: one CURL easy handle per client (calls), a second one per watch
 * while it runs, the token (sodium-free zeroing with explicit_bzero).
 *
 * DESIGN
 * - The token file is stat()ed at most once a second before a call and
 *   re-read when its inode, size or mtime changed: kubelet-projected
 *   service-account tokens are replaced by an atomic symlink swap, so the
 *   inode changes. A 401 forces a re-read and one retry.
 * - TLS is verified against kube.ca_file (or the system store); only
 *   kube.insecure = 1 turns verification off, and that is logged once.
 * - A watch is a chunked answer of JSON documents separated by newlines;
 *   lines are reassembled across writes. A connection that sends nothing
 *   for idle_ms is treated as dead (the caller resumes from its last
 *   resourceVersion), because a half-open TCP connection never errors.
 */
#include "cluster/kube/kube_http.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KUBE_TOKEN_CHECK_MS 1000
#define KUBE_CONNECT_MS 5000

struct kube_http {
	struct kube_conf kc;
	CURL *easy;
	char token[4096];
	ino_t tok_ino;
	off_t tok_size;
	struct timespec tok_mtime;
	int64_t tok_checked_ms;
	int warned_insecure;
	int64_t retry_after_ms;   /* of the last call */
	kube_perform_fn perform;  /* kube_http_set_perform; NULL: block */
	void *perform_ctx;
};

static void read_small_file(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t k;

	out[0] = '\0';
	if (!f)
		return;
	k = fread(out, 1, n - 1, f);
	out[k] = '\0';
	fclose(f);
	while (k > 0 && (out[k - 1] == '\n' || out[k - 1] == '\r' || out[k - 1] == ' '))
		out[--k] = '\0';
}

int kube_conf_load(struct kube_conf *kc)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char host_name[128] = "";
	struct stat st;

	memset(kc, 0, sizeof *kc);
	snprintf(kc->server, sizeof kc->server, "%s", cfg_str("kube.server", ""));
	if (!kc->server[0] && host && host[0])
		snprintf(kc->server, sizeof kc->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
			 host, port && port[0] ? port : "443");
	while (kc->server[0] && kc->server[strlen(kc->server) - 1] == '/')
		kc->server[strlen(kc->server) - 1] = '\0';
	snprintf(kc->token, sizeof kc->token, "%s", cfg_str("kube.token", ""));
	snprintf(kc->token_file, sizeof kc->token_file, "%s",
		 cfg_str("kube.token_file", KUBE_SA_DIR "/token"));
	snprintf(kc->ca_file, sizeof kc->ca_file, "%s", cfg_str("kube.ca_file", ""));
	if (!kc->ca_file[0] && stat(KUBE_SA_DIR "/ca.crt", &st) == 0)
		snprintf(kc->ca_file, sizeof kc->ca_file, "%s", KUBE_SA_DIR "/ca.crt");
	kc->insecure = cfg_bool("kube.insecure", 0);
	snprintf(kc->ns, sizeof kc->ns, "%s", cfg_str("kube.namespace", ""));
	if (!kc->ns[0])
		read_small_file(KUBE_SA_DIR "/namespace", kc->ns, sizeof kc->ns);
	if (!kc->ns[0])
		snprintf(kc->ns, sizeof kc->ns, "modelhub-models");
	gethostname(host_name, sizeof host_name - 1);
	snprintf(kc->replica, sizeof kc->replica, "%s", cfg_str("hub.replica_id", host_name));
	kc->port_offset = (int)cfg_int("kube.port_offset", 0);
	if (!kc->server[0]) {
		log_error_x("kube msg=\"no API server: set kube.server or run in a cluster "
			    "(KUBERNETES_SERVICE_HOST)\"");
		return -1;
	}
	return 0;
}

/* Re-read the token file when it changed (or force). 0, -1 unreadable. */
static int token_check(struct kube_http *h, int force)
{
	struct stat st;
	int64_t now = mh_mono_ms();

	if (h->kc.token[0])
		return 0;
	if (!force && h->token[0] && now - h->tok_checked_ms < KUBE_TOKEN_CHECK_MS)
		return 0;
	h->tok_checked_ms = now;
	if (stat(h->kc.token_file, &st) < 0) {
		if (!h->token[0])
			return -1;
		return 0; /* keep the token we have; the file may be mid-swap */
	}
	if (!force && h->token[0] && st.st_ino == h->tok_ino && st.st_size == h->tok_size &&
	    st.st_mtim.tv_sec == h->tok_mtime.tv_sec && st.st_mtim.tv_nsec == h->tok_mtime.tv_nsec)
		return 0;
	explicit_bzero(h->token, sizeof h->token);
	read_small_file(h->kc.token_file, h->token, sizeof h->token);
	h->tok_ino = st.st_ino;
	h->tok_size = st.st_size;
	h->tok_mtime = st.st_mtim;
	log_info("kube path=%s msg=\"token (re)loaded\"", h->kc.token_file);
	return h->token[0] ? 0 : -1;
}

int kube_http_token_refresh(struct kube_http *h)
{
	return token_check(h, 1);
}

struct kube_http *kube_http_new(const struct kube_conf *kc)
{
	struct kube_http *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->kc = *kc;
	h->easy = curl_easy_init();
	if (!h->easy) {
		free(h);
		return NULL;
	}
	token_check(h, 1);
	return h;
}

void kube_http_free(struct kube_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->easy);
	explicit_bzero(h->token, sizeof h->token);
	explicit_bzero(h->kc.token, sizeof h->kc.token);
	free(h);
}

const struct kube_conf *kube_http_conf(const struct kube_http *h)
{
	return &h->kc;
}

static size_t to_buf(char *p, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;

	if (b)
		buf_add(b, p, sz * n);
	return sz * n;
}

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

/* Headers for a call; NULL on allocation failure. */
static struct curl_slist *headers(struct kube_http *h, const char *ctype, int has_body)
{
	struct curl_slist *l = NULL, *t;
	const char *tok = h->kc.token[0] ? h->kc.token : h->token;
	char auth[4200];

	l = curl_slist_append(l, "Accept: application/json");
	if (l && has_body) {
		char ct[160];
		snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
		t = curl_slist_append(l, ct);
		l = t ? t : (curl_slist_free_all(l), NULL);
	}
	if (l && tok[0]) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
		t = curl_slist_append(l, auth);
		explicit_bzero(auth, sizeof auth);
		l = t ? t : (curl_slist_free_all(l), NULL);
	}
	return l;
}

static void setup(struct kube_http *h, CURL *e, const char *path, struct curl_slist *hdrs,
		  int timeout_ms)
{
	char url[2048];

	snprintf(url, sizeof url, "%s%s", h->kc.server, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)KUBE_CONNECT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (h->kc.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
		if (!h->warned_insecure++)
			log_warn_x("kube msg=\"TLS verification is off (kube.insecure = 1)\"");
	} else {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		if (h->kc.ca_file[0])
			curl_easy_setopt(e, CURLOPT_CAINFO, h->kc.ca_file);
	}
}

/* The server's certificate (or our CA file) is wrong: no retry helps. */
static int tls_refused(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR;
}

void kube_http_set_perform(struct kube_http *h, kube_perform_fn fn, void *ctx)
{
	h->perform = fn;
	h->perform_ctx = ctx;
}

/* Set e up for one call (method, body, answer into out). */
static void call_setup(struct kube_http *h, CURL *e, const char *method, const char *path,
		       struct curl_slist *hdrs, const char *body, struct buf *out, int timeout_ms)
{
	setup(h, e, path, hdrs, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, out ? to_buf : discard);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
}

/* One transfer of e: through the perform hook (another call may run
 * meanwhile) or blocking. Sets *status and h->retry_after_ms. */
static CURLcode call_perform(struct kube_http *h, CURL *e, long *status)
{
	CURLcode rc = h->perform ? (CURLcode)h->perform(h->perform_ctx, e) : curl_easy_perform(e);
	curl_off_t ra = 0;

	h->retry_after_ms = 0;
	if (rc != CURLE_OK)
		return rc;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
		h->retry_after_ms = ra > 3600 ? 3600000 : (int64_t)ra * 1000;
	return rc;
}

long kube_http_call(struct kube_http *h, const char *method, const char *path, const char *ctype,
		    const char *body, struct buf *out, int timeout_ms)
{
	size_t mark = out ? out->len : 0;
	long status = -1;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct curl_slist *hdrs;
		CURL *e = h->perform ? curl_easy_init() : h->easy;
		CURLcode rc;

		token_check(h, attempt > 0);
		hdrs = e ? headers(h, ctype, body != NULL) : NULL;
		if (!hdrs) {
			if (e && e != h->easy)
				curl_easy_cleanup(e);
			return -1;
		}
		if (e == h->easy)
			curl_easy_reset(e);
		call_setup(h, e, method, path, hdrs, body, out, timeout_ms);
		if (out) {
			out->len = mark;
			if (out->data)
				out->data[mark] = '\0';
		}
		rc = call_perform(h, e, &status);
		curl_slist_free_all(hdrs);
		if (e != h->easy)
			curl_easy_cleanup(e);
		if (rc != CURLE_OK) {
			log_warn_x("kube method=%s path=\"%s\" error=\"%s\" msg=\"API call failed\"", method,
				   path, curl_easy_strerror(rc));
			return tls_refused(rc) ? KUBE_HTTP_TLS : -1;
		}
		if (status != 401 || h->kc.token[0])
			break;
	}
	if (status == 401 || status == 403)
		log_warn_x("kube method=%s path=\"%s\" status=%ld msg=\"API call refused\"", method, path,
			   status);
	return status;
}

enum kube_fail kube_http_classify(long status, const char *body)
{
	if (status >= 200 && status < 300)
		return KUBE_FAIL_NONE;
	if (status == KUBE_HTTP_TLS)
		return KUBE_FAIL_FATAL;
	if (status < 0 || status == 429 || status >= 500)
		return KUBE_FAIL_RETRY;
	if (status == 403 && body && strstr(body, "exceeded quota"))
		return KUBE_FAIL_QUOTA;
	return KUBE_FAIL_FATAL;
}

int64_t kube_http_retry_after_ms(struct kube_http *h)
{
	return h->retry_after_ms;
}

struct json_object *kube_http_get_json(struct kube_http *h, const char *path, long *status,
				       int timeout_ms)
{
	struct buf b = BUF_INIT;
	struct json_object *o = NULL;

	*status = kube_http_call(h, "GET", path, NULL, NULL, &b, timeout_ms);
	if (*status >= 200 && *status < 300 && b.len > 0 && !b.oom)
		o = json_tokener_parse(buf_cstr(&b));
	buf_free(&b);
	return o;
}

/* ---- watch streams ---- */

struct wstate {
	struct buf line;
	kube_event_fn on_event;
	kube_tick_fn on_tick;
	void *arg;
	int stopped;
	int idle_ms;
	int64_t last_byte_ms, last_tick_ms;
	int idle_out;
};

static int one_line(struct wstate *w, const char *p, size_t n)
{
	struct json_object *ev;
	struct json_tokener *tok;

	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	tok = json_tokener_new();
	if (!tok)
		return -1;
	ev = json_tokener_parse_ex(tok, p, (int)n);
	json_tokener_free(tok);
	if (!ev) {
		log_warn_x("kube bytes=%zu msg=\"watch line is not JSON, skipped\"", n);
		return 0;
	}
	if (w->on_event(ev, w->arg)) {
		json_object_put(ev);
		return 1;
	}
	json_object_put(ev);
	return 0;
}

static size_t watch_write(char *p, size_t sz, size_t n, void *arg)
{
	struct wstate *w = arg;
	size_t len = sz * n, start = 0;

	w->last_byte_ms = mh_mono_ms();
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (w->line.len > 0) {
			buf_add(&w->line, p + start, i - start);
			if (w->line.oom)
				return 0;
			if (one_line(w, w->line.data, w->line.len)) {
				w->stopped = 1;
				return 0;
			}
			buf_reset(&w->line);
		} else if (one_line(w, p + start, i - start)) {
			w->stopped = 1;
			return 0;
		}
		start = i + 1;
	}
	if (start < len)
		buf_add(&w->line, p + start, len - start);
	return w->line.oom ? 0 : len;
}

static int watch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct wstate *w = arg;
	int64_t now = mh_mono_ms();

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	if (w->idle_ms > 0 && now - w->last_byte_ms > w->idle_ms) {
		w->idle_out = 1;
		return 1;
	}
	if (w->on_tick && now - w->last_tick_ms >= 1000) {
		w->last_tick_ms = now;
		if (w->on_tick(w->arg)) {
			w->stopped = 1;
			return 1;
		}
	}
	return 0;
}

long kube_http_watch(struct kube_http *h, const char *path, kube_event_fn on_event,
		     kube_tick_fn on_tick, void *arg, int idle_ms)
{
	struct wstate w;
	struct curl_slist *hdrs;
	CURL *e = curl_easy_init();
	CURLcode rc;
	long status = -1;

	if (!e)
		return -1;
	memset(&w, 0, sizeof w);
	w.on_event = on_event;
	w.on_tick = on_tick;
	w.arg = arg;
	w.idle_ms = idle_ms;
	w.last_byte_ms = w.last_tick_ms = mh_mono_ms();
	token_check(h, 0);
	hdrs = headers(h, NULL, 0);
	if (!hdrs) {
		curl_easy_cleanup(e);
		return -1;
	}
	setup(h, e, path, hdrs, 0);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &w);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	rc = curl_easy_perform(e);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_OK || w.stopped) {
		if (w.line.len > 0 && !w.stopped && one_line(&w, w.line.data, w.line.len))
			w.stopped = 1;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (w.stopped)
			status = 0;
	} else {
		log_warn_x("kube path=\"%s\" error=\"%s\" msg=\"watch stream broke\"", path,
			   w.idle_out ? "no data within the idle limit" : curl_easy_strerror(rc));
		status = -1;
	}
	buf_free(&w.line);
	curl_easy_cleanup(e);
	return status;
}

void *kube_http_easy(struct kube_http *h, const char *path, struct buf *out, void **hdrs,
		     int timeout_ms)
{
	CURL *e = curl_easy_init();
	struct curl_slist *l;

	*hdrs = NULL;
	if (!e)
		return NULL;
	token_check(h, 0);
	l = headers(h, NULL, 0);
	if (!l) {
		curl_easy_cleanup(e);
		return NULL;
	}
	setup(h, e, path, l, timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, to_buf);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	*hdrs = l;
	return e;
}

void kube_http_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (; *s && k + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[k++] = (char)c;
		} else {
			out[k++] = '%';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	out[k] = '\0';
}
