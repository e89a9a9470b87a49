/*
 * ctl_alive.c — `modelhubctl alive [SECONDS]`: is modelhubd alive? The
 * liveness probe of the modelhubd container (deploy/k8s, an exec probe).
 *
 * Runs in: modelhubctl, next to modelhubd (same /dev/shm and pid namespace:
 *   the modelhubd container of the hub pod, or the same machine).
 * Called by: main.c; the kubelet through deploy/k8s/base/hub-deployment.yaml.
 * Owns: a read-only mapping of the metrics segment for the command's life.
 * Shared state: reads the segment header (src/metrics/shm.h): retired flag,
 *   creator_pid (modelhubd's supervisor), the child table (role, pid,
 *   heartbeat_ms, wall clock) written by the supervisor and each child.
 *   Needs no database: a Postgres outage must not restart the hub.
 * Exit status: 0 alive (one line on stdout), 1 not alive (the reason on
 *   stderr), 2 usage.
 *
 * DESIGN — what "alive" means. The segment named by hub.shm_name (default
 * /modelhub-<hub.replica_id, else the host name>) exists and is current
 * (not retired), the process that created it still exists, and every child
 * in its table whose process exists has beaten within SECONDS (default
 * 2 × hub.hung_seconds). The supervisor kills a child silent for
 * hub.hung_seconds and restarts it, so a live child silent for twice that
 * long means the supervisor is not doing its job either. A child that is
 * gone (crashed, in its restart back-off) is the supervisor's business and
 * does not fail the probe.
 */
#include "ctl/ctl.h"

#include "lib/clock.h"
#include "lib/config.h"
#include "metrics/shm.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int gone(int32_t pid)
{
	return pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH);
}

/* 0 when every live child beat within max_ms; else 1 with the reason. */
static int children_fresh(const struct shm_header *h, int64_t max_ms, int *nlive)
{
	int64_t now = mh_wall_ms();

	*nlive = 0;
	for (int i = 0; i < SHM_MAX_CHILDREN; i++) {
		const struct shm_child *c = &h->children[i];
		int32_t pid = atomic_load(&c->pid);
		int64_t age = now - atomic_load(&c->heartbeat_ms);

		if (!c->role[0] || gone(pid))
			continue;
		(*nlive)++;
		if (age > max_ms) {
			fprintf(stderr, "modelhubctl: modelhubd child %.16s (pid %d) silent for %lld s\n",
				c->role, (int)pid, (long long)(age / 1000));
			return 1;
		}
	}
	return 0;
}

int ctl_alive(const struct ctl_opts *o)
{
	char name[256], host[128] = "local";
	const char *rid = cfg_str("hub.replica_id", NULL);
	int64_t max_s = 2 * (int64_t)cfg_int("hub.hung_seconds", 60);
	const struct shm_header *h;
	struct metrics_seg *seg;
	int rc = 1, nlive = 0;

	if (o->nargs == 1) {
		char *end;
		max_s = strtoll(o->args[0], &end, 10);
		if (*end || max_s <= 0) {
			fprintf(stderr, "modelhubctl: alive SECONDS: a positive number\n");
			return 2;
		}
	}
	if (gethostname(host, sizeof host - 1) < 0)
		snprintf(host, sizeof host, "local");
	shm_name_from_config(name, sizeof name, rid && *rid ? rid : host);
	seg = shm_attach(name, 1);
	if (!seg) {
		fprintf(stderr, "modelhubctl: no modelhubd segment %s (not running?)\n", name);
		return 1;
	}
	h = shm_header(seg);
	if (atomic_load(&h->retired))
		fprintf(stderr, "modelhubctl: segment %s is retired (modelhubd stopped)\n", name);
	else if (gone(h->creator_pid))
		fprintf(stderr, "modelhubctl: modelhubd (pid %d) of segment %s is gone\n",
			(int)h->creator_pid, name);
	else if (children_fresh(h, max_s * 1000, &nlive) == 0) {
		printf("modelhubd pid %d alive: %d children beat within %lld s\n", (int)h->creator_pid,
		       nlive, (long long)max_s);
		rc = 0;
	}
	shm_close(seg);
	return rc;
}
