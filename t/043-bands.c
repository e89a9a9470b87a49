/* 043-bands — the DESIGN §6 band tables: edges, colours, out-of-range input. */
#include <math.h>

#include "recommend/bands.h"
#include "lib/tap.h"

static const char *nm(enum band_kind k, double p)
{
	const struct band *b = band_of(k, p);

	return b ? b->name : "(null)";
}

static const char *col(enum band_kind k, double p)
{
	const struct band *b = band_of(k, p);

	return b ? b->colour : "(null)";
}

int main(void)
{
	/* CPU edges: a band is [lo, hi) */
	is_str(nm(BAND_CPU, 0), "very_under", "cpu 0");
	is_str(nm(BAND_CPU, 39.999), "very_under", "cpu 39.999");
	is_str(nm(BAND_CPU, 40), "under", "cpu 40");
	is_str(nm(BAND_CPU, 64.9), "under", "cpu 64.9");
	is_str(nm(BAND_CPU, 65), "recommended", "cpu 65");
	is_str(nm(BAND_CPU, 84.99), "recommended", "cpu 84.99");
	is_str(nm(BAND_CPU, 85), "over", "cpu 85");
	is_str(nm(BAND_CPU, 95), "very_over", "cpu 95");
	is_str(nm(BAND_CPU, 104.9), "very_over", "cpu 104.9");
	is_str(nm(BAND_CPU, 105), "critical", "cpu 105");
	is_str(nm(BAND_CPU, 1e9), "critical", "cpu huge");
	/* memory edges */
	is_str(nm(BAND_MEMORY, 39), "very_under", "mem 39");
	is_str(nm(BAND_MEMORY, 40), "under", "mem 40");
	is_str(nm(BAND_MEMORY, 65), "recommended", "mem 65");
	is_str(nm(BAND_MEMORY, 79.9), "recommended", "mem 79.9");
	is_str(nm(BAND_MEMORY, 80), "over", "mem 80");
	is_str(nm(BAND_MEMORY, 90), "very_over", "mem 90");
	is_str(nm(BAND_MEMORY, 92.99), "very_over", "mem 92.99");
	is_str(nm(BAND_MEMORY, 93), "critical", "mem 93");
	/* colours */
	is_str(col(BAND_CPU, 10), "orange", "cpu very_under orange");
	is_str(col(BAND_CPU, 50), "yellow", "cpu under yellow");
	is_str(col(BAND_CPU, 70), "green", "cpu recommended green");
	is_str(col(BAND_CPU, 90), "yellow", "cpu over yellow");
	is_str(col(BAND_CPU, 100), "orange", "cpu very_over orange");
	is_str(col(BAND_CPU, 200), "red", "cpu critical red");
	is_str(col(BAND_MEMORY, 91), "orange", "mem very_over orange");
	is_str(col(BAND_MEMORY, 95), "red", "mem critical red");
	/* bad input */
	is_str(nm(BAND_CPU, -5), "very_under", "negative percent -> first band");
	is_str(nm(BAND_MEMORY, NAN), "very_under", "NaN -> first band");
	is_str(nm(BAND_MEMORY, INFINITY), "critical", "+inf -> critical");
	ok(band_of((enum band_kind)7, 50) == NULL, "unknown kind -> NULL");
	ok(bands_table(BAND_KIND_MAX) == NULL, "no table for BAND_KIND_MAX");
	/* table shape: contiguous from 0 */
	for (int k = 0; k < BAND_KIND_MAX; k++) {
		const struct band *t = bands_table((enum band_kind)k);
		int contiguous = t[0].lo == 0;

		for (int i = 1; i < BAND_COUNT; i++)
			contiguous = contiguous && t[i].lo == t[i - 1].hi && (int)t[i].id == i;
		ok(contiguous, "%s bands contiguous from 0", band_kind_name((enum band_kind)k));
		ok(t[BAND_COUNT - 1].hi >= BANDS_OPEN, "%s last band open",
		   band_kind_name((enum band_kind)k));
	}
	is_dbl(band_target_percent(BAND_CPU), 75, 1e-9, "cpu target 75");
	is_dbl(band_target_percent(BAND_MEMORY), 72.5, 1e-9, "memory target 72.5");
	is_dbl(band_percent(50, 200), 25, 1e-9, "percent 50/200");
	is_dbl(band_percent(50, 0), -1, 1e-9, "percent of 0 -> -1");
	is_dbl(band_percent(NAN, 10), -1, 1e-9, "percent NaN -> -1");
	is_str(band_kind_name(BAND_MEMORY), "memory", "kind name");
	return done_testing();
}
