/*
 * supervisor.c — modelhubd's main process: declares the child roles, forks
 * them from the supervisor core's slot table (lib/sup.c), restarts them
 * per role, kills hung ones, passes pokes between runners and the dealer,
 * stops everything on SIGTERM. It never talks to Postgres.
 *
 * Runs in: modelhubd (the supervisor process only; child_run in a child
 * right after fork).
 * Called by: main.c (supervisor_run, hubd_title_init).
 * Owns: the role table, the core (struct sup), the shared mapping
 * (hubd_shm, anonymous MAP_SHARED, made before the first fork), the
 * metrics segment (created, never written except the child table).
 * Shared state: writes hubd_shm->nrunners before the first fork and at a
 * reload that changes hub.runners; clears a
 * dead runner's busy flag; evens assign_seq after a dealer died while
 * writing; takes poke_runners. Heartbeats and leadership: lib/sup.h.
 * On crash: children get SIGTERM through PR_SET_PDEATHSIG and stop; leases
 * of their requests expire and another replica's janitor requeues them.
 *
 * NOTES (after the PostgreSQL postmaster)
 * - The role table (roles[]) is the whole wiring: name, entry, restart
 *   policy, heartbeat and leadership flags, and how many slots a replica
 *   gets. A new child role is one enum value and one row.
 * - Exit 0 (asked to stop, or done) restarts after SUP_CLEAN_RESTART_MS;
 *   exit 1 (orderly fatal error: bad configuration, no cluster) backs off
 *   from 5 s to 5 min since trying again at once would fail the same way;
 *   a crash (signal or other status) backs off from 1 s, doubling while
 *   the child keeps dying within 60 s, at most 60 s. Crashes and errors
 *   are counted per slot (hub_server detail, logs).
 * - A child whose heartbeat is older than hub.hung_seconds (60) is
 *   SIGKILLed and restarted like a crash.
 * - The loop does no database work (the dealer does the assignment and
 *   the hub_server row), so a stalled Postgres never delays a restart.
 * - Leader-only roles run only while the janitor (the elector) holds
 *   leadership; they get SIGTERM when it is lost or the janitor exits.
 * - SIGTERM: forward to children, wait up to hub.shutdown_seconds (runners
 *   hand their request back and stop their instances), SIGKILL the rest.
 * - SIGHUP: reload the config file and forward it; a changed hub.runners
 *   adds or retires runner slots at once (resize_runners).
 * - Each turn of the loop touches <hub.var_dir>/modelhubd.alive (alive.c):
 *   `modelhubctl alive`, the liveness probe, reads its age.
 * - SIGUSR1 from a runner (it became idle) is passed on to the dealer;
 *   SIGUSR2 from the dealer (some runners' lists changed) becomes SIGUSR1
 *   to each runner in hubd_shm->poke_runners.
 */
#include "hubd/hubd.h"
#include "hubd/shared.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/sup.h"
#include "metrics/shm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define SUP_CLEAN_RESTART_MS 1000 /* a child that stopped by itself */
#define SUP_LOOP_MS 1000

enum hubd_role {
	ROLE_DEALER,
	ROLE_RUNNER,
	ROLE_JANITOR,
	ROLE_SCRAPER,
	ROLE_MONITOR,
	ROLE_KUBEWATCH,
	ROLE_KUBEEVENTS,
	ROLE_AUTOSCALER,
	ROLE_COUNT
};

struct role_def {
	struct sup_role sup;                   /* name, policy, flags */
	int (*main)(struct hubd_child *c);
	int (*count)(void);                    /* slots on this replica */
};

static const struct sup_policy child_policy = {
	.crash = {.first_ms = 1000, .min_ms = 1000, .max_ms = 60000},
	.error = {.first_ms = 5000, .min_ms = 5000, .max_ms = 300000},
	.clean_ms = SUP_CLEAN_RESTART_MS,
	.stable_ms = 60000,
};

static int one(void) { return 1; }

static int runners(void) { return hubd_shm->nrunners; }

static int kube_only(void)
{
	return strcmp(cfg_str("hub.backend", "local"), "kubernetes") == 0;
}

/* The node autoscaler: kubernetes backend with node groups configured. */
static int autoscaling(void)
{
	return kube_only() && cfg_str("autoscale.groups", "")[0] != '\0';
}

/* Table order is start order: the dealer first, so runners find an
 * assignment soon after they start. */
static const struct role_def roles[ROLE_COUNT] = {
	[ROLE_DEALER] = {{"dealer", &child_policy, SUP_HEARTBEAT}, dealer_main, one},
	[ROLE_RUNNER] = {{"runner", &child_policy, SUP_HEARTBEAT}, runner_main, runners},
	[ROLE_JANITOR] = {{"janitor", &child_policy, SUP_HEARTBEAT | SUP_ELECTOR}, janitor_main, one},
	[ROLE_SCRAPER] = {{"scraper", &child_policy, SUP_HEARTBEAT}, scraper_main, one},
	[ROLE_MONITOR] = {{"monitor", &child_policy, SUP_HEARTBEAT}, monitor_main, one},
	[ROLE_KUBEWATCH] = {{"kubewatch", &child_policy, SUP_HEARTBEAT}, kubewatch_main, kube_only},
	[ROLE_KUBEEVENTS] = {{"kubeevents", &child_policy, SUP_HEARTBEAT}, kubeevents_main, kube_only},
	[ROLE_AUTOSCALER] = {{"autoscaler", &child_policy, SUP_HEARTBEAT | SUP_LEADER_ONLY}, autoscaler_main,
			     autoscaling},
};

struct hubd_sup {
	struct sup *core;
	struct metrics_seg *seg;
	char replica[128];
	char shm_name[160];
	int events_fd[2]; /* [0] kubewatch reads, [1] kubeevents writes */
};

static char *title_base;
static size_t title_len;

void hubd_child_signals(void);

static const struct role_def *role_of(const struct sup *core, int slot)
{
	return (const struct role_def *)sup_slot_role(core, slot);
}

/* Make the argv area reusable for process titles (ps -o args shows it).
 * environ is copied away first because it follows argv in memory. */
void hubd_title_init(int argc, char **argv)
{
	extern char **environ;
	char *end = argv[0] + strlen(argv[0]);
	int n = 0;

	for (int i = 1; i < argc; i++)
		if (argv[i] == end + 1)
			end = argv[i] + strlen(argv[i]);
	for (; environ[n]; n++)
		if (environ[n] == end + 1)
			end = environ[n] + strlen(environ[n]);
	char **env = calloc((size_t)n + 1, sizeof *env);
	if (env) {
		for (int i = 0; i < n; i++)
			env[i] = strdup(environ[i]);
		environ = env;
	}
	for (int i = 1; i < argc; i++)
		argv[i] = NULL;
	title_base = argv[0];
	title_len = (size_t)(end - argv[0]);
}

void hubd_set_title(const char *title)
{
	char comm[16];

	if (title_base && title_len > 1) {
		size_t n = strlen(title);
		if (n > title_len - 1)
			n = title_len - 1;
		memcpy(title_base, title, n);
		memset(title_base + n, 0, title_len - n);
	}
	/* comm (ps -o comm, top): at most 15 chars, "mh-runner-2" */
	snprintf(comm, sizeof comm, "mh-%s", strncmp(title, "modelhubd: ", 11) == 0 ? title + 11 : title);
	for (char *p = comm; *p; p++)
		if (*p == ' ')
			*p = '-';
	prctl(PR_SET_NAME, comm, 0, 0, 0);
}

/* The kubeevents -> kubewatch stream end a role uses (-1: none); the
 * child closes its copy of the other end. The supervisor keeps both, so
 * events written while kubewatch restarts wait in the socket. */
static int events_end(struct hubd_sup *h, const struct role_def *rd)
{
	int keep = rd == &roles[ROLE_KUBEWATCH] ? 0 : rd == &roles[ROLE_KUBEEVENTS] ? 1 : -1;

	for (int i = 0; i < 2; i++)
		if (i != keep && h->events_fd[i] >= 0)
			close(h->events_fd[i]);
	return keep < 0 ? -1 : h->events_fd[keep];
}

/* Child side of a fork (lib/sup.c): title, log identity, own connection,
 * then the role's main. Returns the exit status. */
static int child_run(struct sup *core, int slot, void *arg)
{
	struct hubd_sup *h = arg;
	const struct role_def *rd = role_of(core, slot);
	struct hubd_child c;
	char title[64], role[48];
	int idx = sup_slot_index(core, slot), rc;

	hubd_child_signals();
	if (rd == &roles[ROLE_RUNNER]) {
		snprintf(role, sizeof role, "runner-%d", idx);
		snprintf(title, sizeof title, "modelhubd: runner %d", idx);
	} else {
		snprintf(role, sizeof role, "%s", rd->sup.name);
		snprintf(title, sizeof title, "modelhubd: %s", rd->sup.name);
	}
	hubd_set_title(title);
	log_init(role);
	memset(&c, 0, sizeof c);
	c.sup = core;
	c.index = slot;
	c.role_index = idx;
	c.role = rd->sup.name;
	c.replica_id = h->replica;
	c.seg = h->seg;
	c.events_fd = events_end(h, rd);
	c.db = db_new(cfg_str("db.conninfo", ""), cfg_str("db.schema", "modelhub"), title + 11);
	if (!c.db)
		return 1;
	hubd_heartbeat(&c);
	rc = rd->main(&c);
	db_free(c.db);
	log_info("child msg=\"exiting\" status=%d", rc);
	return rc == 0 ? 0 : 1;
}

static void on_start(struct sup *core, int slot, void *arg)
{
	struct hubd_sup *h = arg;
	const struct sup_pub *p = sup_slot_pub(core, slot);

	if (h->seg && slot < SHM_MAX_CHILDREN)
		shm_child_set(h->seg, slot, role_of(core, slot)->sup.name, atomic_load(&p->pid),
			      atomic_load(&p->restarts));
}

static void on_exit_(struct sup *core, int slot, enum sup_exit how, void *arg)
{
	const struct role_def *rd = role_of(core, slot);
	int idx = sup_slot_index(core, slot);
	uint32_t seq;

	(void)how;
	(void)arg;
	if (rd == &roles[ROLE_RUNNER]) {
		atomic_store(&hubd_shm->runner_busy[idx], 0);
		sup_signal(core, &roles[ROLE_DEALER].sup, SIGUSR1); /* reassign its models */
	} else if (rd == &roles[ROLE_DEALER]) {
		seq = atomic_load(&hubd_shm->assign_seq);
		if (seq & 1) /* killed while writing: readers must not wait forever */
			atomic_store(&hubd_shm->assign_seq, seq + 1);
	}
}

/* SIGUSR2 from the dealer: poke the runners whose list changed. */
static void poke_runners(struct sup *core)
{
	uint32_t mask = atomic_exchange(&hubd_shm->poke_runners, 0);

	for (int i = 0; mask && i < sup_nslots(core); i++)
		if (role_of(core, i) == &roles[ROLE_RUNNER] &&
		    (mask & (1u << sup_slot_index(core, i))))
			sup_signal_slot(core, i, SIGUSR1);
}

/* hub.runners changed: add the missing runner slots or retire the extra
 * ones (SIGTERM: they hand their requests back), no restart. Runners read
 * nrunners for their share of hub.max_concurrent_requests, the dealer for
 * its assignment. */
static void resize_runners(struct sup *core)
{
	int want = (int)cfg_int("hub.runners", hubd_shm->nrunners), have = hubd_shm->nrunners;

	if (want < 1 || want > HUBD_MAX_RUNNERS) {
		log_warn_x("supervisor runners=%d msg=\"hub.runners must be 1..%d, keeping %d\"", want,
			   HUBD_MAX_RUNNERS, have);
		return;
	}
	if (want == have)
		return;
	for (int k = have; k < want; k++)
		if (sup_add(core, &roles[ROLE_RUNNER].sup, k) < 0) {
			log_warn_x("supervisor msg=\"no slot for another runner\" runners=%d", k);
			want = k;
			break;
		}
	for (int i = 0; i < sup_nslots(core); i++)
		if (role_of(core, i) == &roles[ROLE_RUNNER] && sup_slot_index(core, i) >= want)
			sup_retire(core, i);
	hubd_shm->nrunners = want;
	log_info("supervisor runners=%d was=%d msg=\"runner count changed\"", want, have);
}

static void reload(struct sup *core)
{
	const char *err = NULL;
	int line = 0;

	if (cfg_load(cfg_path(), &err, &line) < 0) {
		log_warn_x("supervisor path=%s line=%d error=\"%s\" msg=\"config reload failed, keeping old\"",
			   cfg_path() ? cfg_path() : "-", line, err ? err : "?");
	} else {
		log_info("supervisor msg=\"config reloaded\"");
		resize_runners(core);
	}
	sup_signal(core, NULL, SIGHUP);
}

/* The shared mapping and the metrics segment, before the first fork. */
static void shared_init(struct hubd_sup *h, int nrunners)
{
	struct shm_dims dims;

	hubd_shm = mmap(NULL, sizeof *hubd_shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (hubd_shm == MAP_FAILED)
		die("mmap of the shared area failed");
	memset(hubd_shm, 0, sizeof *hubd_shm);
	hubd_shm->magic = HUBD_SHARED_MAGIC;
	hubd_shm->nrunners = nrunners;
	shm_dims_from_config(&dims);
	shm_name_from_config(h->shm_name, sizeof h->shm_name, h->replica);
	h->seg = shm_create(h->shm_name, &dims, h->replica);
	if (!h->seg)
		log_warn_x("supervisor name=%s msg=\"no metrics segment; live metrics disabled\"",
			   h->shm_name);
}

/* The stream that carries the pods' Kubernetes events from the kubeevents
 * child (no database connection of its own) to kubewatch, which records
 * them: one connection less per replica (issue 15). Non-blocking at both
 * ends; made whatever the backend, as a reload may switch to kubernetes. */
static void events_init(struct hubd_sup *h)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->events_fd) < 0) {
		log_warn("supervisor msg=\"no events stream; pod events are not recorded\"");
		h->events_fd[0] = h->events_fd[1] = -1;
		return;
	}
	for (int i = 0; i < 2; i++)
		fcntl(h->events_fd[i], F_SETFL, fcntl(h->events_fd[i], F_GETFL) | O_NONBLOCK);
}

/* One slot per child the role table asks for on this replica. */
static void add_slots(struct hubd_sup *h)
{
	for (int r = 0; r < ROLE_COUNT; r++)
		for (int k = 0; k < roles[r].count(); k++)
			if (sup_add(h->core, &roles[r].sup, k) < 0)
				die("too many children (at most %d)", HUBD_MAX_CHILDREN);
}

static void hubd_sup_init(struct hubd_sup *h)
{
	char hostname[128] = "";
	int nrunners = (int)cfg_int("hub.runners", 2);

	if (nrunners < 1 || nrunners > HUBD_MAX_RUNNERS)
		die("hub.runners must be 1..%d", HUBD_MAX_RUNNERS);
	gethostname(hostname, sizeof hostname - 1);
	snprintf(h->replica, sizeof h->replica, "%s", cfg_str("hub.replica_id", hostname));
	shared_init(h, nrunners);
	events_init(h);
	h->core = sup_new("supervisor", HUBD_MAX_CHILDREN, child_run, h);
	if (!h->core)
		die("out of memory");
	sup_on_start(h->core, on_start);
	sup_on_exit(h->core, on_exit_);
	sup_set_hung_ms(h->core, cfg_int("hub.hung_seconds", 60) * 1000);
	add_slots(h);
}

int supervisor_run(void)
{
	struct hubd_sup h;
	unsigned sig = 0;

	memset(&h, 0, sizeof h);
	hubd_sup_init(&h);
	sup_signals_init();
	hubd_set_title("modelhubd: supervisor");
	log_info("supervisor replica=%s runners=%d version=%s msg=\"starting\"", h.replica,
		 hubd_shm->nrunners, MH_VERSION);
	while (!(sig & SUP_SIG_TERM)) {
		if (sig & SUP_SIG_HUP)
			reload(h.core);
		if (sig & SUP_SIG_USR1) /* a runner turned idle */
			sup_signal(h.core, &roles[ROLE_DEALER].sup, SIGUSR1);
		if (sig & SUP_SIG_USR2)
			poke_runners(h.core);
		hubd_alive_beat();
		sig = sup_wait(-1, sup_tick(h.core, SUP_LOOP_MS));
	}
	hubd_alive_stop();
	log_info("supervisor msg=\"SIGTERM: shutting down\"");
	sup_stop(h.core, cfg_int("hub.shutdown_seconds", 30) * 1000);
	if (h.seg) {
		shm_close(h.seg);
		shm_unlink_name(h.shm_name);
	}
	sup_free(h.core);
	munmap(hubd_shm, sizeof *hubd_shm);
	log_info("supervisor msg=\"stopped\"");
	return 0;
}
