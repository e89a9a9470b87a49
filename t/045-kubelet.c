/* 045-kubelet — kubelet /metrics/resource payloads into the segment: pods matched to instance slots by name, CPU from counter deltas, node slot. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "metrics/kubelet.h"
#include "metrics/shm.h"
#include "lib/tap.h"

static const char payload_fmt[] =
	"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n"
	"# TYPE container_cpu_usage_seconds_total counter\n"
	"container_cpu_usage_seconds_total{container=\"model\",namespace=\"modelhub\",pod=\"mh-7\"} %f %lld\n"
	"container_cpu_usage_seconds_total{container=\"side\",namespace=\"modelhub\",pod=\"mh-8\"} %f %lld\n"
	"container_cpu_usage_seconds_total{container=\"model\",namespace=\"modelhub\",pod=\"mh-8\"} %f %lld\n"
	"container_cpu_usage_seconds_total{container=\"x\",namespace=\"other\",pod=\"unrelated\"} 99 %lld\n"
	"# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n"
	"# TYPE container_memory_working_set_bytes gauge\n"
	"container_memory_working_set_bytes{container=\"model\",namespace=\"modelhub\",pod=\"mh-7\"} 1.048576e+08 %lld\n"
	"container_memory_working_set_bytes{container=\"side\",namespace=\"modelhub\",pod=\"mh-8\"} 1.048576e+07 %lld\n"
	"container_memory_working_set_bytes{container=\"model\",namespace=\"modelhub\",pod=\"mh-8\"} 2.097152e+07 %lld\n"
	"# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n"
	"# TYPE container_start_time_seconds gauge\n"
	"container_start_time_seconds{container=\"model\",namespace=\"modelhub\",pod=\"mh-8\"} %f %lld\n"
	"# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n"
	"# TYPE node_cpu_usage_seconds_total counter\n"
	"node_cpu_usage_seconds_total %f %lld\n"
	"# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n"
	"# TYPE node_memory_working_set_bytes gauge\n"
	"node_memory_working_set_bytes 2.147483648e+09 %lld\n"
	"# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n"
	"# TYPE pod_cpu_usage_seconds_total counter\n"
	"pod_cpu_usage_seconds_total{namespace=\"modelhub\",pod=\"mh-7\"} %f %lld\n"
	"# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n"
	"# TYPE pod_memory_working_set_bytes gauge\n"
	"pod_memory_working_set_bytes{namespace=\"modelhub\",pod=\"mh-7\"} 1.2582912e+08 %lld\n"
	"resource_scrape_error 0\n";

static char buf[8192];

/* mh-7 has pod series (cpu p7, 120 MiB); mh-8 only containers (a + b, 30 MiB). */
static size_t payload(long long t, double p7, double a8, double b8, double start8, double node)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	int n = snprintf(buf, sizeof(buf), payload_fmt, p7 - 0.1, t, a8, t, b8, t, t, t, t, t,
			 start8, t, node, t, t, p7, t, t);
#pragma GCC diagnostic pop

	return (size_t)n;
}

int main(void)
{
	char name[64];
	struct shm_dims dims = {4, 8, 32};
	struct metrics_seg *seg;
	struct shm_slot_data d;
	struct kubelet_stats st;
	struct kubelet_node_info info = {4000, 3800, 16384, 15000};
	struct shm_sample smp[8];
	struct shm_snap sn;
	long long t0 = 1732459800000LL;
	int s7, s8, s9, nd;

	log_init("t045");
	log_set_level(LOG_ERROR);
	snprintf(name, sizeof(name), "/mh-t045-%d", (int)getpid());
	seg = shm_create(name, &dims, "t");
	ok(seg != NULL, "segment");
	if (!seg)
		return done_testing();
	memset(&d, 0, sizeof(d));
	d.instance_id = 7;
	snprintf(d.name, sizeof(d.name), "mh-7");
	snprintf(d.node, sizeof(d.node), "node-a");
	s7 = shm_instance_register(seg, &d);
	d.instance_id = 8;
	snprintf(d.name, sizeof(d.name), "mh-8");
	d.node[0] = '\0'; /* not scheduled yet as far as the row knows */
	s8 = shm_instance_register(seg, &d);
	d.instance_id = 9;
	snprintf(d.name, sizeof(d.name), "mh-9");
	snprintf(d.node, sizeof(d.node), "node-b");
	s9 = shm_instance_register(seg, &d);
	ok(s7 >= 0 && s8 >= 0 && s9 >= 0, "three instance slots");

	/* first scrape: a baseline for both pods, with or without a start
	 * time (mh-8 has one): no rate averaged from the container start,
	 * which would hold its start-up (issue 16) */
	payload(t0, 10.0, 1.0, 2.0, (double)(t0 - 10000) / 1000.0, 500.0);
	ok(kubelet_ingest(seg, "node-a", &info, buf, strlen(buf), t0, &st) == 0, "ingest scrape 1");
	is_int(st.bad_lines, 0, "no bad lines");
	is_int(st.pods_matched, 2, "mh-7 and mh-8 matched (mh-9 is on another node)");
	is_int(st.ingested, 0, "no pod sampled at the first scrape (baselines only)");
	shm_slot_snapshot(seg, SHM_INSTANCE, s8, &sn, smp, 8, 0);
	is_int(sn.nsamples, 0, "mh-8: not the 300 m average of 3 s since its start");

	/* second scrape 10 s later: +5 s pod CPU for mh-7, +2 s for mh-8 */
	payload(t0 + 10000, 15.0, 2.0, 3.0, (double)(t0 - 10000) / 1000.0, 515.0);
	kubelet_ingest(seg, "node-a", &info, buf, strlen(buf), t0 + 10000, &st);
	is_int(st.ingested, 2, "both pods sampled");
	ok(st.node_ingested, "node sampled");
	shm_slot_snapshot(seg, SHM_INSTANCE, s7, &sn, smp, 8, 0);
	is_int(sn.nsamples, 1, "mh-7 one sample");
	is_dbl(smp[0].cpu_m, 500, 1e-6, "mh-7: pod series preferred, 5 s over 10 s = 500 m");
	is_dbl(smp[0].mem_mib, 120, 1e-9, "mh-7: pod working set 120 MiB");
	is_int(smp[0].t_ms, t0 + 10000, "series timestamp used");
	shm_slot_snapshot(seg, SHM_INSTANCE, s8, &sn, smp, 8, 0);
	is_int(sn.nsamples, 1, "mh-8 one sample");
	is_dbl(smp[0].cpu_m, 200, 1e-6, "mh-8: 2 s over 10 s = 200 m");
	is_dbl(smp[0].mem_mib, 30, 1e-9, "mh-8: containers' working sets summed (30 MiB)");
	shm_slot_snapshot(seg, SHM_INSTANCE, s9, &sn, smp, 8, 0);
	is_int(sn.nsamples, 0, "mh-9 (other node) untouched");
	nd = shm_find_node(seg, "node-a");
	ok(nd >= 0, "node slot registered by name");
	shm_slot_snapshot(seg, SHM_NODE, nd, &sn, smp, 8, 0);
	is_dbl(smp[0].cpu_m, 1500, 1e-6, "node: 15 s over 10 s = 1500 m");
	is_dbl(smp[0].mem_mib, 2048, 1e-9, "node working set 2048 MiB");
	is_dbl(sn.d.cpu_allocatable_m, 3800, 1e-9, "node allocatable from the API server");
	is_int(sn.d.instance_count, 2, "node instance count");

	/* garbage lines are skipped and counted, the rest still ingested */
	{
		static char bad[9000];

		payload(t0 + 20000, 20.0, 3.0, 4.0, (double)(t0 - 10000) / 1000.0, 530.0);
		snprintf(bad, sizeof(bad), "pod_cpu_usage_seconds_total{pod=\"mh-7\" oops\n%s", buf);
		kubelet_ingest(seg, "node-a", &info, bad, strlen(bad), t0 + 20000, &st);
		is_int(st.bad_lines, 1, "bad line counted");
		is_int(st.ingested, 2, "good lines still ingested");
	}
	ok(kubelet_ingest(seg, "node-a", NULL, "", 0, t0 + 30000, &st) == 0 && st.ingested == 0,
	   "empty payload: nothing ingested");
	shm_close(seg);
	shm_unlink_name(name);
	return done_testing();
}
