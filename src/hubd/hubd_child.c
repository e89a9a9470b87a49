/*
 * hubd_child.c — the child side of the supervisor contract (hubd.h):
 * stop/reload flags, heartbeats, waiting, the model assignment.
 *
 * Runs in: every modelhubd child. Called by: the role mains (dealer.c,
 * runner.c, janitor.c, scraper.c, monitor.c, kubewatch.c) and
 * supervisor.c right after fork (hubd_child_signals).
 * Owns: the child's signal flags. Shared state: this child's heartbeat
 * word in the supervisor core's table (lib/sup.h, written), runner busy
 * flag (written), assignment (read under the seqlock), the leadership word
 * (written by the janitor through sup_child_set_leader).
 *
 * NOTES: handlers only set flags. hubd_wait blocks the signals, checks the
 * flags and sleeps in ppoll() with them unblocked, so a SIGTERM arriving
 * between the check and the sleep still wakes it (no lost wake-up).
 */
#include "hubd/hubd.h"
#include "hubd/shared.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/sup.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct hubd_shared *hubd_shm;

static volatile sig_atomic_t child_stop, child_hup, child_poke;
static pid_t child_supervisor; /* our parent at fork; never signal anyone else */

static void on_signal(int s)
{
	if (s == SIGTERM || s == SIGINT)
		child_stop = 1;
	else if (s == SIGHUP)
		child_hup = 1;
	else if (s == SIGUSR1)
		child_poke = 1;
}

/* Called in the child right after fork: default dispositions, our flags. */
void hubd_child_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	child_supervisor = getppid();
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int hubd_should_stop(void) { return child_stop; }

int hubd_take_reload(void)
{
	const char *err = NULL;
	int line = 0;

	if (!child_hup)
		return 0;
	child_hup = 0;
	if (cfg_load(cfg_path(), &err, &line) < 0)
		log_warn_x("config path=%s line=%d error=\"%s\" msg=\"reload failed, keeping old values\"",
			   cfg_path() ? cfg_path() : "-", line, err ? err : "?");
	return 1;
}

void hubd_heartbeat(struct hubd_child *c)
{
	(void)c;
	sup_child_beat();
}

void hubd_set_leader(int leader, int64_t token, int64_t until_ms)
{
	if (leader) {
		sup_child_set_token(token, until_ms);
		sup_child_set_leader(1);
	} else {
		sup_child_set_leader(0);
		sup_child_set_token(0, 0);
	}
}

int64_t hubd_leader_token(void) { return sup_child_leader_token(); }

int hubd_wait(struct hubd_child *c, int fd, int ms)
{
	sigset_t block, old;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct timespec ts;
	int r;

	hubd_heartbeat(c);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (child_stop) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	if (child_poke) {
		child_poke = 0;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 2;
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	r = ppoll(fd >= 0 ? &pfd : NULL, fd >= 0 ? 1 : 0, &ts, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	hubd_heartbeat(c);
	if (child_stop)
		return -1;
	if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
		return 1;
	if (child_poke) {
		child_poke = 0;
		return 2;
	}
	return 0;
}

int hubd_poll(struct hubd_child *c, struct pollfd *fds, int n, int ms)
{
	sigset_t block, old;
	struct timespec ts;
	int r = 0;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (!child_stop && !child_poke && !child_hup) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000L;
		r = ppoll(fds, (nfds_t)n, &ts, &old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	hubd_heartbeat(c);
	if (child_stop)
		return -1;
	return r < 0 ? 0 : r;
}

int hubd_take_poke(void)
{
	if (!child_poke)
		return 0;
	child_poke = 0;
	return 1;
}

int hubd_reload_pending(void) { return child_hup != 0; }

uint32_t hubd_assigned_models(int r, struct hubd_runner_models *out)
{
	uint32_t s1, s2;

	out->n = 0;
	if (!hubd_shm || r < 0 || r >= HUBD_MAX_RUNNERS)
		return 0;
	for (;;) {
		s1 = atomic_load(&hubd_shm->assign_seq);
		if (s1 & 1) {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
			continue;
		}
		memcpy(out, &hubd_shm->assigned[r], sizeof *out);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load(&hubd_shm->assign_seq);
		if (s1 == s2)
			break;
	}
	if (out->n < 0 || out->n > HUBD_MAX_ASSIGN)
		out->n = 0;
	return s1;
}

void hubd_set_busy(int r, int busy)
{
	if (!hubd_shm || r < 0 || r >= HUBD_MAX_RUNNERS)
		return;
	atomic_store(&hubd_shm->runner_busy[r], busy);
	/* after the supervisor died our parent is init: do not signal it */
	if (!busy && child_supervisor > 1 && getppid() == child_supervisor)
		kill(child_supervisor, SIGUSR1);
}

void hubd_poke_runners(uint32_t mask)
{
	if (!hubd_shm || !mask)
		return;
	atomic_fetch_or(&hubd_shm->poke_runners, mask);
	/* the supervisor knows the runners' pids and signals them */
	if (child_supervisor > 1 && getppid() == child_supervisor)
		kill(child_supervisor, SIGUSR2);
}
