/*
 * api_metrics.c — GET /metrics: hub counters in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Runs in: modelhub-fcgi workers. Called by: the router
 * (api_metrics_routes).
 * Owns: nothing (the segment attachment is per call: /metrics is scraped
 * every 15-60 s, so attaching once per scrape costs nothing).
 * Shared state: an anonymous MAP_SHARED page of request counters made by the
 * master (api_metrics_global_init) and incremented by every worker after
 * each response (atomics); reads work_request, model_instance and the
 * metrics segment header (scrape statistics, child table, seqlock
 * recoveries) and its instance slots (last sample per active instance).
 *
 * Access: an admin session/token, or a caller on the loopback interface
 * (REMOTE_ADDR 127.0.0.0/8 or ::1, as nginx passes it), so a Prometheus on
 * the same machine needs no token. Anyone else gets 403.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "db/db_stats.h"
#include "fcgi/api.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/shm.h"

/* ---- FastCGI request counters (shared by all workers) ---- */

/* Histogram bucket upper bounds in seconds (Prometheus' default shape). */
static const double le_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NBUCKETS (sizeof(le_s) / sizeof(le_s[0]))

struct http_counters {
	_Atomic uint64_t by_class[6];           /* 1xx..5xx, [0] = other */
	_Atomic uint64_t bucket[NBUCKETS + 1];  /* per bucket (not cumulative); last = +Inf */
	_Atomic uint64_t sum_us;
};

static struct http_counters *hc;

int api_metrics_global_init(void)
{
	void *p = mmap(NULL, sizeof(*hc), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		log_error("fcgi msg=\"request counters unavailable\"");
		return -1;
	}
	hc = p; /* zero-filled; inherited by every worker */
	return 0;
}

void api_metrics_observe(int status, int64_t us)
{
	size_t b = 0;

	if (!hc)
		return;
	atomic_fetch_add_explicit(&hc->by_class[status >= 100 && status < 600 ? status / 100 : 0], 1,
				  memory_order_relaxed);
	while (b < NBUCKETS && (double)us / 1e6 > le_s[b])
		b++;
	atomic_fetch_add_explicit(&hc->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hc->sum_us, us > 0 ? (uint64_t)us : 0, memory_order_relaxed);
}

static int loopback(const char *addr)
{
	return addr && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
			strncmp(addr, "::ffff:127.", 11) == 0);
}

/* Label value escaping of the text format: \\ \" \n. */
static void label(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_addc(b, '\\');
		if (*v == '\n') {
			buf_adds(b, "\\n");
			continue;
		}
		buf_addc(b, *v);
	}
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample: a whole number. */
static void single_u64(struct buf *b, const char *name, const char *type, const char *help,
		       unsigned long long v)
{
	family(b, name, type, help);
	buf_printf(b, "%s %llu\n", name, v);
}

/* A family with one unlabelled sample: microseconds, shown as seconds. */
static void single_seconds(struct buf *b, const char *name, const char *type, const char *help,
			   unsigned long long us)
{
	family(b, name, type, help);
	buf_printf(b, "%s %.6f\n", name, (double)us / 1e6);
}

/* One labelled family from a 2-column result (label value, number). */
static int from_query(struct api_req *r, struct buf *b, PGresult *(*query)(struct db *),
		      const char *name, const char *type, const char *help, const char *lname)
{
	PGresult *res = query(r->db);

	if (!res)
		return -1;
	family(b, name, type, help);
	for (int i = 0; i < PQntuples(res); i++) {
		buf_printf(b, "%s{%s=\"", name, lname);
		label(b, PQgetvalue(res, i, 0));
		buf_printf(b, "\"} %s\n", PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return 0;
}

/* The labelled families read from the database. */
static int db_families(struct api_req *r, struct buf *b)
{
	static const struct {
		PGresult *(*query)(struct db *);
		const char *name, *help, *label;
	} fam[] = {
		{db_stats_requests, "modelhub_requests", "Work requests by status", "status"},
		{db_stats_queue, "modelhub_queue_depth", "Queued work requests per model", "model"},
		{db_stats_instances, "modelhub_instances", "Model instances by state", "state"},
		{db_stats_terminations, "modelhub_instance_terminations",
		 "Ended model instances by termination reason", "reason"},
	};

	for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
		if (from_query(r, b, fam[i].query, fam[i].name, "gauge", fam[i].help,
			       fam[i].label) < 0)
			return -1;
	return 0;
}

static void http_metrics(struct buf *b)
{
	static const char *const cls[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	uint64_t cum = 0;

	if (!hc)
		return;
	family(b, "modelhub_http_requests_total", "counter",
	       "FastCGI requests answered, by status class (all workers)");
	for (int i = 1; i <= 6; i++)
		buf_printf(b, "modelhub_http_requests_total{code=\"%s\"} %llu\n", cls[i % 6],
			   (unsigned long long)atomic_load(&hc->by_class[i % 6]));
	family(b, "modelhub_http_request_duration_seconds", "histogram",
	       "FastCGI request handling time (all workers)");
	for (size_t i = 0; i <= NBUCKETS; i++) {
		cum += atomic_load(&hc->bucket[i]);
		if (i < NBUCKETS)
			buf_printf(b, "modelhub_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
				   le_s[i], (unsigned long long)cum);
		else
			buf_printf(b, "modelhub_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
				   (unsigned long long)cum);
	}
	buf_printf(b, "modelhub_http_request_duration_seconds_sum %.6f\n",
		   (double)atomic_load(&hc->sum_us) / 1e6);
	buf_printf(b, "modelhub_http_request_duration_seconds_count %llu\n",
		   (unsigned long long)cum);
}

/* The segment's own counters. */
static void seg_counters(struct buf *b, const struct shm_header *h)
{
	single_u64(b, "modelhub_scrape_cycles_total", "counter", "Scraper cycles run",
		   atomic_load(&h->scrape_cycles));
	single_seconds(b, "modelhub_scrape_duration_seconds_total", "counter",
		       "Time spent in scraper cycles", atomic_load(&h->scrape_us_total));
	single_seconds(b, "modelhub_scrape_last_duration_seconds", "gauge",
		       "Duration of the last cycle", atomic_load(&h->scrape_us_last));
	single_u64(b, "modelhub_scrape_errors_total", "counter", "Scraper cycles that failed",
		   atomic_load(&h->scrape_errors));
	single_u64(b, "modelhub_shm_seqlock_recoveries_total", "counter",
		   "Slot locks taken over from a writer that died", atomic_load(&h->recoveries));
}

static void seg_children(struct buf *b, const struct shm_header *h)
{
	family(b, "modelhub_child_restarts_total", "counter",
	       "Restarts of modelhubd children, by role (when published in the segment)");
	for (int i = 0; i < SHM_MAX_CHILDREN; i++) {
		char role[sizeof(h->children[i].role) + 1];

		memcpy(role, h->children[i].role, sizeof(h->children[i].role));
		role[sizeof(role) - 1] = '\0';
		if (!role[0])
			continue;
		buf_adds(b, "modelhub_child_restarts_total{role=\"");
		label(b, role);
		buf_printf(b, "\",slot=\"%d\"} %u\n", i, atomic_load(&h->children[i].restarts));
	}
}

static void seg_slots(struct buf *b, struct metrics_seg *seg)
{
	family(b, "modelhub_metrics_slots", "gauge", "Segment slots by kind and state");
	for (int k = 0; k < 2; k++) {
		enum shm_kind kind = k ? SHM_INSTANCE : SHM_NODE;
		int active = 0, total = shm_capacity(seg, kind);
		struct shm_snap sn;

		for (int i = 0; i < shm_nslots(seg, kind); i++)
			active += shm_slot_snapshot(seg, kind, i, &sn, NULL, 0, 0) == 1;
		buf_printf(b, "modelhub_metrics_slots{kind=\"%s\",state=\"active\"} %d\n",
			   k ? "instance" : "node", active);
		buf_printf(b, "modelhub_metrics_slots{kind=\"%s\",state=\"free\"} %d\n",
			   k ? "instance" : "node", total - active);
	}
}

/* Last CPU and memory sample of each live instance: two families, the
 * memory lines gathered aside so each family stays in one block. */
static void seg_instances(struct buf *b, struct metrics_seg *seg)
{
	struct buf mem = BUF_INIT;
	int n = shm_nslots(seg, SHM_INSTANCE);

	family(b, "modelhub_instance_cpu_millicores", "gauge",
	       "Last CPU sample of each live instance");
	for (int i = 0; i < n; i++) {
		struct shm_sample last[1];
		struct shm_snap sn;

		if (shm_slot_snapshot(seg, SHM_INSTANCE, i, &sn, last, 1, 0) != 1 || !sn.nsamples)
			continue;
		buf_printf(b, "modelhub_instance_cpu_millicores{instance=\"%lld\",model=\"",
			   (long long)sn.d.instance_id);
		label(b, sn.d.model_id);
		buf_printf(b, "\"} %.1f\n", last[0].cpu_m);
		buf_printf(&mem, "modelhub_instance_memory_mib{instance=\"%lld\",model=\"",
			   (long long)sn.d.instance_id);
		label(&mem, sn.d.model_id);
		buf_printf(&mem, "\"} %.1f\n", last[0].mem_mib);
	}
	family(b, "modelhub_instance_memory_mib", "gauge",
	       "Last memory working set sample of each live instance");
	if (mem.len)
		buf_add(b, mem.data, mem.len);
	buf_free(&mem);
}

static void segment_metrics(struct buf *b)
{
	char name[256], host[128] = "local";
	const char *rid = cfg_str("hub.replica_id", NULL);
	struct metrics_seg *seg;
	const struct shm_header *h;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "local");
	shm_name_from_config(name, sizeof(name), rid && *rid ? rid : host);
	seg = shm_attach(name, 1);
	single_u64(b, "modelhub_metrics_segment_up", "gauge",
		   "1 when the live metrics segment is attached", seg ? 1 : 0);
	if (!seg)
		return;
	h = shm_header(seg);
	seg_counters(b, h);
	seg_children(b, h);
	seg_slots(b, seg);
	seg_instances(b, seg);
	shm_close(seg);
}

static enum api_err h_metrics(struct api_req *r)
{
	struct buf b = BUF_INIT;
	enum api_err e;

	if (!r->auth.is_admin && !loopback(api_env(r, "REMOTE_ADDR")))
		return api_fail(r, API_FORBIDDEN, "forbidden",
				"metrics need an admin token or a loopback caller");
	if (db_families(r, &b) < 0) {
		buf_free(&b);
		return api_db_fail(r);
	}
	http_metrics(&b);
	segment_metrics(&b);
	if (b.oom) {
		buf_free(&b);
		return api_fail(r, API_INTERNAL, "internal", "out of memory");
	}
	e = api_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
		     b.len);
	buf_free(&b);
	return e;
}

const struct api_route api_metrics_routes[] = {
	{"GET", "/metrics", ACCESS_PUBLIC, h_metrics},
	{0},
};
