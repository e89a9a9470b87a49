/* 134-quota.c — unit tests of quota_check: each quota, unlimited (0), order, Retry-After. */
#include "lib/quota.h"
#include "t/lib/tap.h"

int main(void)
{
	struct quota_limits lim = {3, 100, 1000};
	struct quota_use u = {0, 0, 0, 500, 7000};
	long ra;

	is_int(quota_check(&lim, &u, 10, 100, &ra), QUOTA_OK, "empty usage: ok");
	is_int(ra, 0, "no Retry-After when ok");
	u.in_flight = 2;
	is_int(quota_check(&lim, &u, 10, 100, &ra), QUOTA_OK, "2 in flight + 1 = 3: ok");
	u.in_flight = 3;
	is_int(quota_check(&lim, &u, 10, 100, &ra), QUOTA_IN_FLIGHT, "3 in flight + 1: in flight");
	is_int(ra, QUOTA_IN_FLIGHT_RETRY_S, "... retry in a few seconds");
	u.in_flight = 0;
	u.inputs_day = 90;
	is_int(quota_check(&lim, &u, 10, 100, &ra), QUOTA_OK, "90 + 10 inputs = 100: ok");
	is_int(quota_check(&lim, &u, 11, 100, &ra), QUOTA_INPUTS_PER_DAY, "90 + 11: inputs per day");
	is_int(ra, 500, "... retry when the oldest leaves the day");
	u.inputs_day = 0;
	is_int(quota_check(&lim, &u, 101, 1, &ra), QUOTA_INPUTS_PER_DAY,
	       "one request above the whole daily quota is refused");
	u.stored_bytes = 900;
	is_int(quota_check(&lim, &u, 1, 100, &ra), QUOTA_OK, "900 + 100 bytes = 1000: ok");
	is_int(quota_check(&lim, &u, 1, 101, &ra), QUOTA_STORED_BYTES, "900 + 101: stored bytes");
	is_int(ra, 7000, "... retry when the oldest kept request is deleted");
	u.stored_retry_s = -5;
	quota_check(&lim, &u, 1, 101, &ra);
	is_int(ra, 1, "Retry-After at least 1");
	u = (struct quota_use){5, 500, 5000, 1, 1};
	is_int(quota_check(&lim, &u, 1, 1, &ra), QUOTA_IN_FLIGHT, "in flight is checked first");
	lim = (struct quota_limits){0, 0, 0};
	is_int(quota_check(&lim, &u, 100000, 1LL << 40, &ra), QUOTA_OK, "0 = unlimited");
	is_str(quota_name(QUOTA_IN_FLIGHT), "requests_in_flight", "name in flight");
	is_str(quota_name(QUOTA_INPUTS_PER_DAY), "inputs_per_day", "name inputs");
	is_str(quota_name(QUOTA_STORED_BYTES), "stored_bytes", "name bytes");
	is_str(quota_name(QUOTA_OK), "", "no name for ok");
	return done_testing();
}
