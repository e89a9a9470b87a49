/*
 * log.c — implementation of log.h.
 *
 * Runs in: every process. Owns: the role and request-id buffers (static).
 * Each line is formatted into a stack buffer and emitted with a single
 * write(2) to fd 2, which is atomic for lines under PIPE_BUF on pipes and
 * O_APPEND files, so forked children sharing stderr do not interleave.
 */
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "modelhub";
static char log_req[64];
static enum log_level log_min = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *role)
{
	snprintf(log_role, sizeof log_role, "%s", role ? role : "modelhub");
	const char *lvl = getenv("MODELHUB_LOG_LEVEL");
	if (lvl && strcmp(lvl, "debug") == 0)
		log_min = LOG_DEBUG;
}

void log_set_level(enum log_level min) { log_min = min; }

void log_set_req(const char *req_id)
{
	if (req_id)
		snprintf(log_req, sizeof log_req, "%s", req_id);
	else
		log_req[0] = '\0';
}

static void log_vmsg(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof line - n, ".%03dZ %s %s pid=%d%s%s ",
		     (int)(tv.tv_usec / 1000), level_names[lvl], log_role,
		     (int)getpid(), log_req[0] ? " req=" : "", log_req);
	if (r > 0)
		n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
	if (err && n < sizeof line - 2) {
		r = snprintf(line + n, sizeof line - n, " errno=\"%s\"", strerror(err));
		if (r > 0)
			n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
	}
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, n);
	(void)w;
}

void log_msg(enum log_level lvl, int with_errno, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vmsg(lvl, with_errno ? saved : 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
