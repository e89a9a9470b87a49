/*
 * bands.c — the band tables of DESIGN.md §6 and the lookup on them.
 *
 * Runs in: any process (pure). Called by: api_instances.c (GET /api/bands),
 * metrics/view.c (gauges), the recommendation engine. Owns: two static tables.
 */
#include <math.h>
#include <stddef.h>

#include "recommend/bands.h"

static const struct band cpu_bands[BAND_COUNT] = {
	{BAND_VERY_UNDER, "very_under", "orange", 0, 40},
	{BAND_UNDER, "under", "yellow", 40, 65},
	{BAND_RECOMMENDED, "recommended", "green", 65, 85},
	{BAND_OVER, "over", "yellow", 85, 95},
	{BAND_VERY_OVER, "very_over", "orange", 95, 105},
	{BAND_CRITICAL, "critical", "red", 105, BANDS_OPEN},
};

static const struct band mem_bands[BAND_COUNT] = {
	{BAND_VERY_UNDER, "very_under", "orange", 0, 40},
	{BAND_UNDER, "under", "yellow", 40, 65},
	{BAND_RECOMMENDED, "recommended", "green", 65, 80},
	{BAND_OVER, "over", "yellow", 80, 90},
	{BAND_VERY_OVER, "very_over", "orange", 90, 93},
	{BAND_CRITICAL, "critical", "red", 93, BANDS_OPEN},
};

const struct band *bands_table(enum band_kind kind)
{
	switch (kind) {
	case BAND_CPU:
		return cpu_bands;
	case BAND_MEMORY:
		return mem_bands;
	default:
		return NULL;
	}
}

const struct band *band_of(enum band_kind kind, double percent)
{
	const struct band *t = bands_table(kind);

	if (!t)
		return NULL;
	if (isnan(percent) || percent < t[0].hi)
		return &t[0];
	for (int i = 1; i < BAND_COUNT; i++)
		if (percent < t[i].hi)
			return &t[i];
	return &t[BAND_COUNT - 1];
}

double band_target_percent(enum band_kind kind)
{
	const struct band *t = bands_table(kind);

	return t ? (t[BAND_RECOMMENDED].lo + t[BAND_RECOMMENDED].hi) / 2 : 0;
}

const char *band_kind_name(enum band_kind kind)
{
	return kind == BAND_CPU ? "cpu" : kind == BAND_MEMORY ? "memory" : "unknown";
}

double band_percent(double used, double of)
{
	if (!(of > 0) || isnan(used))
		return -1;
	return 100.0 * used / of;
}
