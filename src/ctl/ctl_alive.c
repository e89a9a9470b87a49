/*
 * ctl_alive.c — `modelhubctl alive [SECONDS]`: is modelhubd alive? The
 * liveness probe of the modelhubd container (deploy/k8s, an exec probe).
 *
 * Runs in: modelhubctl, next to modelhubd (same hub.var_dir and pid
 *   namespace: the modelhubd container of the hub pod, or the same machine).
 * Called by: main.c; the kubelet through deploy/k8s/base/hub-deployment.yaml.
 * Owns: nothing beyond the command.
 * Shared state: reads <hub.var_dir>/modelhubd.alive, written by the
 *   supervisor (src/hubd/alive.c): its content is the supervisor's pid, its
 *   mtime the last turn of the supervisor's loop. Needs no database: a
 *   Postgres outage makes the hub unready, never restarts it.
 * Exit status: 0 alive (one line on stdout), 1 not alive (the reason on
 *   stderr), 2 usage.
 *
 * DESIGN: the supervisor's loop turns at least once a second, never waits on
 * Postgres or the network, and kills children whose heartbeat stopped for
 * hub.hung_seconds. So modelhubd is alive when the file names a process that
 * exists and was touched within SECONDS (default hub.hung_seconds): a
 * frozen or wedged supervisor, or one killed without cleaning up, fails.
 */
#include "ctl/ctl.h"

#include "lib/clock.h"
#include "lib/config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ALIVE_FILE "modelhubd.alive" /* written by src/hubd/alive.c */

static int parse_limit(const struct ctl_opts *o, long long *max_s)
{
	char *end;

	*max_s = cfg_int("hub.hung_seconds", 60);
	if (o->nargs == 0)
		return 0;
	*max_s = strtoll(o->args[0], &end, 10);
	if (*end || *max_s <= 0) {
		fprintf(stderr, "modelhubctl: alive SECONDS: a positive number\n");
		return -1;
	}
	return 0;
}

int ctl_alive(const struct ctl_opts *o)
{
	char path[512];
	struct stat st;
	long long max_s, age;
	FILE *f;
	int pid = 0;

	if (parse_limit(o, &max_s) < 0)
		return 2;
	snprintf(path, sizeof path, "%s/" ALIVE_FILE, cfg_str("hub.var_dir", "var"));
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "modelhubctl: no %s: modelhubd is not running (%s)\n", path, strerror(errno));
		return 1;
	}
	if (fstat(fileno(f), &st) < 0 || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
		fprintf(stderr, "modelhubctl: %s holds no pid\n", path);
		fclose(f);
		return 1;
	}
	fclose(f);
	if (kill(pid, 0) < 0 && errno == ESRCH) {
		fprintf(stderr, "modelhubctl: modelhubd (pid %d in %s) is gone\n", pid, path);
		return 1;
	}
	age = (long long)(mh_wall_ms() / 1000 - st.st_mtim.tv_sec);
	if (age > max_s) {
		fprintf(stderr, "modelhubctl: modelhubd (pid %d) silent for %lld s (limit %lld s)\n", pid,
			age, max_s);
		return 1;
	}
	printf("modelhubd pid %d alive: beat %lld s ago (limit %lld s)\n", pid, age, max_s);
	return 0;
}
