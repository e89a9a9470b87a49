/*
 * quota.h — per-caller quotas of work requests: the decision (pure).
 *
 * Runs in: modelhub-fcgi workers. Called by: db_request.c (inside the
 * submit transaction, with the caller's usage read under its lock),
 * api_requests.c (limits from the configuration, the 429 it answers),
 * t/134-quota.c. Owns: nothing.
 */
#ifndef MH_QUOTA_H
#define MH_QUOTA_H

enum quota_kind {
	QUOTA_OK = 0,
	QUOTA_IN_FLIGHT,      /* requests QUEUED or RUNNING */
	QUOTA_INPUTS_PER_DAY, /* inputs submitted in the last 24 h */
	QUOTA_STORED_BYTES    /* bytes of inputs kept (until retention) */
};

/* 0 in a field means unlimited. */
struct quota_limits {
	long in_flight;
	long inputs_per_day;
	long long stored_bytes;
};

/* The caller's usage before this request. */
struct quota_use {
	long in_flight;
	long inputs_day;
	long long stored_bytes;
	long day_retry_s;    /* until the oldest request of the 24 h window leaves it */
	long stored_retry_s; /* until the oldest kept request is deleted */
};

#define QUOTA_IN_FLIGHT_RETRY_S 10 /* a request in flight usually ends within seconds */

/* Would a request of n inputs and bytes stay within lim? QUOTA_OK, or the
 * first quota it exceeds with *retry_s (>= 1) when waiting can help. */
enum quota_kind quota_check(const struct quota_limits *lim, const struct quota_use *use,
			    long n_inputs, long long bytes, long *retry_s);

/* "requests_in_flight", "inputs_per_day", "stored_bytes" (the names of
 * the configuration keys quota.<role>.<name>); "" for QUOTA_OK. */
const char *quota_name(enum quota_kind k);

#endif
