/*
 * runner_loop.c — the runner's event loop: cooperative tasks (the claim
 * loop and one task per request) over one poll(2) of the sockets of one
 * curl multi handle and of the Postgres connection.
 *
 * Runs in: modelhubd runner children, one loop per process.
 * Called by: runner.c (rl_new, rl_spawn, rl_run); the tasks themselves
 * (rl_wait, rl_wake), and through hooks db.c (statements wait here instead
 * of blocking; one task owns the connection from its first statement until
 * no transaction is open), modelclient.c (transfers run on rl's multi
 * handle; mc_finish waits here) and the cluster backend (cluster_set_io:
 * the kubernetes backend's pod API calls run on rl's multi handle through
 * rl_perform, back-off and stop waits are rl_io_sleep timers).
 * Owns: the tasks (a ucontext and an mmap()ed stack each, freed when the
 * task's function returns), the curl multi handle and its socket table, the
 * queue of tasks waiting for the database connection.
 * Shared state: none beyond the process.
 *
 * DESIGN
 * - A task is straight-line code (runner_req.c reads like one blocking
 *   request) that gives the processor back wherever the old runner
 *   blocked: a model call (curl), a statement (libpq, non-blocking), a
 *   sleep. Only the scheduler (rl_run, the process's own stack) polls;
 *   tasks never call poll, and nothing yields from inside a curl or libpq
 *   callback (modelclient runs the tick in the task, not in curl's
 *   progress callback).
 * - One Postgres connection per runner process, however many requests run:
 *   statements of different tasks go one after another (libpq allows one at
 *   a time); a transaction or a statement left in flight (db_send) keeps the
 *   connection for its task, others queue FIFO (acquire/release hooks),
 *   except the claim loop's task (rl_notify_to), which goes first.
 * - Waits are always in a loop over their condition: a wake (rl_wake, used
 *   for cancellation and shutdown) may come early or for another reason.
 * - Signals: the scheduler sleeps in hubd_poll (ppoll with the signals
 *   unblocked: no lost wake-up); on SIGTERM, SIGHUP or a poke it calls the
 *   runner's on_signal callback, which wakes the tasks that care.
 */
#include "hubd/runner.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define RL_ASAN 1
#endif

#define RL_STACK (256 * 1024) /* per task; pages are touched on use only */
#define RL_IDLE_POLL_MS 1000  /* longest sleep of the scheduler */
#define RL_DB_WAIT_MS 1000    /* a statement's wait is re-checked this often */

struct rl_task {
	ucontext_t uc;
	void *stack;
	void (*fn)(void *);
	void *arg;
	struct rl *l;
	struct rl_task *next;   /* all tasks */
	struct rl_task *dbnext; /* waiting for the connection */
	int done, runnable, woken, queued;
	int fd;                 /* waiting for fd (-1: none) */
	short events, revents;
	int64_t wake_at;        /* waiting until (0: no timer) */
	char tag[32];           /* the log's req= while it runs */
};

/* A transfer of rl_perform: the easy handle and the task waiting for it. */
struct rl_xfer {
	void *easy;
	struct rl_task *task;
	int done, cc;
	struct rl_xfer *next;
};

struct rl_sock {
	curl_socket_t fd;
	int what;
};

struct rl {
	struct hubd_child *c;
	ucontext_t main_uc;
	struct rl_task *tasks, *cur;
	int ntasks;
	CURLM *multi;
	struct rl_sock *socks;
	int nsocks, capsocks;
	int64_t curl_at; /* -1: no curl timer */
	struct db *db;
	struct rl_task *db_owner, *dbq_head, *dbq_tail;
	struct pollfd *pfd;
	int cappfd;
	void (*on_signal)(void *ctx, int poked);
	void *sig_ctx;
	struct rl_task *notify_to; /* woken when notifications are pending;
				    * first in line for the connection */
	struct rl_xfer *xfers;     /* rl_perform transfers in flight */
#ifdef RL_ASAN
	void *fake_stack;
#endif
};

static struct rl *the_loop; /* task_entry's way back to its loop */

/* ------------------------------------------------------- curl sockets */

static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sp)
{
	struct rl *l = ud;
	int i;

	(void)e, (void)sp;
	for (i = 0; i < l->nsocks && l->socks[i].fd != s; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < l->nsocks)
			l->socks[i] = l->socks[--l->nsocks];
		return 0;
	}
	if (i == l->nsocks) {
		if (l->nsocks == l->capsocks) {
			int ncap = l->capsocks ? l->capsocks * 2 : 64;
			struct rl_sock *ns = realloc(l->socks, (size_t)ncap * sizeof *ns);
			if (!ns)
				return -1;
			l->socks = ns;
			l->capsocks = ncap;
		}
		l->nsocks++;
	}
	l->socks[i].fd = s;
	l->socks[i].what = what;
	return 0;
}

static int on_timer(CURLM *m, long ms, void *ud)
{
	struct rl *l = ud;

	(void)m;
	l->curl_at = ms < 0 ? -1 : mh_mono_ms() + ms;
	return 0;
}

/* ---------------------------------------------------------- switching */

static void switch_in(struct rl *l, struct rl_task *t)
{
	l->cur = t;
	log_set_req(t->tag[0] ? t->tag : NULL);
#ifdef RL_ASAN
	__sanitizer_start_switch_fiber(&l->fake_stack, t->stack, RL_STACK);
#endif
	swapcontext(&l->main_uc, &t->uc);
#ifdef RL_ASAN
	__sanitizer_finish_switch_fiber(l->fake_stack, NULL, NULL);
#endif
	l->cur = NULL;
	log_set_req(NULL);
}

/* From a task: back to the scheduler until made runnable again. */
static void yield(struct rl *l)
{
	struct rl_task *t = l->cur;
#ifdef RL_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, NULL, 0);
#endif
	swapcontext(&t->uc, &l->main_uc);
#ifdef RL_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

static void task_entry(void)
{
	struct rl *l = the_loop;
	struct rl_task *t = l->cur;

#ifdef RL_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	t->fn(t->arg);
	t->done = 1;
#ifdef RL_ASAN
	__sanitizer_start_switch_fiber(NULL, NULL, 0);
#endif
	/* returning switches to uc_link, the scheduler */
}

/* getcontext returns twice: kept apart so no caller's locals are at risk
 * (a new context never returns here; makecontext replaces it) */
static __attribute__((noinline)) int get_ctx(ucontext_t *uc) { return getcontext(uc); }

struct rl_task *rl_spawn(struct rl *l, void (*fn)(void *), void *arg)
{
	struct rl_task *t = calloc(1, sizeof *t);
	long page = sysconf(_SC_PAGESIZE);

	if (!t)
		return NULL;
	t->stack = mmap(NULL, RL_STACK, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (t->stack == MAP_FAILED || get_ctx(&t->uc) < 0) {
		log_error("runner msg=\"cannot make a task\"");
		if (t->stack != MAP_FAILED)
			munmap(t->stack, RL_STACK);
		free(t);
		return NULL;
	}
	mprotect(t->stack, (size_t)page, PROT_NONE); /* guard: overflow faults */
	t->uc.uc_stack.ss_sp = t->stack;
	t->uc.uc_stack.ss_size = RL_STACK;
	t->uc.uc_link = &l->main_uc;
	makecontext(&t->uc, task_entry, 0);
	t->fn = fn;
	t->arg = arg;
	t->l = l;
	t->fd = -1;
	t->runnable = 1;
	t->next = l->tasks;
	l->tasks = t;
	l->ntasks++;
	return t;
}

static void task_free(struct rl *l, struct rl_task *t)
{
	if (l->db_owner == t) /* cannot happen: statements release it */
		l->db_owner = NULL;
	munmap(t->stack, RL_STACK);
	free(t);
}

/* --------------------------------------------------------------- waits */

int rl_wait(struct rl *l, int fd, short events, int ms)
{
	struct rl_task *t = l->cur;

	if (!t) { /* the scheduler's own stack (setup, shutdown): block */
		struct pollfd p = {.fd = fd, .events = events};
		return poll(fd >= 0 ? &p : NULL, fd >= 0 ? 1 : 0, ms) > 0;
	}
	t->fd = fd;
	t->events = events;
	t->revents = 0;
	t->woken = 0;
	t->wake_at = ms >= 0 ? mh_mono_ms() + ms : 0;
	if (t->wake_at == 0 && ms >= 0)
		t->wake_at = 1;
	yield(l);
	t->fd = -1;
	t->wake_at = 0;
	return t->woken || t->revents ? 1 : 0;
}

void rl_wake(struct rl_task *t)
{
	if (!t)
		return;
	t->woken = 1;
	t->runnable = 1;
}

int rl_mc_wait(void *task, int ms)
{
	struct rl_task *t = task;

	return rl_wait(t->l, -1, 0, ms);
}

void rl_set_tag(struct rl *l, const char *tag)
{
	if (l->cur)
		snprintf(l->cur->tag, sizeof l->cur->tag, "%s", tag ? tag : "");
	log_set_req(tag);
}

struct rl_task *rl_self(const struct rl *l) { return l->cur; }
int rl_ntasks(const struct rl *l) { return l->ntasks; }
void *rl_multi(struct rl *l) { return l->multi; }

void rl_on_signal(struct rl *l, void (*fn)(void *ctx, int poked), void *ctx)
{
	l->on_signal = fn;
	l->sig_ctx = ctx;
}

void rl_notify_to(struct rl *l, struct rl_task *t) { l->notify_to = t; }

/* ---------------------------------------------------- database hooks */

static void db_acquire(void *ctx)
{
	struct rl *l = ctx;
	struct rl_task *t = l->cur;

	if (!t || l->db_owner == t)
		return;
	if (!l->db_owner) {
		l->db_owner = t;
		return;
	}
	if (t == l->notify_to) {
		/* the claim loop goes first: behind hundreds of requests'
		 * statements it would claim a few a second */
		t->dbnext = l->dbq_head;
		l->dbq_head = t;
		if (!l->dbq_tail)
			l->dbq_tail = t;
	} else {
		t->dbnext = NULL;
		if (l->dbq_tail)
			l->dbq_tail->dbnext = t;
		else
			l->dbq_head = t;
		l->dbq_tail = t;
	}
	t->queued = 1;
	while (l->db_owner != t)
		rl_wait(l, -1, 0, -1);
}

/* Hand the connection to the first task waiting for it, and wake the
 * notification reader when a statement brought notifications along. */
static void db_release(void *ctx)
{
	struct rl *l = ctx;
	struct rl_task *next = l->dbq_head;

	if (l->db_owner != l->cur)
		return;
	l->db_owner = next;
	if (next) {
		l->dbq_head = next->dbnext;
		if (!l->dbq_head)
			l->dbq_tail = NULL;
		next->queued = 0;
		rl_wake(next);
	}
	if (l->notify_to && l->notify_to != l->cur && db_notify_pending(l->db))
		rl_wake(l->notify_to);
}

static void db_wait(void *ctx, int fd, int events)
{
	struct rl *l = ctx;

	rl_wait(l, fd, (short)events, RL_DB_WAIT_MS);
}

/* ----------------------------------------------------------- scheduler */

struct rl *rl_new(struct hubd_child *c, struct db *db)
{
	struct rl *l = calloc(1, sizeof *l);
	struct db_hooks h;

	if (!l)
		return NULL;
	l->c = c;
	l->db = db;
	l->curl_at = -1;
	l->multi = curl_multi_init();
	if (!l->multi) {
		free(l);
		return NULL;
	}
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	h = (struct db_hooks){db_acquire, db_release, db_wait, l};
	db_set_hooks(db, &h);
	the_loop = l;
	return l;
}

void rl_free(struct rl *l)
{
	if (!l)
		return;
	db_set_hooks(l->db, NULL);
	curl_multi_cleanup(l->multi);
	free(l->socks);
	free(l->pfd);
	free(l);
	the_loop = NULL;
}

/* Run every runnable task once; free those that ended. */
static void run_ready(struct rl *l)
{
	struct rl_task **pp = &l->tasks, *t;

	while ((t = *pp) != NULL) {
		if (t->runnable) {
			t->runnable = 0;
			switch_in(l, t);
		}
		if (t->done) {
			*pp = t->next;
			task_free(l, t);
			l->ntasks--;
			continue;
		}
		pp = &t->next;
	}
}

static short curl_events(int what)
{
	return (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
}

/* The poll set: curl's sockets first, then each waiting task's fd. Returns
 * the count; *timeout the sleep until the next timer (0: a task runs). */
static int build_poll(struct rl *l, int *timeout)
{
	int64_t now = mh_mono_ms(), t_ms = RL_IDLE_POLL_MS;
	int n = 0, need = l->nsocks + l->ntasks;

	if (need > l->cappfd) {
		struct pollfd *np = realloc(l->pfd, (size_t)need * sizeof *np);
		if (!np)
			return -1;
		l->pfd = np;
		l->cappfd = need;
	}
	for (int i = 0; i < l->nsocks; i++)
		l->pfd[n++] = (struct pollfd){.fd = l->socks[i].fd, .events = curl_events(l->socks[i].what)};
	for (struct rl_task *t = l->tasks; t; t = t->next) {
		if (t->runnable)
			t_ms = 0;
		if (t->wake_at && t->wake_at - now < t_ms)
			t_ms = t->wake_at - now;
		if (t->fd >= 0)
			l->pfd[n++] = (struct pollfd){.fd = t->fd, .events = t->events};
	}
	if (l->curl_at >= 0 && l->curl_at - now < t_ms)
		t_ms = l->curl_at - now;
	*timeout = t_ms < 0 ? 0 : (int)t_ms;
	return n;
}

/* An rl_perform transfer ended: wake its task. 0 when easy is not one. */
static int xfer_done(struct rl *l, void *easy, int cc)
{
	for (struct rl_xfer *x = l->xfers; x; x = x->next)
		if (x->easy == easy) {
			x->done = 1;
			x->cc = cc;
			rl_wake(x->task);
			return 1;
		}
	return 0;
}

int rl_perform(struct rl *l, void *easy)
{
	struct rl_xfer x = {easy, l->cur, 0, 0, l->xfers}, **pp;

	if (!l->cur)
		return (int)curl_easy_perform(easy);
	if (curl_multi_add_handle(l->multi, easy) != CURLM_OK)
		return (int)CURLE_FAILED_INIT;
	l->xfers = &x;
	/* a wake may come early (a cancellation): the transfer ends by itself,
	 * bounded by its own timeout */
	while (!x.done)
		rl_wait(l, -1, 0, RL_IDLE_POLL_MS);
	for (pp = &l->xfers; *pp != &x; pp = &(*pp)->next)
		;
	*pp = x.next;
	curl_multi_remove_handle(l->multi, easy);
	return x.cc;
}

int rl_io_perform(void *ctx, void *easy)
{
	return rl_perform(ctx, easy);
}

void rl_io_sleep(void *ctx, int ms)
{
	struct rl *l = ctx;
	int64_t until = mh_mono_ms() + ms;

	for (int64_t now = mh_mono_ms(); now < until; now = mh_mono_ms())
		rl_wait(l, -1, 0, (int)(until - now));
}

/* Let curl act on ready sockets and expired timers; wake the task of
 * every transfer that ended. */
static void dispatch_curl(struct rl *l, int nsocks)
{
	int running, left;
	CURLMsg *msg;

	for (int i = 0; i < nsocks; i++) {
		short re = l->pfd[i].revents;
		int ev = (re & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) | (re & POLLOUT ? CURL_CSELECT_OUT : 0) |
			 (re & POLLERR ? CURL_CSELECT_ERR : 0);
		if (ev)
			curl_multi_socket_action(l->multi, l->pfd[i].fd, ev, &running);
	}
	if (l->curl_at >= 0 && mh_mono_ms() >= l->curl_at) {
		l->curl_at = -1;
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
		struct mc *m;
		if (msg->msg != CURLMSG_DONE)
			continue;
		if (xfer_done(l, msg->easy_handle, (int)msg->data.result))
			continue;
		m = mc_transfer_done(msg->easy_handle, (int)msg->data.result);
		if (m)
			rl_wake(mc_wait_ctx(m));
	}
}

static void poll_once(struct rl *l)
{
	int timeout, n, nsocks = l->nsocks, k;
	int64_t now;

	n = build_poll(l, &timeout);
	if (n < 0)
		n = 0, timeout = 10;
	if (hubd_should_stop()) {
		if (poll(l->pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			log_warn("runner msg=\"poll failed\"");
	} else if (hubd_poll(l->c, l->pfd, n, timeout) < 0 || hubd_reload_pending()) {
		if (l->on_signal)
			l->on_signal(l->sig_ctx, 0);
	}
	if (hubd_take_poke() && l->on_signal)
		l->on_signal(l->sig_ctx, 1);
	dispatch_curl(l, nsocks);
	now = mh_mono_ms();
	k = nsocks;
	for (struct rl_task *t = l->tasks; t; t = t->next) {
		if (t->fd >= 0 && k < n) {
			t->revents = l->pfd[k++].revents;
			if (t->revents)
				t->runnable = 1;
		}
		if (t->wake_at && now >= t->wake_at)
			t->runnable = 1;
	}
}

void rl_run(struct rl *l)
{
	while (l->ntasks > 0) {
		run_ready(l);
		if (l->ntasks == 0)
			break;
		poll_once(l);
	}
}
