/* 405-busy-samples — the busy phase and CPU throttling in the segment: samples taken while an instance is BUSY form a histogram whose low percentile is persisted; cpu.stat / cAdvisor CFS counters give throttled_pct; the aggregates JSON carries both and reads back. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "metrics/kubelet.h"
#include "metrics/proc.h"
#include "metrics/shm.h"
#include "metrics/view.h"
#include "lib/tap.h"

static int64_t t_ms = 1732459800000LL;

/* One sample of cpu (millicores, already a rate) and memory. */
static int feed(struct metrics_seg *seg, int slot, int64_t id, double cpu, double mem)
{
	struct shm_obs o;

	memset(&o, 0, sizeof(o));
	o.t_ms = (t_ms += 1000);
	o.has_cpu_m = 1;
	o.cpu_m = cpu;
	o.has_mem = 1;
	o.mem_mib = mem;
	return shm_slot_ingest(seg, SHM_INSTANCE, slot, id, &o);
}

static void snap(struct metrics_seg *seg, int slot, struct shm_snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	shm_slot_snapshot(seg, SHM_INSTANCE, slot, sn, NULL, 0, 0);
}

static void busy_phase(struct metrics_seg *seg, int slot)
{
	struct shm_snap sn;
	double p10;

	for (int i = 0; i < 50; i++)
		feed(seg, slot, 7, 2, 100); /* idle: 2 m, 100 MiB */
	snap(seg, slot, &sn);
	is_int(sn.d.busy.count, 0, "idle samples stay out of the busy phase");
	ok(isnan(shm_busy_percentile(&sn.d.busy, 1, SHM_BUSY_PCT)), "no busy samples: NaN, not 0");
	shm_slot_set_flags(seg, SHM_INSTANCE, slot, 7, SHM_F_BUSY, 0);
	/* busy: 100 samples, cpu 401..500 m, memory 301..400 MiB */
	for (int i = 1; i <= 100; i++)
		feed(seg, slot, 7, 400 + i, 300 + i);
	shm_slot_set_flags(seg, SHM_INSTANCE, slot, 7, 0, SHM_F_BUSY);
	for (int i = 0; i < 50; i++)
		feed(seg, slot, 7, 1, 90);
	snap(seg, slot, &sn);
	is_int(sn.d.busy.count, 100, "the BUSY samples only");
	is_int(sn.d.cpu.count, 200, "every sample still in the all-time aggregates");
	is_dbl(sn.d.cpu.min, 1, 1e-9, "all-time min is the idle floor (what v1 used)");
	p10 = shm_busy_percentile(&sn.d.busy, 1, SHM_BUSY_PCT);
	ok(fabs(p10 - 410) / 410 < 0.035, "busy CPU P10 near 410 m (got %.1f)", p10);
	p10 = shm_busy_percentile(&sn.d.busy, 0, SHM_BUSY_PCT);
	ok(fabs(p10 - 310) / 310 < 0.035, "busy memory P10 near 310 MiB (got %.1f)", p10);
	ok(fabs(shm_busy_percentile(&sn.d.busy, 1, 100) - 500) / 500 < 0.035, "P100 near the max");
	ok(fabs(shm_busy_percentile(&sn.d.busy, 1, 0) - 401) / 401 < 0.035, "P0 near the min");
}

static void throttling(struct metrics_seg *seg, int slot)
{
	struct shm_snap sn;
	struct shm_obs o;

	snap(seg, slot, &sn);
	ok(isnan(shm_throttled_pct(&sn.d)), "counters never read: throttled NaN");
	memset(&o, 0, sizeof(o));
	o.t_ms = (t_ms += 1000);
	o.has_cfs = 1;
	o.cfs_periods = 0;
	o.cfs_throttled = 0;
	shm_slot_ingest(seg, SHM_INSTANCE, slot, 7, &o);
	snap(seg, slot, &sn);
	ok(isnan(shm_throttled_pct(&sn.d)), "no period ran (no quota): NaN");
	o.t_ms = (t_ms += 1000);
	o.cfs_periods = 400;
	o.cfs_throttled = 100;
	shm_slot_ingest(seg, SHM_INSTANCE, slot, 7, &o);
	snap(seg, slot, &sn);
	is_dbl(shm_throttled_pct(&sn.d), 25, 1e-9, "100 of 400 periods throttled = 25 %%");
}

static void json_round_trip(struct metrics_seg *seg, int slot)
{
	struct shm_snap sn;
	struct view_busy a, b;
	json_object *agg, *old;

	snap(seg, slot, &sn);
	agg = view_aggregates(&sn.d);
	ok(agg && json_object_object_get_ex(agg, "busy", NULL), "aggregates carry the busy phase");
	view_busy_of(&sn.d, &a);
	view_busy_parse(agg, &b);
	is_int(b.count, 100, "busy count read back");
	is_dbl(b.cpu_m, a.cpu_m, 0.051, "busy CPU read back (one decimal)");
	is_dbl(b.mem_mib, a.mem_mib, 0.051, "busy memory read back");
	is_dbl(b.throttled_pct, 25, 1e-9, "throttled_pct read back");
	json_object_put(agg);
	old = json_tokener_parse("{\"sample_count\":3,\"cpu\":{\"count\":3,\"min\":1}}");
	view_busy_parse(old, &b);
	ok(b.count == 0 && isnan(b.cpu_m) && isnan(b.mem_mib) && isnan(b.throttled_pct),
	   "a copy written before the busy phase existed reads as missing, not 0");
	json_object_put(old);
}

static void cpu_stat_text(void)
{
	double p = -1, t = -1;

	ok(proc_cpu_stat_parse("nr_periods 120\nnr_throttled 30\nthrottled_time 999\n", &p, &t) == 0 &&
		   p == 120 && t == 30,
	   "cgroup v1 cpu.stat");
	ok(proc_cpu_stat_parse("usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 8\n"
			       "nr_throttled 2\nthrottled_usec 40\n",
			       &p, &t) == 0 && p == 8 && t == 2,
	   "cgroup v2 cpu.stat");
	ok(proc_cpu_stat_parse("usage_usec 5\nuser_usec 3\nsystem_usec 2\n", &p, &t) < 0,
	   "v2 without the cpu controller: no counters");
}

static const char cfs_fmt[] =
	"pod_cpu_usage_seconds_total{namespace=\"modelhub\",pod=\"mh-9\"} %f %lld\n"
	"pod_memory_working_set_bytes{namespace=\"modelhub\",pod=\"mh-9\"} 1.048576e+08 %lld\n"
	"container_cpu_cfs_periods_total{container=\"model\",namespace=\"modelhub\",pod=\"mh-9\"} 300 %lld\n"
	"container_cpu_cfs_periods_total{container=\"side\",namespace=\"modelhub\",pod=\"mh-9\"} 100 %lld\n"
	"container_cpu_cfs_throttled_periods_total{container=\"model\",namespace=\"modelhub\",pod=\"mh-9\"} 40 %lld\n"
	"container_cpu_cfs_throttled_periods_total{container=\"side\",namespace=\"modelhub\",pod=\"mh-9\"} 0 %lld\n";

static void kubelet_cfs(struct metrics_seg *seg)
{
	struct shm_slot_data d;
	struct shm_snap sn;
	char buf[2048];
	long long t = 1732459900000LL;
	int s9;

	memset(&d, 0, sizeof(d));
	d.instance_id = 9;
	snprintf(d.name, sizeof(d.name), "mh-9");
	snprintf(d.node, sizeof(d.node), "node-a");
	s9 = shm_instance_register(seg, &d);
	for (int k = 0; k < 2; k++, t += 10000) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(buf, sizeof(buf), cfs_fmt, 10.0 + k, t, t, t, t, t, t);
#pragma GCC diagnostic pop
		kubelet_ingest(seg, "node-a", NULL, buf, strlen(buf), t, NULL);
	}
	memset(&sn, 0, sizeof(sn));
	shm_slot_snapshot(seg, SHM_INSTANCE, s9, &sn, NULL, 0, 0);
	is_dbl(shm_throttled_pct(&sn.d), 10, 1e-9,
	       "kubelet: cAdvisor CFS series summed over containers (40 of 400 = 10 %%)");
}

/* A process group spinning in a dedicated v1 CPU cgroup with a 10 % quota
 * is throttled, and proc_cgroup_cpu_stat reads it; the caller's own cgroup
 * is not a dedicated one. Needs a writable /sys/fs/cgroup/cpu (root). */
static void real_cgroup(void)
{
	char dir[128], file[160], pidtxt[24];
	struct proc_table pt;
	double p = 0, t = 0;
	pid_t child;
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/cpu/mh-t405-%d", (int)getpid());
	if (mkdir(dir, 0755) < 0) {
		ok(1, "# SKIP no writable v1 cpu cgroup here");
		return;
	}
	snprintf(file, sizeof(file), "%s/cpu.cfs_quota_us", dir);
	f = fopen(file, "we");
	if (f) {
		fputs("10000", f);
		fclose(f);
	}
	child = fork();
	if (child == 0) {
		setsid();
		for (volatile unsigned long i = 0;; i++)
			;
	}
	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)child);
	f = fopen(file, "we");
	if (f) {
		fputs(pidtxt, f);
		fclose(f);
	}
	nanosleep(&(struct timespec){0, 600 * 1000 * 1000}, NULL);
	memset(&pt, 0, sizeof(pt));
	proc_scan(&pt);
	rc = proc_cgroup_cpu_stat(child, &pt, child, &p, &t);
	ok(rc == 1 && p > 0 && t > 0, "a spinning group at a 10 %% quota is throttled (%.0f of %.0f)",
	   t, p);
	ok(proc_cgroup_cpu_stat(getpid(), &pt, getpid(), &p, &t) == 0,
	   "the caller's own CPU cgroup is not a dedicated one");
	proc_table_free(&pt);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	for (int i = 0; i < 50 && rmdir(dir) < 0; i++)
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
}

/* The time a group's counters were read, not the scan's start: a scan is
 * long on a busy machine and a rate over the start's time counts its
 * delays. */
static void read_time(void)
{
	struct proc_table pt;
	struct timespec ts;
	int64_t before, after, at;

	memset(&pt, 0, sizeof(pt));
	clock_gettime(CLOCK_REALTIME, &ts);
	before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	ok(proc_scan(&pt) == 0, "proc scan");
	clock_gettime(CLOCK_REALTIME, &ts);
	after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	at = proc_group_at(&pt, getpgrp());
	ok(at >= pt.at_ms && at >= before && at <= after,
	   "our group's read time lies in the scan (%lld in [%lld, %lld])", (long long)at,
	   (long long)pt.at_ms, (long long)after);
	for (size_t i = 0; i < pt.n; i++)
		if (pt.e[i].at_ms < pt.at_ms || pt.e[i].at_ms > after) {
			ok(0, "entry %d read at %lld", (int)pt.e[i].pid, (long long)pt.e[i].at_ms);
			break;
		}
	is_int((int)(proc_group_at(&pt, 999999999) - pt.at_ms), 0,
	       "an unknown group: the scan's time");
	proc_table_free(&pt);
}

int main(void)
{
	char name[64];
	struct shm_dims dims = {4, 8, 32};
	struct metrics_seg *seg;
	struct shm_slot_data d;
	int slot;

	log_init("t405");
	log_set_level(LOG_ERROR);
	snprintf(name, sizeof(name), "/mh-t405-%d", (int)getpid());
	seg = shm_create(name, &dims, "t");
	ok(seg != NULL, "segment");
	if (!seg)
		return done_testing();
	memset(&d, 0, sizeof(d));
	d.instance_id = 7;
	snprintf(d.name, sizeof(d.name), "mh-7");
	slot = shm_instance_register(seg, &d);
	ok(slot >= 0, "instance slot");
	busy_phase(seg, slot);
	throttling(seg, slot);
	json_round_trip(seg, slot);
	kubelet_cfs(seg);
	cpu_stat_text();
	real_cgroup();
	read_time();
	shm_close(seg);
	shm_unlink_name(name);
	return done_testing();
}
