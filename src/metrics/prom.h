/*
 * prom.h — Prometheus text exposition (format 0.0.4) parser, specialised
 * for the kubelet's /metrics/resource series.
 *
 * Runs in: the scraper (kubernetes backend: one buffer per node per cycle),
 * bench/prom-parse, unit tests. Pure: no I/O, no allocation; the parser
 * keeps a small scratch area on the caller's stack frame (struct
 * prom_parser) for unescaped label values.
 * Called by: hubd/scraper.c (kubelet source), t/042-prom.c.
 *
 * Grammar handled: `# HELP name text`, `# TYPE name type` and other `#`
 * comments are skipped; samples are
 *     name [ "{" label="value" { "," label="value" } [","] "}" ] value [ timestamp ]
 * with spaces/tabs between tokens, label values escaped with \\ \" \n,
 * values as Go's ParseFloat writes them (incl. NaN, +Inf, -Inf) and an
 * optional integer timestamp in milliseconds. Lines end in \n (a \r before
 * it is tolerated); the last line may lack it.
 *
 * Pointers in struct prom_sample point into the input buffer or into the
 * parser's scratch area and are valid only during the callback.
 */
#ifndef MH_PROM_H
#define MH_PROM_H

#include <stddef.h>
#include <stdint.h>

enum prom_metric {
	PROM_OTHER = 0,
	PROM_CONTAINER_CPU,     /* container_cpu_usage_seconds_total (counter, s) */
	PROM_CONTAINER_MEM,     /* container_memory_working_set_bytes (gauge, bytes) */
	PROM_CONTAINER_START,   /* container_start_time_seconds (gauge, epoch s) */
	PROM_POD_CPU,           /* pod_cpu_usage_seconds_total */
	PROM_POD_MEM,           /* pod_memory_working_set_bytes */
	PROM_NODE_CPU,          /* node_cpu_usage_seconds_total */
	PROM_NODE_MEM,          /* node_memory_working_set_bytes */
	PROM_CONTAINER_CFS_PERIODS,   /* container_cpu_cfs_periods_total (cAdvisor) */
	PROM_CONTAINER_CFS_THROTTLED, /* container_cpu_cfs_throttled_periods_total */
	PROM_METRIC_MAX
};

#define PROM_MAX_LABELS 16
#define PROM_SCRATCH 8192       /* room for unescaped label values of one line */

struct prom_str {
	const char *p;          /* NULL when absent */
	size_t n;
};

struct prom_sample {
	enum prom_metric metric;
	struct prom_str name;
	int nlabels;
	struct prom_str label_names[PROM_MAX_LABELS];
	struct prom_str label_values[PROM_MAX_LABELS];
	/* shortcuts into label_values (p NULL when the label is absent) */
	struct prom_str container, pod, namespace_;
	double value;
	int has_ts;
	int64_t ts_ms;
	int line;               /* 1-based line number */
};

/* Return 0 to continue, non-zero to stop the parse. */
typedef int (*prom_cb)(const struct prom_sample *s, void *arg);

struct prom_opts {
	int only_known;         /* skip samples of PROM_OTHER without parsing them */
	int strict;             /* stop at the first malformed line (else skip it) */
};

struct prom_result {
	long lines;
	long samples;           /* callbacks made */
	long bad_lines;
	int first_error_line;   /* 0 = none */
	const char *first_error; /* static text */
};

/* Parse buf[0..len). Returns 0 when the whole buffer was read (bad lines
 * skipped unless strict), -1 on a malformed line in strict mode, 1 when
 * the callback asked to stop. res may be NULL. */
int prom_parse(const char *buf, size_t len, const struct prom_opts *opts, prom_cb cb, void *arg,
	       struct prom_result *res);

/* Which known series a metric name is (PROM_OTHER if none). */
enum prom_metric prom_metric_of(const char *name, size_t n);
const char *prom_metric_name(enum prom_metric m);

/* Parse one float token as Prometheus writes it. 0 / -1. */
int prom_parse_double(const char *p, size_t n, double *out);

/* 1 if s equals the NUL-terminated lit. */
int prom_str_eq(struct prom_str s, const char *lit);

#endif
