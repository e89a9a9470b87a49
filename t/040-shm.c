/* 040-shm — metrics segment: create/attach, register/release, ingest, aggregates, recreation. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/shm.h"
#include "lib/tap.h"

static char name[64];

static struct shm_slot *raw_slot(struct metrics_seg *seg, enum shm_kind k, int idx)
{
	const struct shm_header *h = shm_header(seg);
	unsigned char *base = (unsigned char *)h;

	return (struct shm_slot *)(base + (k == SHM_NODE ? h->nodes_off : h->instances_off) +
				   (size_t)idx * h->slot_size);
}

static struct shm_slot_data ident(int64_t id, const char *model)
{
	struct shm_slot_data d;

	memset(&d, 0, sizeof(d));
	d.instance_id = id;
	snprintf(d.model_id, sizeof(d.model_id), "%s", model);
	snprintf(d.name, sizeof(d.name), "inst-%lld", (long long)id);
	snprintf(d.node, sizeof(d.node), "node-a");
	d.pid = 4242;
	d.cpu_request_m = 100;
	d.cpu_limit_m = 1000;
	d.mem_request_mib = 256;
	d.mem_limit_mib = 1024;
	return d;
}

static struct shm_obs obs_counter(int64_t t, double cpu_s, double mem)
{
	struct shm_obs o;

	memset(&o, 0, sizeof(o));
	o.t_ms = t;
	o.has_cpu_counter = 1;
	o.cpu_counter_s = cpu_s;
	o.has_mem = 1;
	o.mem_mib = mem;
	return o;
}

static void test_config(void)
{
	struct shm_dims d;
	char n[64];

	shm_dims_from_config(&d);
	is_int(d.max_nodes, 1024, "default max_nodes (1,000 nodes)");
	is_int(d.max_instances, 110000, "default max_instances (1,000 nodes x 110 pods)");
	is_int(d.samples, 200, "default samples");
	cfg_set("metrics.samples", "0");
	shm_dims_from_config(&d);
	is_int(d.samples, 2, "samples clamped to >= 2");
	cfg_set("metrics.samples", "200");
	shm_name_from_config(n, sizeof(n), "host a/b");
	is_str(n, "/modelhub-host_a_b", "name from replica, unsafe chars replaced");
	cfg_set("hub.shm_name", "custom");
	shm_name_from_config(n, sizeof(n), "x");
	is_str(n, "/custom", "hub.shm_name gets a leading slash");
	cfg_set("hub.shm_name", "");
}

static void test_attach_failures(void)
{
	struct metrics_seg *s;
	int fd;

	shm_unlink_name(name);
	s = shm_attach(name, 1);
	ok(s == NULL, "attach to a missing segment -> NULL");
	fd = shm_open(name, O_RDWR | O_CREAT, 0600);
	ok(fd >= 0 && ftruncate(fd, 8192) == 0, "made a garbage segment");
	close(fd);
	s = shm_attach(name, 1);
	ok(s == NULL, "attach to a segment with a bad magic -> NULL");
	fd = shm_open(name, O_RDWR | O_TRUNC, 0600);
	close(fd);
	s = shm_attach(name, 1);
	ok(s == NULL, "attach to an empty segment -> NULL");
	shm_unlink_name(name);
}

static void test_lifecycle(void)
{
	struct shm_dims dims = {2, 3, 5};
	struct metrics_seg *w, *r;
	struct shm_slot_data id1 = ident(11, "load"), id2 = ident(12, "load"),
			     id3 = ident(13, "eos3b5e"), id4 = ident(14, "x");
	struct shm_sample smp[10];
	struct shm_snap sn;
	struct shm_obs o;
	int a, b, c, rc;
	int64_t t0 = 1700000000000LL;

	w = shm_create(name, &dims, "test");
	ok(w != NULL, "create");
	if (!w)
		return;
	is_int(shm_header(w)->total_size, shm_size_of(&dims), "total size in header");
	is_int(shm_header(w)->slot_size % 64, 0, "slot size 64-aligned");
	r = shm_attach(name, 1);
	ok(r != NULL, "attach read-only");
	if (!r)
		return;
	is_int(shm_header(r)->generation, shm_header(w)->generation, "same generation");
	is_int(shm_capacity(r, SHM_INSTANCE), 3, "3 instance slots");
	is_int(shm_nslots(r, SHM_INSTANCE), 0, "none used yet: scans stop at 0");
	is_int(shm_max_samples(r), 5, "5 samples");

	a = shm_instance_register(w, &id1);
	b = shm_instance_register(w, &id2);
	c = shm_instance_register(w, &id3);
	ok(a >= 0 && b >= 0 && c >= 0 && a != b && b != c && a != c, "3 distinct slots");
	is_int(shm_nslots(r, SHM_INSTANCE), 3, "high-water mark covers the 3");
	is_int(shm_instance_register(w, &id4), -1, "4th instance: segment full");
	id1.cpu_limit_m = 2000;
	is_int(shm_instance_register(w, &id1), a, "re-register returns the same slot");
	is_int(shm_instance_register(r, &id4), -1, "read-only attach cannot register");
	is_int(shm_find_instance(r, 12), b, "find instance 12");
	is_int(shm_find_instance(r, 99), -1, "find unknown -> -1");
	ok(shm_instance_register(w, &(struct shm_slot_data){0}) < 0, "instance id 0 refused");

	rc = shm_slot_snapshot(r, SHM_INSTANCE, a, &sn, smp, 10, 0);
	is_int(rc, 1, "snapshot active slot");
	is_int(sn.d.instance_id, 11, "snapshot id");
	is_str(sn.d.model_id, "load", "snapshot model");
	is_int(sn.d.cpu_limit_m, 2000, "re-register refreshed resources");
	is_int(sn.d.mem_limit_mib, 1024, "memory limit");
	is_int(sn.nsamples, 0, "no samples yet");
	is_int(shm_slot_snapshot(r, SHM_INSTANCE, 7, &sn, NULL, 0, 0), -1, "bad index -> -1");

	/* first counter observation without start time: baseline only */
	o = obs_counter(t0, 10.0, 100);
	is_int(shm_slot_ingest(w, SHM_INSTANCE, a, 11, &o), 0, "first counter obs: baseline only");
	o = obs_counter(t0 + 1000, 10.5, 120);
	is_int(shm_slot_ingest(w, SHM_INSTANCE, a, 11, &o), 1, "second obs: sample");
	o = obs_counter(t0 + 2000, 10.6, 80);
	shm_slot_ingest(w, SHM_INSTANCE, a, 11, &o);
	o = obs_counter(t0 + 2000, 11.0, 80);
	is_int(shm_slot_ingest(w, SHM_INSTANCE, a, 11, &o), 0, "same timestamp: no sample");
	is_int(shm_slot_ingest(w, SHM_INSTANCE, a, 999, &o), -1, "wrong instance id -> -1");
	is_int(shm_slot_ingest(r, SHM_INSTANCE, a, 11, &o), -1, "read-only ingest -> -1");
	rc = shm_slot_snapshot(r, SHM_INSTANCE, a, &sn, smp, 10, 0);
	is_int(sn.nsamples, 2, "two samples");
	is_dbl(smp[0].cpu_m, 500, 1e-6, "0.5 s over 1 s = 500 m");
	is_dbl(smp[1].cpu_m, 100, 1e-6, "0.1 s over 1 s = 100 m");
	is_dbl(smp[0].mem_mib, 120, 1e-9, "memory sample");
	is_int(sn.d.cpu.count, 2, "cpu count");
	is_dbl(sn.d.cpu.max, 500, 1e-6, "cpu max");
	is_dbl(sn.d.cpu.min, 100, 1e-6, "cpu min");
	is_dbl(shm_agg_avg(&sn.d.cpu), 300, 1e-6, "cpu avg");
	is_dbl(sn.d.mem.min, 80, 1e-9, "mem min");
	is_dbl(sn.d.mem.max, 120, 1e-9, "mem max");
	is_dbl(sn.d.mem.w_avg, 100, 1e-9, "mem 60 s avg");
	is_int(sn.d.cpu.w_count, 2, "window count");

	/* counter going backwards: new baseline, no sample */
	o = obs_counter(t0 + 3000, 1.0, 90);
	is_int(shm_slot_ingest(w, SHM_INSTANCE, a, 11, &o), 0, "counter reset: baseline only");

	/* a start-up burst (1.9 s of CPU in the 2 s since the process
	 * started) never becomes a sample: the first observation is a
	 * baseline even with the start time known, and the rate starts from
	 * it (issue 16: the start-up average set the peak) */
	o = obs_counter(t0 + 2000, 1.9, 50);
	o.start_ms = t0;
	is_int(shm_slot_ingest(w, SHM_INSTANCE, b, 12, &o), 0,
	       "start_ms known: first obs is still a baseline only");
	o = obs_counter(t0 + 3000, 1.95, 50);
	o.start_ms = t0;
	is_int(shm_slot_ingest(w, SHM_INSTANCE, b, 12, &o), 1, "second obs: sample");
	shm_slot_snapshot(r, SHM_INSTANCE, b, &sn, smp, 10, 0);
	is_int(sn.nsamples, 1, "one sample");
	is_dbl(smp[0].cpu_m, 50, 1e-6, "0.05 s over the 1 s since the baseline = 50 m");
	is_dbl(sn.d.cpu.max, 50, 1e-6, "peak 50 m, not the start-up's 950 m average");

	/* the process behind the pid changed: refused, nothing recorded */
	o = obs_counter(t0 + 4000, 2.0, 50);
	o.start_ms = t0 + 3500;
	is_int(shm_slot_ingest(w, SHM_INSTANCE, b, 12, &o), 1,
	       "different start without same_source accepted (container restart)");
	o = obs_counter(t0 + 4500, 2.0, 50);
	o.start_ms = t0 + 3500;
	o.same_source = 1;
	is_int(shm_slot_ingest(w, SHM_INSTANCE, b, 12, &o), -2, "different start time -> -2 (reused pid)");
	o = obs_counter(t0 + 5000, 2.5, 50);
	o.start_ms = t0 + 1500;
	o.same_source = 1;
	is_int(shm_slot_ingest(w, SHM_INSTANCE, b, 12, &o), 1, "same start within the slack accepted");

	/* direct millicores; window excludes samples older than 60 s; ring wraps */
	for (int i = 0; i < 8; i++) {
		memset(&o, 0, sizeof(o));
		o.t_ms = t0 + (int64_t)i * 20000;
		o.has_cpu_m = 1;
		o.cpu_m = 100.0 * (i + 1);
		o.has_mem = 1;
		o.mem_mib = 10.0 * (i + 1);
		shm_slot_ingest(w, SHM_INSTANCE, c, 13, &o);
	}
	rc = shm_slot_snapshot(r, SHM_INSTANCE, c, &sn, smp, 10, 0);
	is_int(sn.nsamples, 5, "ring keeps 5");
	is_dbl(smp[0].cpu_m, 400, 1e-9, "oldest kept sample");
	is_dbl(smp[4].cpu_m, 800, 1e-9, "newest sample last");
	is_int(sn.d.cpu.count, 8, "all-time count 8");
	is_dbl(sn.d.cpu.min, 100, 1e-9, "all-time min survives ring wrap");
	is_dbl(shm_agg_avg(&sn.d.cpu), 450, 1e-9, "all-time avg");
	is_int(sn.d.cpu.w_count, 3, "last 60 s: 3 samples (t-40 s, t-20 s, t)");
	is_dbl(sn.d.cpu.w_min, 600, 1e-9, "window min");
	is_dbl(sn.d.cpu.w_max, 800, 1e-9, "window max");
	is_dbl(sn.d.mem.w_avg, 70, 1e-9, "window mem avg");
	shm_slot_snapshot(r, SHM_INSTANCE, c, &sn, smp, 10, t0 + 100000);
	is_int(sn.nsamples, 2, "since filter");
	shm_slot_snapshot(r, SHM_INSTANCE, c, &sn, smp, 2, 0);
	is_int(sn.nsamples, 2, "max_samples caps");
	is_dbl(smp[1].cpu_m, 800, 1e-9, "cap keeps the newest");
	o.has_cpu_m = 1;
	o.cpu_m = NAN;
	o.t_ms += 1000;
	is_int(shm_slot_ingest(w, SHM_INSTANCE, c, 13, &o), 0, "NaN cpu: no sample");

	/* flags and resources */
	is_int(shm_slot_set_flags(w, SHM_INSTANCE, c, 13, SHM_F_OOM, 0), 0, "set flag");
	id3.mem_limit_mib = 64;
	is_int(shm_slot_set_resources(w, SHM_INSTANCE, c, 13, &id3), 0, "set resources");
	shm_slot_snapshot(r, SHM_INSTANCE, c, &sn, NULL, 0, 0);
	ok(sn.d.flags & SHM_F_OOM, "flag visible");
	is_int(sn.d.mem_limit_mib, 64, "resources visible");

	/* release and reuse */
	uint64_t gen = sn.d.reg_gen;
	is_int(shm_slot_release(w, SHM_INSTANCE, c, 99), -1, "release with wrong id refused");
	is_int(shm_slot_release(w, SHM_INSTANCE, c, 13), 0, "release");
	is_int(shm_slot_release(w, SHM_INSTANCE, c, 13), -1, "double release refused");
	is_int(shm_slot_snapshot(r, SHM_INSTANCE, c, &sn, NULL, 0, 0), 0, "released slot reads FREE");
	is_int(shm_slot_ingest(w, SHM_INSTANCE, c, 13, &o), -1, "ingest into released slot -> -1");
	is_int(shm_find_instance(r, 13), -1, "released instance not found");
	is_int(shm_instance_register(w, &id4), c, "freed slot reused");
	shm_slot_snapshot(r, SHM_INSTANCE, c, &sn, smp, 10, 0);
	is_int(sn.d.instance_id, 14, "reused slot holds the new instance");
	is_int(sn.nsamples, 0, "reused slot starts empty");
	is_int(sn.d.cpu.count, 0, "reused slot aggregates reset");
	ok(sn.d.reg_gen == gen + 1, "registration generation bumped");

	/* nodes */
	struct shm_slot_data nd;
	memset(&nd, 0, sizeof(nd));
	snprintf(nd.name, sizeof(nd.name), "node-a");
	nd.cpu_capacity_m = 2000;
	nd.mem_capacity_mib = 24000;
	a = shm_node_register(w, &nd);
	ok(a >= 0, "node registered");
	is_int(shm_node_register(w, &nd), a, "node re-register same slot");
	is_int(shm_find_node(r, "node-a"), a, "find node");
	is_int(shm_find_node(r, "node-b"), -1, "unknown node");
	memset(&nd, 0, sizeof(nd));
	ok(shm_node_register(w, &nd) < 0, "node without name refused");

	/* children and scrape stats */
	shm_child_set(w, 3, "scraper", 777, 2);
	shm_child_set(w, 99, "bad", 1, 0);
	shm_scrape_stat(w, 1500, 0);
	shm_scrape_stat(w, 500, 1);
	is_str(shm_header(r)->children[3].role, "scraper", "child role visible");
	is_int(atomic_load(&shm_header(r)->children[3].restarts), 2, "child restarts");
	is_int(atomic_load(&shm_header(r)->scrape_cycles), 2, "scrape cycles");
	is_int(atomic_load(&shm_header(r)->scrape_us_total), 2000, "scrape us total");
	is_int(atomic_load(&shm_header(r)->scrape_errors), 1, "scrape errors");

	/* a writer died holding the seqlock: readers give up, writers take over */
	{
		struct shm_slot *s = raw_slot(w, SHM_INSTANCE, b);
		pid_t dead = fork();
		int64_t t;

		if (dead == 0)
			_exit(0);
		waitpid(dead, NULL, 0);
		atomic_fetch_add(&s->seq, 1);
		atomic_store(&s->writer_pid, dead);
		t = mh_mono_ms();
		is_int(shm_slot_snapshot(r, SHM_INSTANCE, b, &sn, NULL, 0, 0), -1,
		       "reader gives up on a stuck slot");
		ok(mh_mono_ms() - t < 1000, "and does so quickly");
		o = obs_counter(t0 + 50000, 30, 60);
		is_int(shm_slot_ingest(w, SHM_INSTANCE, b, 12, &o), 1, "writer takes over a dead writer's lock");
		ok(mh_mono_ms() - t >= SHM_STUCK_MS, "after waiting SHM_STUCK_MS");
		is_int(shm_slot_snapshot(r, SHM_INSTANCE, b, &sn, NULL, 0, 0), 1, "readable again");
		is_int(atomic_load(&shm_header(r)->recoveries), 1, "recovery counted");
	}

	/* recreation: old readers see the segment as stale and reattach */
	ok(!shm_seg_stale(r), "not stale yet");
	{
		struct metrics_seg *w2 = shm_create(name, &dims, "test");
		struct metrics_seg *keep = r;

		ok(w2 != NULL, "recreate");
		ok(shm_seg_stale(r), "old mapping reports stale after recreation");
		shm_keep(&keep, name, 1, 0);
		ok(keep != NULL && keep != r, "shm_keep reattached");
		if (keep && w2)
			ok(shm_header(keep)->generation == shm_header(w2)->generation ||
				   shm_header(keep)->created_ms == shm_header(w2)->created_ms,
			   "to the new segment");
		is_int(shm_find_instance(keep, 11), -1, "new segment is empty");
		shm_unlink_name(name);
		ok(shm_keep(&keep, name, 1, 0) == NULL || 1, "shm_keep after unlink does not crash");
		shm_close(keep);
		shm_close(w2);
	}
	shm_close(w);
}

static void test_unlinked_stale(void)
{
	struct shm_dims dims = {1, 1, 2};
	struct metrics_seg *w = shm_create(name, &dims, "t"), *r = shm_attach(name, 1), *keep;

	ok(w && r, "create+attach");
	if (!w || !r)
		return;
	ok(!shm_seg_stale(r), "fresh attach not stale");
	shm_unlink_name(name);
	ok(shm_seg_stale(r), "shm_unlink_name retires the segment: readers see it at once");
	shm_close(r);
	shm_close(w);
	w = shm_create(name, &dims, "t");
	r = shm_attach(name, 1);
	ok(w && r, "create+attach again");
	if (!w || !r)
		return;
	/* removed behind our back (no retired flag): the inode check finds it */
	shm_unlink(name);
	ok(!shm_seg_stale(r), "not noticed before the inode check is due");
	sleep(2);
	usleep(100000);
	ok(shm_seg_stale(r), "name removed -> stale (inode check)");
	keep = r;
	ok(shm_keep(&keep, name, 1, 0) == NULL, "nothing to reattach to");
	ok(keep == NULL, "stale mapping dropped");
	shm_close(w);
}

int main(void)
{
	log_init("t040");
	log_set_level(LOG_ERROR);
	snprintf(name, sizeof(name), "/mh-t040-%d", (int)getpid());
	test_config();
	test_attach_failures();
	test_lifecycle();
	test_unlinked_stale();
	shm_unlink_name(name);
	return done_testing();
}
