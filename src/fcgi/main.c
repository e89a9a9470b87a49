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
 * DESIGN: signals are blocked in the master and taken synchronously with
 * sigtimedwait(), so no work happens in a handler and no signal is lost
 * between checks (the postmaster uses a latch for the same reason).
 *   SIGCHLD  reap; a current worker is re-forked, with exponential back-off
 *            when it lived less than WORKER_MIN_LIFE_MS (crash loop guard).
 *   SIGTERM/SIGINT  close and unlink the socket (stop accepting), SIGTERM
 *            every worker (each finishes its request in flight), wait up to
 *            fcgi.drain_seconds, SIGKILL stragglers, remove the pid file.
 *   SIGHUP   reload the configuration; on success fork a new generation of
 *            workers and SIGTERM the old one, which drains the same way.
 *            The socket path cannot change without a restart.
 */
#include "fcgi/api.h"
#include "fcgi/worker.h"
#include "lib/config.h"
#include "lib/log.h"

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
#define MAX_RETIRING 1024

struct wslot {
	pid_t pid;
	int64_t started_ms;
	int64_t restart_at_ms;
	int fails;
};

static struct wslot *slots;
static int nslots;
static pid_t retiring[MAX_RETIRING];
static int nretiring;
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
	return n > 256 ? 256 : (int)n;
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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spawn(int i)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("fcgi msg=\"fork failed\" slot=%d", i);
		slots[i].restart_at_ms = now_ms() + 1000;
		return;
	}
	if (pid == 0) {
		free(slots);
		_exit(worker_main(listen_fd, i));
	}
	slots[i].pid = pid;
	slots[i].started_ms = now_ms();
	log_info("fcgi msg=\"worker started\" slot=%d worker_pid=%d", i, (int)pid);
}

static void describe_exit(int st, char *out, size_t n)
{
	if (WIFEXITED(st))
		snprintf(out, n, "exit=%d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, n, "signal=%d", WTERMSIG(st));
	else
		snprintf(out, n, "status=%d", st);
}

static void reap(int stopping)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		char how[32];
		int found = 0;

		describe_exit(st, how, sizeof how);
		for (int i = 0; i < nretiring; i++)
			if (retiring[i] == pid) {
				retiring[i] = retiring[--nretiring];
				log_info("fcgi msg=\"old worker exited\" worker_pid=%d %s", (int)pid, how);
				found = 1;
				break;
			}
		for (int i = 0; !found && i < nslots; i++) {
			struct wslot *w = &slots[i];
			int64_t lived;
			if (w->pid != pid)
				continue;
			found = 1;
			w->pid = 0;
			lived = now_ms() - w->started_ms;
			if (stopping) {
				log_info("fcgi msg=\"worker exited\" slot=%d worker_pid=%d %s", i,
					 (int)pid, how);
				break;
			}
			w->fails = lived < WORKER_MIN_LIFE_MS ? w->fails + 1 : 0;
			int64_t delay = w->fails ? 100LL << (w->fails > 7 ? 7 : w->fails) : 0;
			if (delay > WORKER_BACKOFF_MAX_MS)
				delay = WORKER_BACKOFF_MAX_MS;
			w->restart_at_ms = now_ms() + delay;
			log_warn_x("fcgi msg=\"worker died, restarting\" slot=%d worker_pid=%d %s "
				   "lived_ms=%lld delay_ms=%lld", i, (int)pid, how,
				   (long long)lived, (long long)delay);
		}
		if (!found)
			log_info("fcgi msg=\"unknown child exited\" pid=%d %s", (int)pid, how);
	}
}

static int children_left(void)
{
	int n = nretiring;

	for (int i = 0; i < nslots; i++)
		n += slots[i].pid > 0;
	return n;
}

static void signal_all(int sig)
{
	for (int i = 0; i < nslots; i++)
		if (slots[i].pid > 0)
			kill(slots[i].pid, sig);
	for (int i = 0; i < nretiring; i++)
		kill(retiring[i], sig);
}

/* SIGHUP: reload; on success a new generation replaces the old one. */
static void reload(void)
{
	const char *err = NULL;
	int line = 0, n;
	struct wslot *ns;

	if (cfg_load(cfg_path(), &err, &line) != 0) {
		log_error_x("fcgi msg=\"reload failed, keeping the old configuration\" "
			    "error=\"%s\" line=%d", err ? err : "?", line);
		return;
	}
	if (strcmp(cfg_str("fcgi.socket", "var/run/fcgi.sock"), sock_path) != 0)
		log_warn_x("fcgi msg=\"fcgi.socket changed; takes effect after a restart\"");
	n = cfg_workers();
	ns = calloc((size_t)n, sizeof *ns);
	if (!ns) {
		log_error_x("fcgi msg=\"reload: out of memory\"");
		return;
	}
	for (int i = 0; i < nslots; i++)
		if (slots[i].pid > 0) {
			if (nretiring < MAX_RETIRING)
				retiring[nretiring++] = slots[i].pid;
			kill(slots[i].pid, SIGTERM);
		}
	free(slots);
	slots = ns;
	nslots = n;
	log_info("fcgi msg=\"configuration reloaded\" workers=%d", n);
	for (int i = 0; i < nslots; i++)
		spawn(i);
}

static int master_loop(void)
{
	sigset_t set;
	int stopping = 0;
	int64_t deadline = 0;
	long drain_ms = cfg_int("fcgi.drain_seconds", 30) * 1000;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int64_t now, wait_ms = MASTER_TICK_MS;
		struct timespec ts;
		int sig;

		reap(stopping);
		now = now_ms();
		if (stopping) {
			if (!children_left())
				return 0;
			if (now >= deadline) {
				log_warn_x("fcgi msg=\"drain timeout, killing workers\" left=%d",
					   children_left());
				signal_all(SIGKILL);
				deadline = now + 60000;
			}
		} else {
			for (int i = 0; i < nslots; i++) {
				if (slots[i].pid > 0)
					continue;
				if (slots[i].restart_at_ms <= now)
					spawn(i);
				else if (slots[i].restart_at_ms - now < wait_ms)
					wait_ms = slots[i].restart_at_ms - now;
			}
		}
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000;
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			if (stopping)
				continue;
			stopping = 1;
			log_info("fcgi msg=\"stopping, draining workers\" signal=%d", sig);
			close(listen_fd);
			listen_fd = -1;
			unlink(sock_path);
			signal_all(SIGTERM);
			deadline = now_ms() + drain_ms;
		} else if (sig == SIGHUP && !stopping) {
			reload();
		}
	}
}

int main(int argc, char **argv)
{
	const char *cfile = NULL, *err = NULL;
	int line = 0, rc;
	sigset_t set;

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

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	open_socket();
	if (api_auth_global_init() != 0)
		die("fcgi msg=\"auth init failed\"");
	api_metrics_global_init();
	write_pidfile();

	nslots = cfg_workers();
	slots = calloc((size_t)nslots, sizeof *slots);
	if (!slots)
		die("fcgi msg=\"out of memory\"");
	log_info("fcgi msg=started version=%s workers=%d", MH_VERSION, nslots);
	for (int i = 0; i < nslots; i++)
		spawn(i);

	rc = master_loop();
	if (pid_path)
		unlink(pid_path);
	log_info("fcgi msg=stopped");
	free(slots);
	free(sock_path);
	free(pid_path);
	cfg_free();
	return rc;
}
