/*
 * quota.c — per-caller quotas of work requests: the decision (pure).
 *
 * Runs in: modelhub-fcgi workers. Called by: db_request.c, api_requests.c,
 * t/134-quota.c. Owns: nothing. Shared state: none.
 *
 * DESIGN: the limits are per role (anon, user, admin; configuration keys
 * quota.<role>.*) and counted per caller (a user, or one anonymous
 * session). The check runs in the submit transaction under a per-caller
 * advisory lock, so concurrent submissions of one caller cannot overshoot.
 * A request larger than a whole quota is refused like any other excess:
 * the message says the limit, the caller splits it.
 */
#include "lib/quota.h"

static long at_least_1(long s)
{
	return s < 1 ? 1 : s;
}

enum quota_kind quota_check(const struct quota_limits *lim, const struct quota_use *use,
			    long n_inputs, long long bytes, long *retry_s)
{
	*retry_s = 0;
	if (lim->in_flight > 0 && use->in_flight + 1 > lim->in_flight) {
		*retry_s = QUOTA_IN_FLIGHT_RETRY_S;
		return QUOTA_IN_FLIGHT;
	}
	if (lim->inputs_per_day > 0 && use->inputs_day + n_inputs > lim->inputs_per_day) {
		*retry_s = at_least_1(use->day_retry_s);
		return QUOTA_INPUTS_PER_DAY;
	}
	if (lim->stored_bytes > 0 && use->stored_bytes + bytes > lim->stored_bytes) {
		*retry_s = at_least_1(use->stored_retry_s);
		return QUOTA_STORED_BYTES;
	}
	return QUOTA_OK;
}

const char *quota_name(enum quota_kind k)
{
	switch (k) {
	case QUOTA_IN_FLIGHT:
		return "requests_in_flight";
	case QUOTA_INPUTS_PER_DAY:
		return "inputs_per_day";
	case QUOTA_STORED_BYTES:
		return "stored_bytes";
	default:
		return "";
	}
}
