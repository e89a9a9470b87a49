/*
 * modelclient.c — HTTP client for ersilia-pack model servers (libcurl).
 *
 * Runs in: runners and the local backend. Called by: runner.c, local.c.
 * Owns: a CURL easy handle per struct mc (keep-alive to the last instance).
 * Shared state: none.
 *
 * NOTES: the tick callback runs from curl's progress function, so a long
 * SYNC /run call still lets the runner beat its heartbeat, renew its lease
 * and notice cancellation or SIGTERM; a non-zero tick aborts the transfer.
 * curl_global_init() is done once per process on first use (children call it
 * after fork, never the supervisor).
 */
#include "cluster/modelclient.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mc {
	CURL *h;
	mc_tick_fn tick;
	void *tick_ctx;
	int64_t last_tick;
	int aborted;
};

static int mc_inited;

struct mc *mc_new(void)
{
	struct mc *m;

	if (!mc_inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			log_error_x("modelclient msg=\"curl_global_init failed\"");
			return NULL;
		}
		mc_inited = 1;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->h = curl_easy_init();
	if (!m->h) {
		free(m);
		return NULL;
	}
	return m;
}

void mc_free(struct mc *m)
{
	if (!m)
		return;
	curl_easy_cleanup(m->h);
	free(m);
}

void mc_set_tick(struct mc *m, mc_tick_fn fn, void *ctx)
{
	m->tick = fn;
	m->tick_ctx = ctx;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;

	buf_add(b, p, size * n);
	return b->oom ? 0 : size * n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct mc *m = ud;
	int64_t now;

	(void)dt, (void)dn, (void)ut, (void)un;
	if (!m->tick)
		return 0;
	now = mh_mono_ms();
	if (now - m->last_tick < 1000)
		return 0;
	m->last_tick = now;
	if (m->tick(m->tick_ctx)) {
		m->aborted = 1;
		return 1;
	}
	return 0;
}

enum mc_rc mc_call(struct mc *m, const char *method, const char *address, const char *path,
		   const char *body, int timeout_ms, struct buf *out, long *status)
{
	char url[512];
	struct curl_slist *hdr = NULL;
	CURLcode cc;
	enum mc_rc rc;

	*status = 0;
	buf_reset(out);
	snprintf(url, sizeof url, "http://%s%s", address, path);
	curl_easy_reset(m->h);
	curl_easy_setopt(m->h, CURLOPT_URL, url);
	curl_easy_setopt(m->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(m->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(m->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? (long)timeout_ms : 5000L);
	curl_easy_setopt(m->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(m->h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(m->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(m->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(m->h, CURLOPT_XFERINFODATA, m);
	curl_easy_setopt(m->h, CURLOPT_PROXY, "");
	if (strcmp(method, "POST") == 0) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		hdr = curl_slist_append(hdr, "Expect:");
		curl_easy_setopt(m->h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(m->h, CURLOPT_POSTFIELDS, body ? body : "");
	}
	m->aborted = 0;
	m->last_tick = mh_mono_ms();
	cc = curl_easy_perform(m->h);
	curl_easy_getinfo(m->h, CURLINFO_RESPONSE_CODE, status);
	switch (cc) {
	case CURLE_OK:
		rc = MC_OK;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		rc = MC_CONN;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		rc = MC_TIMEOUT;
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		rc = m->aborted ? MC_ABORTED : MC_ERROR;
		break;
	default:
		rc = MC_ERROR;
		log_warn_x("modelclient url=%s%s msg=\"call failed\" error=\"%s\"", address, path,
			   curl_easy_strerror(cc));
	}
	if (out->oom)
		rc = MC_ERROR;
	curl_slist_free_all(hdr);
	return rc;
}

int mc_healthz(struct mc *m, const char *address, int timeout_ms)
{
	struct buf b = BUF_INIT;
	long st = 0;
	mc_tick_fn saved = m->tick;
	enum mc_rc rc;

	m->tick = NULL; /* probes are short; never abort them */
	rc = mc_call(m, "GET", address, "/healthz", NULL, timeout_ms, &b, &st);
	m->tick = saved;
	buf_free(&b);
	return rc == MC_OK && st >= 200 && st < 300;
}

const char *mc_rc_name(enum mc_rc rc)
{
	static const char *const names[] = {"ok", "connection", "timeout", "aborted", "error"};

	return (unsigned)rc < sizeof names / sizeof names[0] ? names[rc] : "?";
}
