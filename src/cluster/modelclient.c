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
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mc {
	CURL *h;
	CURLM *multi;               /* every call runs through it (mc_start) */
	struct curl_slist *hdr;     /* headers of the call under way */
	char where[600];            /* its address and path, for the log */
	int running;                /* a call was started and not finished */
	mc_tick_fn tick;
	void *tick_ctx;
	int64_t last_tick;
	int aborted;
	/* attached to an event loop (mc_attach): its multi handle, not ours */
	CURLM *shared;
	mc_wait_fn wait;
	void *wait_ctx;
	int done;       /* the loop saw the transfer end (mc_transfer_done) */
	CURLcode cc;
	struct buf *out;    /* the call's answer (mc_start) */
	size_t max_body;    /* hub.max_response_mib in bytes, 0 = no cap */
	int too_big;        /* the answer passed max_body: cut (MC_TOO_LARGE) */
};

static int mc_inited;

/* The multi handle transfers run on. */
static CURLM *multi_of(struct mc *m) { return m->shared ? m->shared : m->multi; }

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
	m->multi = curl_multi_init();
	if (!m->h || !m->multi) {
		mc_free(m);
		return NULL;
	}
	return m;
}

void mc_free(struct mc *m)
{
	if (!m)
		return;
	if (m->running)
		curl_multi_remove_handle(multi_of(m), m->h);
	curl_slist_free_all(m->hdr);
	if (m->multi)
		curl_multi_cleanup(m->multi);
	if (m->h)
		curl_easy_cleanup(m->h);
	free(m);
}

void mc_attach(struct mc *m, CURLM_PTR multi, mc_wait_fn wait, void *ctx)
{
	m->shared = multi;
	m->wait = wait;
	m->wait_ctx = ctx;
}

void *mc_wait_ctx(const struct mc *m) { return m->wait_ctx; }

struct mc *mc_transfer_done(void *easy, int curl_code)
{
	struct mc *m = NULL;

	if (curl_easy_getinfo((CURL *)easy, CURLINFO_PRIVATE, (char **)&m) != CURLE_OK || !m || m->h != easy)
		return NULL;
	m->done = 1;
	m->cc = (CURLcode)curl_code;
	return m;
}

void mc_set_tick(struct mc *m, mc_tick_fn fn, void *ctx)
{
	m->tick = fn;
	m->tick_ctx = ctx;
}

/* The answer so far, up to max_body: a model's answer is held in memory
 * whole, so one that grows without end must not take the runner with it
 * (issue 17). Returning 0 makes libcurl stop the transfer. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct mc *m = ud;
	struct buf *b = m->out;

	if (m->max_body && b->len + size * n > m->max_body) {
		m->too_big = 1;
		return 0;
	}
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

int mc_start(struct mc *m, const char *method, const char *address, const char *path,
	     const char *body, int timeout_ms, struct buf *out)
{
	char url[512];
	int still;

	if (m->running)
		return -1;
	buf_reset(out);
	snprintf(url, sizeof url, "http://%s%s", address, path);
	snprintf(m->where, sizeof m->where, "%s%s", address, path);
	curl_easy_reset(m->h);
	curl_easy_setopt(m->h, CURLOPT_URL, url);
	curl_easy_setopt(m->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(m->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(m->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? (long)timeout_ms : 5000L);
	m->out = out;
	m->too_big = 0;
	m->max_body = (size_t)cfg_int("hub.max_response_mib", MC_DEFAULT_MAX_RESPONSE_MIB) << 20;
	curl_easy_setopt(m->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(m->h, CURLOPT_WRITEDATA, m);
	curl_easy_setopt(m->h, CURLOPT_PRIVATE, (char *)m);
	/* attached: the tick runs in mc_finish's task, never from inside the
	 * loop's curl_multi_socket_action */
	curl_easy_setopt(m->h, CURLOPT_NOPROGRESS, m->shared ? 1L : 0L);
	curl_easy_setopt(m->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(m->h, CURLOPT_XFERINFODATA, m);
	curl_easy_setopt(m->h, CURLOPT_PROXY, "");
	curl_slist_free_all(m->hdr);
	m->hdr = NULL;
	if (strcmp(method, "POST") == 0) {
		m->hdr = curl_slist_append(m->hdr, "Content-Type: application/json");
		m->hdr = curl_slist_append(m->hdr, "Expect:");
		curl_easy_setopt(m->h, CURLOPT_HTTPHEADER, m->hdr);
		curl_easy_setopt(m->h, CURLOPT_POSTFIELDS, body ? body : "");
	}
	m->aborted = 0;
	m->done = 0;
	m->last_tick = mh_mono_ms();
	if (curl_multi_add_handle(multi_of(m), m->h) != CURLM_OK)
		return -1;
	m->running = 1;
	if (m->shared)
		return 0; /* the loop drives it */
	/* connect (or reuse) and send what can be sent now */
	curl_multi_perform(m->multi, &still);
	return 0;
}

/* The outcome of the finished transfer. */
static enum mc_rc finished_rc(struct mc *m, CURLcode cc)
{
	if (m->too_big) {
		log_warn_x("modelclient url=%s max_bytes=%zu msg=\"answer cut: larger than"
			   " hub.max_response_mib\"", m->where, m->max_body);
		return MC_TOO_LARGE;
	}
	switch (cc) {
	case CURLE_OK:
		return MC_OK;
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return MC_CONN;
	case CURLE_OPERATION_TIMEDOUT:
		return MC_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return m->aborted ? MC_ABORTED : MC_ERROR;
	default:
		log_warn_x("modelclient url=%s msg=\"call failed\" error=\"%s\"", m->where,
			   curl_easy_strerror(cc));
		return MC_ERROR;
	}
}

/* Attached: wait in the loop until the transfer ended, ticking at least
 * once a second and whenever woken early; a non-zero tick aborts it. */
static CURLcode finish_attached(struct mc *m)
{
	int woke = 0;

	while (!m->done) {
		int64_t now = mh_mono_ms(), left = 1000 - (now - m->last_tick);
		if (m->tick && (woke || left <= 0)) {
			m->last_tick = now;
			left = 1000;
			if (m->tick(m->tick_ctx)) {
				m->aborted = 1;
				return CURLE_ABORTED_BY_CALLBACK;
			}
			if (m->done)
				break;
		}
		woke = m->wait(m->wait_ctx, (int)(left > 0 ? left : 1));
	}
	return m->cc;
}

static CURLcode finish_own(struct mc *m);

enum mc_rc mc_finish(struct mc *m, struct buf *out, long *status)
{
	CURLcode cc;
	enum mc_rc rc;

	*status = 0;
	if (!m->running)
		return MC_ERROR;
	cc = m->shared ? finish_attached(m) : finish_own(m);
	curl_easy_getinfo(m->h, CURLINFO_RESPONSE_CODE, status);
	curl_multi_remove_handle(multi_of(m), m->h);
	m->running = 0;
	rc = finished_rc(m, cc);
	if (out->oom)
		rc = MC_ERROR;
	return rc;
}

static CURLcode finish_own(struct mc *m)
{
	CURLcode cc = CURLE_OK;
	int still = 1, done = 0;

	while (!done) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(m->multi, &still) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
		while ((msg = curl_multi_info_read(m->multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == m->h) {
				cc = msg->data.result;
				done = 1;
			}
		if (done)
			break;
		if (!still) { /* nothing running and no result: should not happen */
			cc = CURLE_FAILED_INIT;
			break;
		}
		/* at most a second between performs: the progress callback
		 * (the tick) runs from them */
		if (curl_multi_poll(m->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
	}
	return cc;
}

int mc_busy(const struct mc *m) { return m->running; }

int64_t mc_total_ms(const struct mc *m)
{
	curl_off_t us = 0;

	if (curl_easy_getinfo(m->h, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK)
		return 0;
	return (int64_t)(us / 1000);
}

enum mc_rc mc_call(struct mc *m, const char *method, const char *address, const char *path,
		   const char *body, int timeout_ms, struct buf *out, long *status)
{
	*status = 0;
	if (mc_start(m, method, address, path, body, timeout_ms, out) < 0) {
		buf_reset(out);
		return MC_ERROR;
	}
	return mc_finish(m, out, status);
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
	static const char *const names[] = {"ok", "connection", "timeout", "aborted", "error",
					    "too_large"};

	return (unsigned)rc < sizeof names / sizeof names[0] ? names[rc] : "?";
}
