/*
 * bands.h — the usage bands of DESIGN.md §6 (percent of a request or limit).
 *
 * Runs in: modelhub-fcgi workers (gauges, GET /api/bands), the scraper
 * (metrics/view.c gauges), the recommendation engine and its JSON rendering.
 * Pure: no I/O, no allocation, no state. Called by: fcgi/api_instances.c,
 * metrics/view.c, recommend/recommend.c, recommend/rec_json.c.
 *
 * A band is [lo, hi) in percent; the last band of each kind is open-ended
 * (hi = +inf, BANDS_OPEN). Bands of a kind are contiguous and start at 0;
 * a negative or NaN percent falls in the first band.
 *
 *   CPU:    0–40 very_under, 40–65 under, 65–85 recommended, 85–95 over,
 *           95–105 very_over, 105+ critical
 *   memory: 0–40 very_under, 40–65 under, 65–80 recommended, 80–90 over,
 *           90–93 very_over, 93+ critical
 *   colours: orange, yellow, green, yellow, orange, red
 */
#ifndef MH_BANDS_H
#define MH_BANDS_H

enum band_kind { BAND_CPU = 0, BAND_MEMORY = 1, BAND_KIND_MAX };

enum band_id {
	BAND_VERY_UNDER = 0,
	BAND_UNDER,
	BAND_RECOMMENDED,
	BAND_OVER,
	BAND_VERY_OVER,
	BAND_CRITICAL,
	BAND_COUNT
};

#define BANDS_OPEN 1e300        /* hi of the last band */

struct band {
	enum band_id id;
	const char *name;       /* "very_under", ... "critical" */
	const char *colour;     /* "orange", "yellow", "green", "red" */
	double lo, hi;          /* percent, [lo, hi) */
};

/* The BAND_COUNT bands of a kind, in ascending order (static storage). */
const struct band *bands_table(enum band_kind kind);
/* The band a percentage falls in; never NULL for a valid kind. */
const struct band *band_of(enum band_kind kind, double percent);
/* Middle of the recommended (green) band: CPU 75, memory 72.5. */
double band_target_percent(enum band_kind kind);
/* "cpu" / "memory". */
const char *band_kind_name(enum band_kind kind);
/* percent = 100 * used / of; returns -1 when of <= 0 (no reference). */
double band_percent(double used, double of);

#endif
