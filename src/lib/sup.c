/*
 * sup.c — the supervisor core: slot table, fork / reap / back-off,
 * heartbeats, leadership gating, loop signals. See sup.h for the contract
 * and the DESIGN notes.
 *
 * Runs in: the modelhubd supervisor and the modelhub-fcgi master; the
 * child_* functions in their children.
 * Called by: hubd/supervisor.c, hubd/hubd_child.c, hubd/dealer.c,
 * fcgi/main.c.
 * Owns: struct sup and its slot array (supervisor heap), the shared
 * mapping (struct sup_shared, anonymous MAP_SHARED, unmapped by
 * sup_free in the supervisor; children keep their inherited copy).
 * Shared state: see sup.h. On crash of the supervisor: children get
 * SIGTERM through PR_SET_PDEATHSIG (armed in the child before it runs).
 *
 * NOTES
 * - Signal handlers only set flags (STYLE rule 9); the signals are blocked
 *   except inside the ppoll() of sup_wait(), so none is lost between the
 *   check of a flag and the sleep.
 * - Reaping happens in sup_tick() with waitpid(WNOHANG) whether or not
 *   SIGCHLD was seen, so a caller that was busy elsewhere cannot lose one.
 * - A slot's pid is cleared only after waitpid() returned it: until then
 *   the pid is a zombie and cannot be reused, so sup_signal*() never hits a
 *   stranger.
 */
#include "lib/sup.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUP_FORK_RETRY_MS 1000 /* after fork() failed */
#define SUP_STOP_POLL_MS 50    /* reap interval while stopping */

struct sup_shared {
	_Atomic int leader;
	_Atomic int_least64_t token; /* fencing token of the leadership */
	_Atomic int_least64_t until_ms; /* ... valid until (mh_mono_ms) */
	struct sup_pub pub[]; /* cap entries */
};

struct sup_slot {
	const struct sup_role *role; /* NULL: free */
	int index;
	int retired;        /* not restarted; freed once reaped */
	pid_t pid;
	int64_t next_start_ms;
	int fails;          /* short lives in a row */
	int killed_hung;
	int gated;          /* leader-only, SIGTERMed when leadership went */
};

struct sup {
	const char *who;
	struct sup_slot *slot;
	int nslots, cap;
	struct sup_shared *sh;
	size_t sh_size;
	sup_run_fn run;
	sup_start_fn on_start;
	sup_exit_fn on_exit;
	void *arg;
	int64_t hung_ms;
	int64_t last_tick_ms;  /* when sup_tick last ran (0: never) */
	int64_t trust_from_ms; /* heartbeats are judged only from then on */
	int stopping;
	int leader;         /* last value acted on */
};

static volatile sig_atomic_t sig_bits;

/* In a child: its slot in the inherited shared mapping. */
static struct sup_pub *child_pub;
static struct sup_shared *child_sh;
static unsigned child_flags;

struct sup *sup_new(const char *who, int cap, sup_run_fn run, void *arg)
{
	struct sup *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->who = who;
	s->cap = cap;
	s->run = run;
	s->arg = arg;
	s->slot = calloc((size_t)cap, sizeof *s->slot);
	s->sh_size = sizeof *s->sh + (size_t)cap * sizeof s->sh->pub[0];
	s->sh = mmap(NULL, s->sh_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!s->slot || s->sh == MAP_FAILED) {
		if (s->sh != MAP_FAILED)
			munmap(s->sh, s->sh_size);
		free(s->slot);
		free(s);
		return NULL;
	}
	memset(s->sh, 0, s->sh_size);
	return s;
}

void sup_free(struct sup *s)
{
	if (!s)
		return;
	munmap(s->sh, s->sh_size);
	free(s->slot);
	free(s);
}

void sup_on_start(struct sup *s, sup_start_fn fn) { s->on_start = fn; }
void sup_on_exit(struct sup *s, sup_exit_fn fn) { s->on_exit = fn; }
void sup_set_hung_ms(struct sup *s, int64_t ms) { s->hung_ms = ms; }

int sup_add(struct sup *s, const struct sup_role *role, int index)
{
	int i;

	for (i = 0; i < s->nslots; i++)
		if (!s->slot[i].role && s->slot[i].pid == 0)
			break;
	if (i == s->cap)
		return -1;
	if (i == s->nslots)
		s->nslots++;
	memset(&s->slot[i], 0, sizeof s->slot[i]);
	s->slot[i].role = role;
	s->slot[i].index = index;
	atomic_store(&s->sh->pub[i].restarts, 0);
	atomic_store(&s->sh->pub[i].crashes, 0);
	atomic_store(&s->sh->pub[i].errors, 0);
	return i;
}

void sup_retire(struct sup *s, int i)
{
	struct sup_slot *sl = &s->slot[i];

	sl->retired = 1;
	if (sl->pid > 0)
		kill(sl->pid, SIGTERM);
	else
		sl->role = NULL;
}

int64_t sup_backoff_ms(const struct sup_backoff *b, int fails)
{
	int64_t d;

	if (fails <= 0)
		return b->first_ms;
	d = b->min_ms;
	for (int k = 1; k < fails && d < b->max_ms; k++)
		d *= 2;
	return d > b->max_ms ? b->max_ms : d;
}

enum sup_exit sup_classify(int st)
{
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return SUP_EXIT_CLEAN;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		return SUP_EXIT_ERROR;
	return SUP_EXIT_CRASH;
}

static _Noreturn void child_start(struct sup *s, int i, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	child_sh = s->sh;
	child_pub = &s->sh->pub[i];
	child_flags = s->slot[i].role->flags;
	_exit(s->run(s, i, s->arg));
}

static void start(struct sup *s, int i, int64_t now)
{
	struct sup_slot *sl = &s->slot[i];
	struct sup_pub *p = &s->sh->pub[i];
	pid_t parent = getpid(), pid;

	atomic_store(&p->heartbeat_ms, now);
	pid = fork();
	if (pid < 0) {
		log_error("%s role=%s index=%d msg=\"fork failed\"", s->who, sl->role->name, sl->index);
		sl->next_start_ms = now + SUP_FORK_RETRY_MS;
		return;
	}
	if (pid == 0)
		child_start(s, i, parent);
	sl->pid = pid;
	sl->killed_hung = 0;
	sl->gated = 0;
	atomic_store(&p->pid, pid);
	atomic_store(&p->started_ms, now);
	log_info("%s role=%s index=%d pid=%d restarts=%u msg=\"%s started\"", s->who, sl->role->name,
		 sl->index, (int)pid, atomic_load(&p->restarts), sl->role->name);
	if (s->on_start)
		s->on_start(s, i, s->arg);
}

/* The restart delay for this exit, or -1 for none; counts it. */
static int64_t policy_delay(struct sup *s, int i, enum sup_exit how, int64_t lived)
{
	struct sup_slot *sl = &s->slot[i];
	const struct sup_policy *p = sl->role->policy;
	struct sup_pub *pub = &s->sh->pub[i];

	if (how == SUP_EXIT_CLEAN) {
		sl->fails = 0;
		return p->clean_ms;
	}
	sl->fails = lived >= p->stable_ms ? 0 : sl->fails + 1;
	if (how == SUP_EXIT_ERROR) {
		atomic_fetch_add(&pub->errors, 1);
		return sup_backoff_ms(&p->error, sl->fails);
	}
	atomic_fetch_add(&pub->crashes, 1);
	return sup_backoff_ms(&p->crash, sl->fails);
}

/* One line per exit: crashes and errors as warnings with their counts. */
static void log_exit(struct sup *s, int i, pid_t pid, int st, int64_t lived, int64_t delay)
{
	static const char *const kind[] = {"clean", "error", "crash"};
	struct sup_slot *sl = &s->slot[i];
	const struct sup_pub *p = &s->sh->pub[i];
	enum sup_exit how = sup_classify(st);
	const char *name = sl->role->name, *then;
	char what[32];

	if (WIFSIGNALED(st))
		snprintf(what, sizeof what, "signal=%d", WTERMSIG(st));
	else
		snprintf(what, sizeof what, "status=%d", WIFEXITED(st) ? WEXITSTATUS(st) : st);
	if (how != SUP_EXIT_CLEAN && !s->stopping && !sl->retired) {
		log_warn_x("%s role=%s index=%d pid=%d exit=%s %s hung=%d lived_ms=%lld crashes=%u"
			   " errors=%u delay_ms=%lld msg=\"%s %s, restarting\"", s->who, name,
			   sl->index, (int)pid, kind[how], what, sl->killed_hung, (long long)lived,
			   atomic_load(&p->crashes), atomic_load(&p->errors), (long long)delay, name,
			   how == SUP_EXIT_CRASH ? "died" : "failed");
		return;
	}
	if (s->stopping)
		then = "";
	else if (sl->retired)
		then = " (old generation)";
	else if (sl->gated)
		then = ", leadership lost";
	else
		then = delay < 0 ? ", not restarted" : ", restarting";
	log_info("%s role=%s index=%d pid=%d exit=%s %s lived_ms=%lld delay_ms=%lld msg=\"%s%s exited%s\"",
		 s->who, name, sl->index, (int)pid, kind[how], what, (long long)lived, (long long)delay,
		 sl->retired ? "old " : "", name, then);
}

static void reaped(struct sup *s, int i, pid_t pid, int st)
{
	struct sup_slot *sl = &s->slot[i];
	struct sup_pub *p = &s->sh->pub[i];
	enum sup_exit how = sup_classify(st);
	int64_t now = mh_mono_ms(), lived = now - atomic_load(&p->started_ms), delay = -1;

	sl->pid = 0;
	atomic_store(&p->pid, 0);
	if (!s->stopping && !sl->retired)
		delay = policy_delay(s, i, how, lived);
	if (delay >= 0)
		atomic_fetch_add(&p->restarts, 1);
	sl->next_start_ms = delay >= 0 ? now + delay : INT64_MAX;
	log_exit(s, i, pid, st, lived, delay);
	if (sl->role->flags & SUP_ELECTOR)
		atomic_store(&s->sh->leader, 0);
	if (s->on_exit)
		s->on_exit(s, i, how, s->arg);
	if (sl->retired)
		sl->role = NULL;
}

static void reap(struct sup *s)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		int i;

		for (i = 0; i < s->nslots; i++)
			if (s->slot[i].pid == pid)
				break;
		if (i < s->nslots)
			reaped(s, i, pid, st);
		else
			log_info("%s pid=%d msg=\"unknown child exited\"", s->who, (int)pid);
	}
}

/* Leadership changed: stop the leader-only children when it went. */
static void gate(struct sup *s)
{
	int leader = atomic_load(&s->sh->leader) != 0;

	if (leader == s->leader)
		return;
	s->leader = leader;
	log_info("%s leader=%d msg=\"leadership %s\"", s->who, leader, leader ? "taken" : "lost");
	for (int i = 0; !leader && i < s->nslots; i++) {
		struct sup_slot *sl = &s->slot[i];
		if (sl->role && (sl->role->flags & SUP_LEADER_ONLY) && sl->pid > 0) {
			sl->gated = 1;
			kill(sl->pid, SIGTERM);
		}
	}
}

/* A gap of SUP_FROZEN_GAP_MS between two ticks means the whole process
 * group was stopped (SIGSTOP, a frozen VM), not that a child hung: every
 * heartbeat is stale then. Children get hung_ms from the wake-up to beat
 * again before any is judged. */
#define SUP_FROZEN_GAP_MS 5000

static void check_hung(struct sup *s, int64_t now)
{
	if (s->last_tick_ms && now - s->last_tick_ms > SUP_FROZEN_GAP_MS) {
		log_warn_x("%s gap_ms=%lld msg=\"supervisor was stopped; heartbeats judged again after a grace\"",
			   s->who, (long long)(now - s->last_tick_ms));
		s->trust_from_ms = now + s->hung_ms;
	}
	s->last_tick_ms = now;
	if (now < s->trust_from_ms)
		return;
	for (int i = 0; s->hung_ms > 0 && i < s->nslots; i++) {
		struct sup_slot *sl = &s->slot[i];
		int64_t hb = atomic_load(&s->sh->pub[i].heartbeat_ms);

		if (sl->pid <= 0 || sl->killed_hung || !(sl->role->flags & SUP_HEARTBEAT) ||
		    now - hb < s->hung_ms)
			continue;
		log_error_x("%s role=%s index=%d pid=%d silent_ms=%lld msg=\"child hung, killing\"",
			    s->who, sl->role->name, sl->index, (int)sl->pid, (long long)(now - hb));
		sl->killed_hung = 1;
		kill(sl->pid, SIGKILL);
	}
}

int64_t sup_tick(struct sup *s, int64_t max_ms)
{
	int64_t now, wait = max_ms;

	reap(s);
	gate(s);
	now = mh_mono_ms();
	check_hung(s, now);
	for (int i = 0; !s->stopping && i < s->nslots; i++) {
		struct sup_slot *sl = &s->slot[i];

		if (!sl->role || sl->pid > 0 || sl->retired)
			continue;
		if ((sl->role->flags & SUP_LEADER_ONLY) && !s->leader)
			continue;
		if (sl->gated) { /* leadership came back: start at once */
			sl->gated = 0;
			sl->next_start_ms = now;
		}
		if (sl->next_start_ms <= now)
			start(s, i, now);
		else if (sl->next_start_ms - now < wait)
			wait = sl->next_start_ms - now;
	}
	return wait < 0 ? 0 : wait;
}

static int running(const struct sup *s)
{
	int n = 0;

	for (int i = 0; i < s->nslots; i++)
		n += s->slot[i].pid > 0;
	return n;
}

void sup_stop(struct sup *s, int64_t timeout_ms)
{
	int64_t until = mh_mono_ms() + timeout_ms;

	s->stopping = 1;
	sup_signal(s, NULL, SIGTERM);
	while (running(s) > 0 && mh_mono_ms() < until) {
		reap(s);
		if (running(s) > 0)
			sup_wait(-1, SUP_STOP_POLL_MS);
	}
	if (running(s) == 0)
		return;
	log_warn_x("%s children=%d msg=\"children did not stop in time, killing\"", s->who, running(s));
	sup_signal(s, NULL, SIGKILL);
	for (int i = 0; i < s->nslots; i++) {
		int st;
		if (s->slot[i].pid > 0 && waitpid(s->slot[i].pid, &st, 0) == s->slot[i].pid)
			reaped(s, i, s->slot[i].pid, st);
	}
}

void sup_signal(struct sup *s, const struct sup_role *role, int sig)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slot[i].pid > 0 && (!role || s->slot[i].role == role))
			kill(s->slot[i].pid, sig);
}

void sup_signal_slot(struct sup *s, int i, int sig)
{
	if (i >= 0 && i < s->nslots && s->slot[i].pid > 0)
		kill(s->slot[i].pid, sig);
}

int sup_nslots(const struct sup *s) { return s->nslots; }

const struct sup_role *sup_slot_role(const struct sup *s, int i)
{
	return i >= 0 && i < s->nslots ? s->slot[i].role : NULL;
}

int sup_slot_index(const struct sup *s, int i)
{
	return i >= 0 && i < s->nslots ? s->slot[i].index : -1;
}

const struct sup_pub *sup_slot_pub(const struct sup *s, int i)
{
	return i >= 0 && i < s->nslots ? &s->sh->pub[i] : NULL;
}

int sup_is_leader(const struct sup *s) { return atomic_load(&s->sh->leader) != 0; }

/* ---- loop signals */

static void on_signal(int sig)
{
	switch (sig) {
	case SIGCHLD: sig_bits |= SUP_SIG_CHLD; break;
	case SIGTERM: case SIGINT: sig_bits |= SUP_SIG_TERM; break;
	case SIGHUP: sig_bits |= SUP_SIG_HUP; break;
	case SIGUSR1: sig_bits |= SUP_SIG_USR1; break;
	case SIGUSR2: sig_bits |= SUP_SIG_USR2; break;
	}
}

void sup_signals_init(void)
{
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&block);
	for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
		sigaddset(&block, sigs[k]);
	sa.sa_mask = block; /* no handler interrupts another's update of sig_bits */
	for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
		sigaction(sigs[k], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &block, NULL);
}

unsigned sup_wait(int fd, int64_t ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct timespec ts;
	sigset_t empty;
	unsigned bits;

	sigemptyset(&empty);
	if (ms < 0)
		ms = 0;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	bits = 0;
	if (!sig_bits && ppoll(fd >= 0 ? &pfd : NULL, fd >= 0 ? 1 : 0, &ts, &empty) > 0 &&
	    (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
		bits |= SUP_SIG_FD;
	bits |= (unsigned)sig_bits;
	sig_bits = 0;
	return bits;
}

/* ---- child side */

void sup_child_beat(void)
{
	if (child_pub)
		atomic_store(&child_pub->heartbeat_ms, mh_mono_ms());
}

void sup_child_set_leader(int leader)
{
	if (child_sh && (child_flags & SUP_ELECTOR))
		atomic_store(&child_sh->leader, leader != 0);
}

void sup_child_set_token(int64_t token, int64_t until_ms)
{
	if (child_sh && (child_flags & SUP_ELECTOR)) {
		atomic_store(&child_sh->until_ms, until_ms);
		atomic_store(&child_sh->token, token);
	}
}

int64_t sup_child_leader_token(void)
{
	int64_t t;

	if (!child_sh || !atomic_load(&child_sh->leader))
		return 0;
	t = atomic_load(&child_sh->token);
	return mh_mono_ms() < atomic_load(&child_sh->until_ms) ? t : 0;
}
