/*
 * alive.c — the supervisor's heartbeat file, <hub.var_dir>/modelhubd.alive,
 * read by `modelhubctl alive` (the modelhubd liveness probe of deploy/k8s).
 *
 * Runs in: the modelhubd supervisor process only.
 * Called by: supervisor.c (hubd_alive_beat once per loop, at most every
 *   SUP_LOOP_MS; hubd_alive_stop at a clean shutdown).
 * Owns: one fd on the file (O_CLOEXEC: children do not inherit it).
 * Shared state: the file's mtime (the beat) and its content (the
 *   supervisor's pid, written once), read by src/ctl/ctl_alive.c.
 *
 * DESIGN: the supervisor's loop never blocks on Postgres or the network
 * and kills children whose heartbeat stopped, so "the loop still turns" is
 * what liveness means for modelhubd. A file's mtime is the cheapest signal
 * another process (the probe, in the same container) can read without
 * attaching anything: one futimens() per beat. Errors are logged once and
 * never stop the hub: a missing beat only fails the probe.
 */
#include "hubd/hubd.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALIVE_FILE "modelhubd.alive" /* also named in src/ctl/ctl_alive.c */
#define ALIVE_EVERY_MS 1000          /* a beat per second is plenty for a probe */

static int alive_fd = -1;
static int alive_failed;
static int64_t alive_last_ms;
static char alive_path[512];

static int alive_open(void)
{
	char pid[32];
	int n;

	snprintf(alive_path, sizeof alive_path, "%s/" ALIVE_FILE, cfg_str("hub.var_dir", "var"));
	alive_fd = open(alive_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (alive_fd < 0)
		return -1;
	n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (write(alive_fd, pid, (size_t)n) != n) {
		close(alive_fd);
		alive_fd = -1;
		return -1;
	}
	return 0;
}

void hubd_alive_beat(void)
{
	int64_t now = mh_mono_ms();

	if (alive_fd >= 0 && now - alive_last_ms < ALIVE_EVERY_MS)
		return;
	if ((alive_fd < 0 && alive_open() < 0) || futimens(alive_fd, NULL) < 0) {
		if (!alive_failed)
			log_warn("supervisor file=%s msg=\"cannot write the liveness file\"", alive_path);
		alive_failed = 1;
		return;
	}
	alive_failed = 0;
	alive_last_ms = now;
}

void hubd_alive_stop(void)
{
	if (alive_fd < 0)
		return;
	close(alive_fd);
	alive_fd = -1;
	unlink(alive_path);
}
