/*
 * prom-parse-bench.c — benchmark of the Prometheus text parser (src/metrics/prom.c)
 * against two baselines over the same buffer, in one run.
 *
 * Runs in: bench/prom-parse (the script builds and runs it). Payload: one
 * kubelet /metrics/resource answer per node, 100 nodes × 110 pods (one
 * container each), shaped like kubelet 1.28 output (HELP/TYPE comments,
 * container/pod/node series, swap and scrape-error series the scraper does
 * not need). Reports MB/s for: memchr line split (upper bound), a naive
 * "find the value and strtod it" loop, prom_parse (all series, every label
 * parsed) and prom_parse with only_known; then CPU ms per full 100 × 110
 * cycle (process CPU clock, median of runs) with a callback that does what
 * the scraper does (sum per pod).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "metrics/prom.h"

#define NODES 100
#define PODS 110
#define RUNS 15

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void gen_node(struct buf *b, int node, unsigned *seed)
{
	static const char *series[][3] = {
		{"container_cpu_usage_seconds_total", "counter",
		 "[STABLE] Cumulative cpu time consumed by the container in core-seconds"},
		{"container_memory_working_set_bytes", "gauge",
		 "[STABLE] Current working set of the container in bytes"},
		{"container_start_time_seconds", "gauge",
		 "[STABLE] Start time of the container since unix epoch in seconds"},
		{"container_swap_usage_bytes", "gauge",
		 "[ALPHA] Current amount of the container swap usage in bytes."},
	};
	int64_t ts = 1732459812000LL + node;

	for (size_t s = 0; s < 4; s++) {
		buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", series[s][0], series[s][2], series[s][0],
			   series[s][1]);
		for (int p = 0; p < PODS; p++) {
			double v;

			*seed = *seed * 1103515245u + 12345u;
			v = s == 0   ? (double)(*seed % 100000) / 1000.0 + 0.123456
			    : s == 1 ? (double)(*seed % 4096) * 1048576.0 + 4096
			    : s == 2 ? 1732400000.0 + (double)(*seed % 50000)
				     : 0;
			buf_printf(b,
				   "%s{container=\"model\",namespace=\"modelhub\",pod=\"mh-model%03d-%d-7d9f8c6b5-x%04d\"} %.9g %lld\n",
				   series[s][0], p % 40, node, p, v, (long long)ts);
		}
	}
	buf_printf(b, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n"
		      "# TYPE node_cpu_usage_seconds_total counter\n"
		      "node_cpu_usage_seconds_total 123456.789012 %lld\n"
		      "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n"
		      "# TYPE node_memory_working_set_bytes gauge\n"
		      "node_memory_working_set_bytes 1.2345678e+10 %lld\n",
		   (long long)ts, (long long)ts);
	buf_adds(b, "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n"
		    "# TYPE pod_cpu_usage_seconds_total counter\n");
	for (int p = 0; p < PODS; p++)
		buf_printf(b, "pod_cpu_usage_seconds_total{namespace=\"modelhub\",pod=\"mh-model%03d-%d-7d9f8c6b5-x%04d\"} %.9g %lld\n",
			   p % 40, node, p, 12.5 + p, (long long)ts);
	buf_adds(b, "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n"
		    "# TYPE pod_memory_working_set_bytes gauge\n");
	for (int p = 0; p < PODS; p++)
		buf_printf(b, "pod_memory_working_set_bytes{namespace=\"modelhub\",pod=\"mh-model%03d-%d-7d9f8c6b5-x%04d\"} %.9g %lld\n",
			   p % 40, node, p, 2.68435456e+08 + p, (long long)ts);
	buf_adds(b, "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n"
		    "# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n");
}

static volatile double sink;

static void base_memchr(const char *p, size_t n)
{
	const char *e = p + n;
	long lines = 0;

	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));

		lines++;
		p = nl ? nl + 1 : e;
	}
	sink += (double)lines;
}

/* Naive: per line, skip comments, take the text after '}' (or the name)
 * and strtod it — no labels, no validation, no timestamp. */
static void base_strtod(const char *p, size_t n)
{
	const char *e = p + n;
	double sum = 0;

	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *v;

		if (!nl)
			nl = e;
		if (*p != '#') {
			v = memchr(p, '}', (size_t)(nl - p));
			if (!v)
				v = memchr(p, ' ', (size_t)(nl - p));
			if (v)
				sum += strtod(v + 1, NULL);
		}
		p = nl + 1;
	}
	sink += sum;
}

struct acc {
	double cpu, mem;
	long pods;
};

static int cb(const struct prom_sample *s, void *arg)
{
	struct acc *a = arg;

	switch (s->metric) {
	case PROM_CONTAINER_CPU:
		a->cpu += s->value;
		a->pods += s->pod.n > 0;
		break;
	case PROM_CONTAINER_MEM:
		a->mem += s->value;
		break;
	default:
		break;
	}
	return 0;
}

static void run_prom(const char *p, size_t n, int only_known)
{
	struct prom_opts o = {only_known, 0};
	struct acc a = {0, 0, 0};

	prom_parse(p, n, &o, cb, &a, NULL);
	sink += a.cpu + a.mem + (double)a.pods;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median ms (process CPU) to run fn over every node buffer once. */
static double cycle_ms(struct buf *nodes, void (*fn)(const char *, size_t, int), int arg)
{
	double t[RUNS];

	for (int r = 0; r < RUNS; r++) {
		double t0 = cpu_ms();

		for (int i = 0; i < NODES; i++)
			fn(nodes[i].data, nodes[i].len, arg);
		t[r] = cpu_ms() - t0;
	}
	qsort(t, RUNS, sizeof(t[0]), cmp_d);
	return t[RUNS / 2];
}

static void w_memchr(const char *p, size_t n, int a)
{
	(void)a;
	base_memchr(p, n);
}

static void w_strtod(const char *p, size_t n, int a)
{
	(void)a;
	base_strtod(p, n);
}

int main(void)
{
	static struct buf nodes[NODES];
	unsigned seed = 42;
	size_t total = 0;
	long lines = 0;
	double mb, t_memchr, t_strtod, t_prom, t_known;
	struct prom_result res;

	for (int i = 0; i < NODES; i++) {
		gen_node(&nodes[i], i, &seed);
		total += nodes[i].len;
		prom_parse(nodes[i].data, nodes[i].len, NULL, NULL, NULL, &res);
		lines += res.lines;
		if (res.bad_lines) {
			fprintf(stderr, "generated payload has bad lines: %s at %d\n", res.first_error,
				res.first_error_line);
			return 1;
		}
	}
	mb = (double)total / 1e6;
	t_memchr = cycle_ms(nodes, w_memchr, 0);
	t_strtod = cycle_ms(nodes, w_strtod, 0);
	t_prom = cycle_ms(nodes, run_prom, 0);
	t_known = cycle_ms(nodes, run_prom, 1);
	printf("payload: %d nodes x %d pods, %.2f MB per cycle, %ld lines\n", NODES, PODS, mb,
	       lines);
	printf("%-34s %8.1f MB/s  %7.2f ms/cycle\n", "baseline memchr line split", mb / t_memchr * 1e3,
	       t_memchr);
	printf("%-34s %8.1f MB/s  %7.2f ms/cycle\n", "baseline find value + strtod", mb / t_strtod * 1e3,
	       t_strtod);
	printf("%-34s %8.1f MB/s  %7.2f ms/cycle  (%.2fx strtod loop)\n", "prom_parse (all series)",
	       mb / t_prom * 1e3, t_prom, t_strtod / t_prom);
	printf("%-34s %8.1f MB/s  %7.2f ms/cycle  (%.2fx strtod loop)\n", "prom_parse (only_known)",
	       mb / t_known * 1e3, t_known, t_strtod / t_known);
	printf("target >= 200 MB/s: %s; target < 20 ms CPU per 100x110 cycle: %s\n",
	       mb / t_prom * 1e3 >= 200 ? "met" : "NOT met", t_prom < 20 ? "met" : "NOT met");
	for (int i = 0; i < NODES; i++)
		buf_free(&nodes[i]);
	return 0;
}
