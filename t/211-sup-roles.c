/* 211-sup-roles.c — the supervisor core (lib/sup.c) with real children:
 * per-role handling of clean exit, error exit (1) and crash, the one
 * back-off formula, hung children, leader-only roles gated by an elector,
 * retired slots, and a stop that restarts nothing. */
#include "lib/clock.h"
#include "lib/sup.h"
#include "t/lib/tap.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_MS 2500

static const struct sup_policy clean_pol = {
	.crash = {0, 50, 50}, .error = {0, 50, 50}, .clean_ms = 100, .stable_ms = 10000};
static const struct sup_policy once_pol = {
	.crash = {0, 50, 50}, .error = {0, 50, 50}, .clean_ms = SUP_STAY_DOWN, .stable_ms = 10000};
/* errors back off much more slowly than crashes */
static const struct sup_policy fail_pol = {
	.crash = {0, 50, 100}, .error = {400, 400, 800}, .clean_ms = 0, .stable_ms = 10000};

static const struct sup_role r_stopper = {"stopper", &clean_pol, 0};
static const struct sup_role r_once = {"once", &once_pol, 0};
static const struct sup_role r_failer = {"failer", &fail_pol, 0};
static const struct sup_role r_crasher = {"crasher", &fail_pol, 0};
static const struct sup_role r_silent = {"silent", &fail_pol, SUP_HEARTBEAT};
static const struct sup_role r_elector = {"elector", &clean_pol, SUP_ELECTOR};
static const struct sup_role r_follower = {"follower", &clean_pol, SUP_LEADER_ONLY};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void nap(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A well-behaved child body: beat until SIGTERM, then exit 0. */
static int serve(int beat)
{
	struct sigaction sa = {.sa_handler = on_term};
	sigset_t none;

	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	while (!stop) {
		if (beat)
			sup_child_beat();
		nap(10);
	}
	return 0;
}

static int run(struct sup *s, int slot, void *arg)
{
	const struct sup_role *r = sup_slot_role(s, slot);

	(void)arg;
	if (r == &r_stopper || r == &r_once) {
		nap(50);
		return 0;
	}
	if (r == &r_failer)
		return 1;
	if (r == &r_crasher) {
		nap(20);
		kill(getpid(), SIGKILL);
	}
	if (r == &r_silent)
		return serve(0);
	if (r == &r_elector) {
		nap(300);
		sup_child_set_leader(1);
		return serve(1);
	}
	return serve(1);
}

static struct {
	int clean, error, crash;
	int64_t first_ms, last_ms;
} seen[16];
static int64_t t0;

static void on_exit_(struct sup *s, int slot, enum sup_exit how, void *arg)
{
	(void)s;
	(void)arg;
	if (how == SUP_EXIT_CLEAN)
		seen[slot].clean++;
	else if (how == SUP_EXIT_ERROR)
		seen[slot].error++;
	else
		seen[slot].crash++;
	if (!seen[slot].first_ms)
		seen[slot].first_ms = mh_mono_ms() - t0;
	seen[slot].last_ms = mh_mono_ms() - t0;
}

static void loop_for(struct sup *s, int64_t ms)
{
	int64_t end = mh_mono_ms() + ms;

	while (mh_mono_ms() < end)
		sup_wait(-1, sup_tick(s, 20));
}

static void test_formula(void)
{
	struct sup_backoff b = {0, 200, 1000};

	is_int(sup_backoff_ms(&b, 0), 0, "back-off after a long life: first_ms");
	is_int(sup_backoff_ms(&b, 1), 200, "first short life: min_ms");
	is_int(sup_backoff_ms(&b, 3), 800, "third short life in a row: doubled twice");
	is_int(sup_backoff_ms(&b, 30), 1000, "capped at max_ms");
	is_int(sup_classify(0), SUP_EXIT_CLEAN, "status 0: clean");
	is_int(sup_classify(1 << 8), SUP_EXIT_ERROR, "exit 1: error");
	is_int(sup_classify(3 << 8), SUP_EXIT_CRASH, "exit 3: crash");
	is_int(sup_classify(SIGKILL), SUP_EXIT_CRASH, "killed by a signal: crash");
}

static int stopper, once, failer, crasher, silent, elector, follower;

static void check_exit_kinds(struct sup *s)
{
	const struct sup_pub *p = sup_slot_pub(s, stopper);

	ok(seen[stopper].clean >= 5 && !seen[stopper].error && !seen[stopper].crash,
	   "exit 0 is a clean exit, restarted after clean_ms (%d times)", seen[stopper].clean);
	ok(!atomic_load(&p->crashes) && !atomic_load(&p->errors), "  counts no crash and no error");
	is_int(seen[once].clean, 1, "a role with SUP_STAY_DOWN is not restarted after exit 0");
	is_int(atomic_load(&sup_slot_pub(s, once)->restarts), 0, "  and counts no restart");

	p = sup_slot_pub(s, failer);
	ok(seen[failer].error >= 3 && seen[failer].error <= 5 && !seen[failer].crash,
	   "exit 1 is an error, restarted with the error back-off (%d exits in %d ms)",
	   seen[failer].error, RUN_MS);
	is_int(atomic_load(&p->errors), seen[failer].error, "  errors counted");
	is_int(atomic_load(&p->crashes), 0, "  no crash counted");

	p = sup_slot_pub(s, crasher);
	ok(seen[crasher].crash > 2 * seen[failer].error && !seen[crasher].error,
	   "a crash (SIGKILL) restarts with the faster crash back-off (%d crashes)",
	   seen[crasher].crash);
	is_int(atomic_load(&p->crashes), seen[crasher].crash, "  crashes counted");

	ok(seen[silent].crash >= 2, "a child with SUP_HEARTBEAT that never beats is killed as hung"
	   " and restarted (%d times)", seen[silent].crash);
	ok(seen[silent].first_ms >= 300, "  not before hung_ms (first kill at %lld ms)",
	   (long long)seen[silent].first_ms);
}

static void check_leadership(struct sup *s)
{
	ok(sup_is_leader(s), "the elector published leadership");
	ok(atomic_load(&sup_slot_pub(s, follower)->pid) > 0, "  and the leader-only role runs");
	ok(seen[elector].crash == 0 && seen[follower].crash == 0, "  both healthy");
	sup_signal_slot(s, elector, SIGKILL);
	loop_for(s, 100);
	ok(seen[follower].clean == 1, "elector died: the leader-only child got SIGTERM and stopped");
	ok(!sup_is_leader(s), "  leadership cleared by the supervisor");
	loop_for(s, 600);
	ok(sup_is_leader(s) && atomic_load(&sup_slot_pub(s, follower)->pid) > 0,
	   "new elector leads again: the leader-only role is back");
}

static void check_retire_and_stop(struct sup *s)
{
	int st;

	sup_retire(s, stopper);
	loop_for(s, 300);
	is_int(atomic_load(&sup_slot_pub(s, stopper)->pid), 0, "a retired slot is not restarted");
	ok(sup_slot_role(s, stopper) == NULL, "  and is freed once reaped");
	sup_stop(s, 2000);
	for (int i = 0; i < sup_nslots(s); i++)
		if (sup_slot_role(s, i) && atomic_load(&sup_slot_pub(s, i)->pid) != 0)
			ok(0, "slot %d still has a child after sup_stop", i);
	ok(waitpid(-1, &st, WNOHANG) < 0, "sup_stop: every child reaped, none restarted");
}

int main(void)
{
	struct sup *s;

	test_formula();
	sup_signals_init();
	s = sup_new("t211", 16, run, NULL);
	ok(s != NULL, "sup_new");
	if (!s)
		return done_testing();
	sup_on_exit(s, on_exit_);
	sup_set_hung_ms(s, 300);
	stopper = sup_add(s, &r_stopper, 0);
	once = sup_add(s, &r_once, 0);
	failer = sup_add(s, &r_failer, 0);
	crasher = sup_add(s, &r_crasher, 0);
	silent = sup_add(s, &r_silent, 0);
	elector = sup_add(s, &r_elector, 0);
	follower = sup_add(s, &r_follower, 0);
	t0 = mh_mono_ms();
	loop_for(s, 150);
	ok(atomic_load(&sup_slot_pub(s, follower)->pid) == 0 && !sup_is_leader(s),
	   "leader-only role not started before the elector leads");
	loop_for(s, RUN_MS - 150);
	check_exit_kinds(s);
	check_leadership(s);
	check_retire_and_stop(s);
	sup_free(s);
	return done_testing();
}
