/*
 * kube-scrape.c — benchmark of one kubernetes scrape cycle in the scraper:
 * node list (every 10 s), every node's /proxy/metrics/resource through one
 * curl multi handle, parsed and ingested into a real metrics segment.
 *
 * Runs in: bench/scrape (which starts a fake API server serving N nodes x
 * P pods of kubelet text). Usage:
 *   kube-scrape-bench URL CYCLES INTERVAL_MS MODEL_PODS_PER_NODE MODEL_NODES
 * MODEL_NODES: comma-separated indexes of the nodes that run model pods
 * ("-" for none); the scraper skips the others.
 * Prints per-cycle CPU and wall time of this process and the ratio of CPU
 * to the interval (the share of one core the scraper needs).
 * Owns: a throwaway segment /mh-bench-kscrape-<pid>, unlinked at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hubd/kubescrape.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/shm.h"

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
	       ru.ru_stime.tv_usec / 1e3;
}

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct shm_dims dims;
	struct metrics_seg *seg;
	struct kubescrape *ks;
	struct kubescrape_stats st;
	char name[64];
	int cycles, interval, per_node, nodes, slots = 0;
	double cpu_sum = 0, wall_sum = 0, cpu_max = 0, wall_max = 0;

	if (argc != 6) {
		fprintf(stderr, "usage: %s URL CYCLES INTERVAL_MS MODEL_PODS_PER_NODE MODEL_NODES\n", argv[0]);
		return 2;
	}
	cycles = atoi(argv[2]);
	interval = atoi(argv[3]);
	per_node = atoi(argv[4]);
	log_init("bench");
	log_set_level(LOG_WARN);
	cfg_set("kube.server", argv[1]);
	cfg_set("kube.token", "bench-token");
	cfg_set("kube.namespace", "models");
	shm_dims_from_config(&dims); /* the defaults: 1,024 nodes, 110,000 instances */
	snprintf(name, sizeof name, "/mh-bench-kscrape-%d", (int)getpid());
	seg = shm_create(name, &dims, "bench");
	if (!seg)
		return 1;
	/* the monitor's part: one slot per model pod, named like the pod */
	nodes = 0;
	for (char *p = argv[5]; *p && *p != '-'; nodes++) {
		int n = (int)strtol(p, &p, 10);
		if (*p == ',')
			p++;
		for (int k = 0; k < per_node; k++) {
			struct shm_slot_data d;
			memset(&d, 0, sizeof d);
			d.instance_id = n * 1000 + k + 1;
			snprintf(d.model_id, sizeof d.model_id, "bench");
			snprintf(d.name, sizeof d.name, "model-%03d-%d", n, k);
			snprintf(d.node, sizeof d.node, "node-%03d", n);
			if (shm_instance_register(seg, &d) >= 0)
				slots++;
		}
	}
	ks = kubescrape_new();
	if (!ks)
		return 1;
	for (int c = 0; c <= cycles; c++) {
		double c0 = cpu_ms(), w0 = wall_ms(), dc, dw;
		int rc = kubescrape_run(ks, seg, &st);

		dc = cpu_ms() - c0;
		dw = wall_ms() - w0;
		if (rc < 0 || st.nodes_ok != st.nodes) {
			fprintf(stderr, "cycle %d: rc=%d nodes_ok=%d/%d\n", c, rc, st.nodes_ok, st.nodes);
			return 1;
		}
		if (c == 0) {
			printf("warm-up cycle (node list, connections): cpu %.1f ms, wall %.1f ms\n", dc, dw);
		} else {
			cpu_sum += dc;
			wall_sum += dw;
			cpu_max = dc > cpu_max ? dc : cpu_max;
			wall_max = dw > wall_max ? dw : wall_max;
		}
		if (c < cycles) {
			double left = interval - dw;
			if (left > 0) {
				struct timespec ts = {(time_t)(left / 1000), (long)((left - (long)(left / 1000) * 1000) * 1e6)};
				nanosleep(&ts, NULL);
			}
		}
	}
	printf("nodes scraped %d (of %d with model pods), skipped %d without; model pods %d (slots), "
	       "instance samples last cycle %d, text %.1f MiB per cycle\n",
	       st.nodes, nodes, st.nodes_skipped, slots, st.instances, (double)st.bytes / 1048576.0);
	printf("per cycle over %d cycles: cpu avg %.1f ms (max %.1f), wall avg %.1f ms (max %.1f)\n", cycles,
	       cpu_sum / cycles, cpu_max, wall_sum / cycles, wall_max);
	printf("cpu / interval (%d ms): %.2f %% of one core (target < 5 %%); wall / interval: %.1f %%\n",
	       interval, 100.0 * cpu_sum / cycles / interval, 100.0 * wall_sum / cycles / interval);
	printf("ratio to the target (cpu share / 5 %%): %.2f (%s)\n", 100.0 * cpu_sum / cycles / interval / 5.0,
	       100.0 * cpu_sum / cycles / interval < 5.0 ? "met" : "MISSED");
	kubescrape_free(ks);
	shm_close(seg);
	shm_unlink_name(name);
	return 0;
}
