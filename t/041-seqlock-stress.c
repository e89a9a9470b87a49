/* 041-seqlock-stress — a writer process hammers slots while a reader process checks every copy is untorn. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "metrics/shm.h"
#include "lib/tap.h"

#define RUN_MS 2000
#define NSLOTS 4

/* Writer invariant: every sample of generation k has cpu_m == k and
 * mem_mib == 2k; the aggregates after n samples of values 1..n have
 * count n, min 1, max n, sum n(n+1)/2. A torn copy breaks one of these. */
static int writer(const char *name, int64_t ids[])
{
	struct metrics_seg *w = shm_attach(name, 0);
	int64_t end = mh_mono_ms() + RUN_MS, t = 1;

	if (!w)
		return 1;
	while (mh_mono_ms() < end) {
		for (int i = 0; i < NSLOTS; i++) {
			struct shm_obs o = {0};

			o.t_ms = t;
			o.has_cpu_m = 1;
			o.cpu_m = (double)t;
			o.has_mem = 1;
			o.mem_mib = 2.0 * (double)t;
			if (shm_slot_ingest(w, SHM_INSTANCE, i, ids[i], &o) != 1)
				return 2;
		}
		t++;
	}
	shm_close(w);
	return 0;
}

int main(void)
{
	char name[64];
	struct shm_dims dims = {1, NSLOTS, 64};
	struct metrics_seg *seg, *r;
	struct shm_sample smp[64];
	int64_t ids[NSLOTS];
	long copies = 0, torn = 0, eagain = 0, last_count = 0, monotonic = 1;
	int status;
	pid_t pid;

	log_init("t041");
	log_set_level(LOG_ERROR);
	snprintf(name, sizeof(name), "/mh-t041-%d", (int)getpid());
	seg = shm_create(name, &dims, "t");
	ok(seg != NULL, "created");
	if (!seg)
		return done_testing();
	for (int i = 0; i < NSLOTS; i++) {
		struct shm_slot_data d = {0};

		d.instance_id = ids[i] = 100 + i;
		snprintf(d.model_id, sizeof(d.model_id), "m%d", i);
		ok(shm_instance_register(seg, &d) == i, "slot %d registered", i);
	}
	pid = fork();
	if (pid == 0)
		_exit(writer(name, ids));
	r = shm_attach(name, 1);
	ok(r != NULL, "reader attached in another process");
	while (r && waitpid(pid, &status, WNOHANG) == 0) {
		for (int i = 0; i < NSLOTS; i++) {
			struct shm_snap sn;
			int rc = shm_slot_snapshot(r, SHM_INSTANCE, i, &sn, smp, 64, 0);
			double n;

			if (rc < 0) {
				eagain++;
				continue;
			}
			copies++;
			n = (double)sn.d.cpu.count;
			if (sn.d.instance_id != ids[i] || sn.d.cpu.count != sn.d.mem.count ||
			    (sn.d.cpu.count && (sn.d.cpu.min != 1 || sn.d.cpu.max != n ||
						 sn.d.cpu.sum != n * (n + 1) / 2 ||
						 sn.d.mem.max != 2 * n)))
				torn++;
			for (int k = 0; k < sn.nsamples; k++) {
				if (smp[k].mem_mib != 2 * smp[k].cpu_m ||
				    smp[k].t_ms != (int64_t)smp[k].cpu_m ||
				    (k && smp[k].t_ms != smp[k - 1].t_ms + 1))
					torn++;
			}
			if (sn.nsamples && smp[sn.nsamples - 1].cpu_m != n)
				torn++;
			if (i == 0) {
				if ((long)sn.d.cpu.count < last_count)
					monotonic = 0;
				last_count = (long)sn.d.cpu.count;
			}
		}
	}
	if (!r)
		waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer finished cleanly (status %d)",
	   status);
	ok(copies > 1000, "many consistent copies (%ld, %ld EAGAIN)", copies, eagain);
	is_int(torn, 0, "no torn reads");
	ok(monotonic, "counts never go backwards");
	ok(last_count > 1000, "writer made progress (%ld samples)", last_count);
	shm_close(r);
	shm_close(seg);
	shm_unlink_name(name);
	return done_testing();
}
