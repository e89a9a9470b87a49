/*
 * worker.c — one modelhub-fcgi worker: the FastCGI accept loop.
 *
 * Runs in: modelhub-fcgi workers (forked by main.c). Called by: main.c
 * (worker_main) right after fork().
 * Owns: its struct db (one libpq connection, connected lazily by the first
 * query and re-established by db.c after a Postgres restart), the
 * FCGX_Request, and per request one struct api_req (freed at the end of the
 * loop iteration by api_req_end()).
 * Shared state: the listening socket (inherited; all workers accept on it).
 * On crash: the master logs the exit status and forks a replacement.
 *
 * DESIGN: per request, in order: request id (random hex, X-Request-Id and
 * every log line), body (at most fcgi.max_body bytes; a larger
 * CONTENT_LENGTH is drained without being stored and answered 413 so nginx
 * can still deliver the answer), api_auth_resolve(), api_dispatch(), one
 * response write, one access log line.
 *
 * Stopping: SIGTERM and SIGINT only set w_stop (STYLE rule 9). They stay
 * blocked except while the worker sleeps in ppoll() on the listening
 * socket, so a request in flight is never interrupted and a signal that
 * arrives between the check of w_stop and the sleep still ends the sleep
 * (no lost wake-up). The listening socket is non-blocking (main.c): all
 * workers wake when a connection arrives, one accept() wins and the others
 * get EAGAIN and sleep again.
 */
#include "fcgi/worker.h"
#include "fcgi/api.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define WORKER_DRAIN_MAX (64L * 1024 * 1024) /* discard at most 64 MiB, then close */
#define WORKER_ACCEPT_BACKOFF_US 100000        /* after an accept error */

static volatile sig_atomic_t w_stop;

static void on_term(int sig)
{
	(void)sig;
	w_stop = 1;
}

static void make_req_id(char out[24])
{
	unsigned char b[8];
	static unsigned long fallback;

	if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
		unsigned long x = (unsigned long)mh_mono_us() ^ ((unsigned long)getpid() << 32) ^ ++fallback;
		memcpy(b, &x, sizeof b);
	}
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Read the body into r->body. Returns API_OK or the recorded error. */
static enum api_err read_body(struct api_req *r, long max_body)
{
	const char *cl = api_env(r, "CONTENT_LENGTH");
	long long want = 0;
	char *end;
	size_t got = 0;

	if (cl && *cl) {
		errno = 0;
		want = strtoll(cl, &end, 10);
		if (errno || *end || want < 0)
			return api_fail(r, API_BAD_REQUEST, "bad_request", "invalid Content-Length");
	}
	if (want > max_body) {
		char scratch[65536];
		long long drained = 0;
		int n;
		while (drained < WORKER_DRAIN_MAX &&
		       (n = FCGX_GetStr(scratch, sizeof scratch, r->fcgi->in)) > 0)
			drained += n;
		return api_fail(r, API_TOO_LARGE, "body_too_large",
				"the body is larger than the limit of %ld bytes", max_body);
	}
	if (want == 0)
		return API_OK;
	r->body = malloc((size_t)want + 1);
	if (!r->body)
		return api_fail(r, API_INTERNAL, "internal", "out of memory for a %lld byte body", want);
	while (got < (size_t)want) {
		int n = FCGX_GetStr(r->body + got, (int)((size_t)want - got), r->fcgi->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	if (got < (size_t)want)
		return api_fail(r, API_BAD_REQUEST, "bad_request", "the body was cut short");
	return API_OK;
}

/* Path for logs: printable, no quotes or spaces, bounded. */
static void log_safe(char *dst, size_t size, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 1 < size; s++)
		dst[i++] = (*s > ' ' && *s < 127 && *s != '"') ? *s : '?';
	dst[i] = '\0';
}

static void handle(FCGX_Request *fr, struct db *db, long max_body)
{
	struct api_req r;
	const char *uri;
	struct buf out = BUF_INIT;
	char lpath[160];
	enum api_err rc;

	api_req_init(&r);
	r.fcgi = fr;
	r.db = db;
	r.t_start_us = mh_mono_us();
	make_req_id(r.req_id);
	log_set_req(r.req_id);

	r.method = api_env(&r, "REQUEST_METHOD");
	if (!r.method)
		r.method = "GET";
	uri = api_env(&r, "REQUEST_URI");
	if (!uri)
		uri = api_env(&r, "DOCUMENT_URI");
	if (!uri)
		uri = api_env(&r, "SCRIPT_NAME");
	if (!uri)
		uri = "/";
	r.path_copy = strndup(uri, strcspn(uri, "?#"));
	r.path = r.path_copy ? r.path_copy : "/";
	r.query = api_env(&r, "QUERY_STRING");
	if (!r.query)
		r.query = "";
	r.content_type = api_env(&r, "CONTENT_TYPE");

	rc = read_body(&r, max_body);
	if (rc == API_OK) {
		api_auth_resolve(&r);
		api_dispatch(&r);
	}
	if (!r.streamed) {
		api_render(&r, &out);
		if (out.oom) {
			static const char oom[] = "Status: 500 Internal Server Error\r\n"
				"Content-Type: application/json\r\n\r\n"
				"{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
			FCGX_PutStr(oom, (int)sizeof oom - 1, fr->out);
			r.status = 500;
		} else {
			FCGX_PutStr(out.data, (int)out.len, fr->out);
		}
		buf_free(&out);
	}
	log_safe(lpath, sizeof lpath, r.path);
	log_info("access method=%s path=%s status=%d ms=%.1f bytes=%zu", r.method, lpath,
		 r.status, (double)(mh_mono_us() - r.t_start_us) / 1000.0, r.out.len);
	api_metrics_observe(r.status, mh_mono_us() - r.t_start_us);
	log_set_req(NULL);
	api_req_end(&r);
}

/* Flags for SIGTERM/SIGINT, blocked outside ppoll(); *sleep_mask gets
 * the mask to sleep with (nothing blocked). */
static void worker_signals(sigset_t *sleep_mask)
{
	struct sigaction sa;
	sigset_t term;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigprocmask(SIG_SETMASK, &term, NULL);
	sigemptyset(sleep_mask);
}

/* Sleep until the listening socket is readable or a signal came; then
 * accept without blocking. 0 with a request, 1 nothing (again), -1 when
 * asked to stop. */
static int next_request(FCGX_Request *req, int listen_fd, const sigset_t *sleep_mask)
{
	struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
	int rc;

	if (w_stop)
		return -1;
	if (ppoll(&pfd, 1, NULL, sleep_mask) < 0 || w_stop)
		return w_stop ? -1 : 1;
	rc = FCGX_Accept_r(req);
	if (rc >= 0)
		return 0;
	if (rc != -EAGAIN && rc != -EWOULDBLOCK && rc != -EINTR) {
		errno = -rc;
		log_warn("worker msg=\"accept failed\" rc=%d", rc);
		usleep(WORKER_ACCEPT_BACKOFF_US);
	}
	return 1;
}

int worker_main(int listen_fd, int index)
{
	FCGX_Request req;
	struct db *db;
	long max_body;
	unsigned long served = 0;
	char role[32];
	sigset_t sleep_mask;

	worker_signals(&sleep_mask);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	snprintf(role, sizeof role, "fcgi-worker-%d", index);
	log_init(role);
	prctl(PR_SET_NAME, "mh-fcgi-worker");

	max_body = cfg_int("fcgi.max_body", 10485760);
	db = db_new(cfg_str("db.conninfo", ""), cfg_str("db.schema", "modelhub"), "modelhub-fcgi");
	if (!db) {
		log_error_x("worker msg=\"out of memory\"");
		return 1;
	}
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error_x("worker msg=\"FCGX init failed\"");
		db_free(db);
		return 1;
	}
	log_info("worker msg=started max_body=%ld", max_body);
	for (;;) {
		int rc = next_request(&req, listen_fd, &sleep_mask);

		if (rc < 0)
			break;
		if (rc > 0)
			continue;
		handle(&req, db, max_body);
		FCGX_Finish_r(&req);
		served++;
	}
	FCGX_Free(&req, 0);
	db_free(db);
	log_info("worker msg=stopped served=%lu", served);
	return 0;
}
