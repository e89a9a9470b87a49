/*
 * log.h — one-line-per-event logging for every modelhub process.
 *
 * Runs in: all processes (modelhub-fcgi master/workers, modelhubd and its
 * children, modelhubctl).
 * Format: `2026-11-24T18:00:00.123Z level role pid=N [req=ID] message key=value`
 * written to stderr with one write(2) so lines from forked processes never
 * interleave. Never log tokens, passwords or molecule inputs.
 */
#ifndef MH_LOG_H
#define MH_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the role printed in every line (copied); call again after fork. */
void log_init(const char *role);
void log_set_level(enum log_level min);
/* Request id printed as req=...; NULL clears it. The string is copied. */
void log_set_req(const char *req_id);

void log_msg(enum log_level lvl, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* _x variants: without errno. Plain warn/error append strerror(errno). */
#define log_debug(...) log_msg(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, 1, __VA_ARGS__)
#define log_warn_x(...) log_msg(LOG_WARN, 0, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, 1, __VA_ARGS__)
#define log_error_x(...) log_msg(LOG_ERROR, 0, __VA_ARGS__)

/* Before forking only: log and exit(1). */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
