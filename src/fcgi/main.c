/*
 * main.c — modelhub-fcgi master: opens the FastCGI socket, pre-forks and
 * supervises the workers.
 *
 * Runs in: the modelhub-fcgi master process. Called by: the shell,
 * scripts/run-local, the test harness (`modelhub-fcgi -c FILE`).
 * Owns: the listening unix socket (fcgi.socket), the pid file
 * (fcgi.pidfile), the worker table.
 * Shared state: none written; api_auth_global_init() sets up whatever the
 * workers share (revocation counter) before the first fork.
 * On crash: workers die with it (PR_SET_PDEATHSIG) and nginx answers 502
 * until it is restarted.
 *
 * DESIGN: the supervisor core (lib/sup.c) forks, reaps and restarts the
 * workers from its slot table; this file declares the one role, runs the
 * loop and owns the socket. Signals are blocked except in sup_wait(), and
 * their handlers only set flags, so no work happens in a handler and none
 * is lost between checks.
 *   SIGCHLD  reap (in sup_tick); a current worker is re-forked: a crash
 *            backs off exponentially while the worker dies young
 *            (WORKER_MIN_LIFE_MS), an exit 1 (init failure) backs off more
 *            slowly, an exit 0 is restarted at once.
 *   SIGTERM/SIGINT  close and unlink the socket (stop accepting), SIGTERM
 *            every worker (each finishes its request in flight), wait up to
 *            fcgi.drain_seconds, SIGKILL stragglers, remove the pid file.
 *   SIGHUP   reload the configuration; on success fork a new generation of
 *            workers and retire the old one (SIGTERM, never restarted),
 *            which drains the same way. The socket path cannot change
 *            without a restart.
 */
#include "fcgi/api.h"
#include "fcgi/worker.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/sup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKER_MIN_LIFE_MS 5000     /* shorter lives count as a crash loop */
#define WORKER_BACKOFF_MAX_MS 10000 /* cap of the restart delay */
#define MASTER_TICK_MS 1000         /* wake-up when nothing is scheduled */
#define MAX_WORKERS 256
#define MAX_RETIRING 1024           /* old-generation workers still draining */

/* A crash of a worker that lived long is restarted at once; quick deaths
 * back off from 200 ms. Exit 1 (could not initialise) waits longer: the
 * next try would most likely fail the same way. */
static const struct sup_policy worker_policy = {
	.crash = {.first_ms = 0, .min_ms = 200, .max_ms = WORKER_BACKOFF_MAX_MS},
	.error = {.first_ms = 1000, .min_ms = 1000, .max_ms = 30000},
	.clean_ms = 0,
	.stable_ms = WORKER_MIN_LIFE_MS,
};

static const struct sup_role worker_role = {"worker", &worker_policy, 0};

static struct sup *sup;
static int listen_fd = -1;
static char *sock_path;
static char *pid_path;

static void usage(FILE *f)
{
	fprintf(f, "usage: modelhub-fcgi [-c FILE] [--version]\n"
		   "  -c FILE    configuration file (default $MODELHUB_CONFIG)\n");
}

static int cfg_workers(void)
{
	long n = cfg_int("fcgi.workers", 0);

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 2;
	return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* Remove a stale socket; refuse when another server still listens on it. */
static void clear_stale_socket(const char *path)
{
	struct stat st;
	struct sockaddr_un sa;
	int fd;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISSOCK(st.st_mode))
		die("fcgi msg=\"socket path exists and is not a socket\" path=%s", path);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path)
		die("fcgi msg=\"socket path too long\" path=%s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		close(fd);
		die("fcgi msg=\"another server is listening on the socket\" path=%s", path);
	}
	if (fd >= 0)
		close(fd);
	if (unlink(path) != 0)
		die("fcgi msg=\"cannot remove stale socket\" path=%s errno=%d", path, errno);
	log_info("fcgi msg=\"removed stale socket\" path=%s", path);
}

static void open_socket(void)
{
	const char *path = cfg_str("fcgi.socket", "var/run/fcgi.sock");
	long mode = strtol(cfg_str("fcgi.socket_mode", "0666"), NULL, 8);
	int backlog = (int)cfg_int("fcgi.backlog", 256);

	sock_path = strdup(path);
	if (!sock_path)
		die("fcgi msg=\"out of memory\"");
	clear_stale_socket(path);
	if (FCGX_Init() != 0)
		die("fcgi msg=\"FCGX_Init failed\"");
	listen_fd = FCGX_OpenSocket(path, backlog);
	if (listen_fd < 0)
		die("fcgi msg=\"cannot open socket\" path=%s", path);
	if (chmod(path, (mode_t)mode) != 0)
		die("fcgi msg=\"cannot chmod socket\" path=%s", path);
	fcntl(listen_fd, F_SETFD, 0);
	/* workers sleep in ppoll() and accept without blocking (worker.c) */
	if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) != 0)
		die("fcgi msg=\"cannot make the socket non-blocking\" path=%s", path);
	log_info("fcgi msg=listening socket=%s mode=%04lo", path, mode);
}

static void write_pidfile(void)
{
	const char *p = cfg_str("fcgi.pidfile", NULL);
	FILE *f;

	if (!p || !*p)
		return;
	pid_path = strdup(p);
	f = fopen(p, "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
		die("fcgi msg=\"cannot write pid file\" path=%s", p);
}

/* Child side of a fork (lib/sup.c): the worker's accept loop. */
static int run_worker(struct sup *s, int slot, void *arg)
{
	(void)arg;
	return worker_main(listen_fd, sup_slot_index(s, slot));
}

/* Slots for a new generation of n workers. */
static void add_workers(int n)
{
	for (int i = 0; i < n; i++)
		if (sup_add(sup, &worker_role, i) < 0)
			log_error_x("fcgi msg=\"worker table full\" index=%d", i);
}

/* SIGHUP: reload; on success a new generation replaces the old one. */
static void reload(void)
{
	const char *err = NULL;
	int line = 0, n;

	if (cfg_load(cfg_path(), &err, &line) != 0) {
		log_error_x("fcgi msg=\"reload failed, keeping the old configuration\" "
			    "error=\"%s\" line=%d", err ? err : "?", line);
		return;
	}
	if (strcmp(cfg_str("fcgi.socket", "var/run/fcgi.sock"), sock_path) != 0)
		log_warn_x("fcgi msg=\"fcgi.socket changed; takes effect after a restart\"");
	n = cfg_workers();
	for (int i = 0; i < sup_nslots(sup); i++)
		if (sup_slot_role(sup, i))
			sup_retire(sup, i);
	add_workers(n);
	log_info("fcgi msg=\"configuration reloaded\" workers=%d", n);
}

static void master_loop(void)
{
	unsigned sig = 0;

	while (!(sig & SUP_SIG_TERM)) {
		if (sig & SUP_SIG_HUP)
			reload();
		sig = sup_wait(-1, sup_tick(sup, MASTER_TICK_MS));
	}
	log_info("fcgi msg=\"stopping, draining workers\"");
	close(listen_fd);
	listen_fd = -1;
	unlink(sock_path);
	sup_stop(sup, cfg_int("fcgi.drain_seconds", 30) * 1000);
}

int main(int argc, char **argv)
{
	const char *cfile = NULL, *err = NULL;
	int line = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("modelhub-fcgi %s\n", MH_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cfile = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	log_init("fcgi-master");
	if (cfg_load(cfile, &err, &line) != 0)
		die("fcgi msg=\"cannot load configuration\" file=%s error=\"%s\" line=%d",
		    cfile ? cfile : "(env)", err ? err : "?", line);
	prctl(PR_SET_NAME, "mh-fcgi-master");

	sup_signals_init();

	open_socket();
	if (api_auth_global_init() != 0)
		die("fcgi msg=\"auth init failed\"");
	api_metrics_global_init();
	write_pidfile();

	sup = sup_new("fcgi", MAX_WORKERS + MAX_RETIRING, run_worker, NULL);
	if (!sup)
		die("fcgi msg=\"out of memory\"");
	log_info("fcgi msg=started version=%s workers=%d", MH_VERSION, cfg_workers());
	add_workers(cfg_workers());

	master_loop();
	if (pid_path)
		unlink(pid_path);
	log_info("fcgi msg=stopped");
	sup_free(sup);
	free(sock_path);
	free(pid_path);
	cfg_free();
	return 0;
}
