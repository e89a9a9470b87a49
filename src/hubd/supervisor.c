/*
 * supervisor.c — modelhubd's main process: forks children by role from a
 * fixed table, restarts them with back-off, kills hung ones, deals models
 * to runners, stops everything on SIGTERM.
 *
 * Runs in: modelhubd (the supervisor process only).
 * Called by: main.c (supervisor_run).
 * Owns: the child table, the shared mapping (hubd_shm, anonymous
 * MAP_SHARED, made before the first fork), the metrics segment (created,
 * never written except the child table), its own Postgres connection
 * (LISTEN work_queued, model_changed; hub_server row; queue depths).
 * Shared state: writes hubd_shm->assigned (seqlock) and reads heartbeats
 * and busy flags; upserts hub_server every SUP_BEAT_MS.
 * On crash: children get SIGTERM through PR_SET_PDEATHSIG and stop; leases
 * of their requests expire and another replica's janitor requeues them.
 *
 * NOTES (after the PostgreSQL postmaster)
 * - Signal handlers only set flags; the loop sleeps in ppoll() with the
 *   signals unblocked only there, so none is lost between check and sleep.
 * - A child that exits is restarted after a per-slot back-off that doubles
 *   from SUP_BACKOFF_MIN_MS to SUP_BACKOFF_MAX_MS while it keeps dying young
 *   and resets once it has lived SUP_STABLE_MS.
 * - A child whose heartbeat word is older than hub.hung_seconds (60) is
 *   SIGKILLed and restarted like a crash.
 * - SIGTERM: forward to children, wait up to hub.shutdown_seconds (runners
 *   hand their request back and stop their instances), SIGKILL the rest.
 * - SIGHUP: reload the config file and forward it.
 * - SIGUSR1 from a runner (it became idle) or a NOTIFY triggers a new
 *   assignment (at once after a quiet spell, then at most every
 *   SUP_ASSIGN_MIN_MS; new work for a model that already has a runner only
 *   every SUP_ASSIGN_LAZY_MS); runners whose model list changed get SIGUSR1
 *   so they claim at once. Runners also claim the models of their own warm
 *   instances, so a drained-and-refilled model does not wait for us.
 */
#include "db/db_work.h"
#include "hubd/assign.h"
#include "hubd/hubd.h"
#include "hubd/shared.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/shm.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUP_BACKOFF_MIN_MS 1000
#define SUP_BACKOFF_MAX_MS 60000
#define SUP_STABLE_MS 60000        /* a child living this long resets its back-off */
#define SUP_BEAT_MS 10000          /* hub_server heartbeat */
#define SUP_ASSIGN_EVERY_MS 30000  /* periodic reassignment */
#define SUP_ASSIGN_MIN_MS 50       /* debounce of NOTIFY-driven reassignment */
#define SUP_ASSIGN_LAZY_MS 1000    /* same, new work for a model that has a runner */
#define SUP_LOOP_MS 1000

struct slot {
	const char *role;
	int role_index;
	int (*main)(struct hubd_child *);
	pid_t pid;
	int64_t started_ms;
	int64_t next_start_ms;
	unsigned restarts;
	int fails;           /* consecutive short lives */
	int killed_hung;
};

struct sup {
	struct slot slot[HUBD_MAX_CHILDREN];
	int nslots;
	int nrunners;
	struct db *db;
	struct metrics_seg *seg;
	char replica[128];
	char hostname[128];
	char shm_name[160];
	int64_t last_beat, last_assign;
	int assign_wanted; /* reassign within SUP_ASSIGN_MIN_MS */
	int assign_lazy;   /* reassign within SUP_ASSIGN_LAZY_MS */
	int starting;
	struct json_object *queue; /* {model: queued} from the last assignment */
};

static volatile sig_atomic_t sig_chld, sig_term, sig_hup, sig_usr1;

static char *title_base;
static size_t title_len;

/* Scraper and monitor are other engineers' files; until they are linked
 * their slots stay out of the table. */
extern int scraper_main(struct hubd_child *c) __attribute__((weak));
extern int monitor_main(struct hubd_child *c) __attribute__((weak));
/* kubernetes backend: the pod watch (kubewatch.c, kube engineer) */
extern int kubewatch_main(struct hubd_child *c) __attribute__((weak));

void hubd_child_signals(void);

static void on_signal(int s)
{
	switch (s) {
	case SIGCHLD: sig_chld = 1; break;
	case SIGTERM: case SIGINT: sig_term = 1; break;
	case SIGHUP: sig_hup = 1; break;
	case SIGUSR1: sig_usr1 = 1; break;
	}
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

static void add_slot(struct sup *s, const char *role, int idx, int (*fn)(struct hubd_child *))
{
	struct slot *sl;

	if (s->nslots >= HUBD_MAX_CHILDREN || !fn)
		return;
	sl = &s->slot[s->nslots++];
	memset(sl, 0, sizeof *sl);
	sl->role = role;
	sl->role_index = idx;
	sl->main = fn;
}

static _Noreturn void child_run(struct sup *s, int i)
{
	struct slot *sl = &s->slot[i];
	struct hubd_child c;
	char title[64], role[48];
	pid_t parent = getppid();
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	hubd_child_signals();
	if (getppid() != parent || getppid() == 1)
		_exit(1);
	if (strcmp(sl->role, "runner") == 0)
		snprintf(role, sizeof role, "runner-%d", sl->role_index);
	else
		snprintf(role, sizeof role, "%s", sl->role);
	if (strcmp(sl->role, "runner") == 0)
		snprintf(title, sizeof title, "modelhubd: runner %d", sl->role_index);
	else
		snprintf(title, sizeof title, "modelhubd: %s", sl->role);
	hubd_set_title(title);
	log_init(role);
	/* The supervisor's connection is not ours: close our copy of its socket
	 * without PQfinish(), which would send Terminate and end the
	 * supervisor's session. The small PGconn struct is left behind. */
	if (db_socket(s->db) >= 0)
		close(db_socket(s->db));
	memset(&c, 0, sizeof c);
	c.index = i;
	c.role_index = sl->role_index;
	c.role = sl->role;
	c.replica_id = s->replica;
	c.seg = s->seg;
	c.db = db_new(cfg_str("db.conninfo", ""), cfg_str("db.schema", "modelhub"), title + 11);
	if (!c.db)
		_exit(1);
	hubd_heartbeat(&c);
	rc = sl->main(&c);
	db_free(c.db);
	log_info("child msg=\"exiting\" status=%d", rc);
	_exit(rc == 0 ? 0 : 1);
}

static void start_child(struct sup *s, int i)
{
	struct slot *sl = &s->slot[i];
	pid_t pid;

	atomic_store(&hubd_shm->heartbeat_ms[i], mh_mono_ms());
	if (i < HUBD_MAX_RUNNERS && strcmp(sl->role, "runner") == 0)
		atomic_store(&hubd_shm->runner_busy[sl->role_index], 0);
	pid = fork();
	if (pid < 0) {
		log_error("supervisor role=%s msg=\"fork failed\"", sl->role);
		sl->next_start_ms = mh_mono_ms() + SUP_BACKOFF_MIN_MS;
		return;
	}
	if (pid == 0)
		child_run(s, i);
	sl->pid = pid;
	sl->started_ms = mh_mono_ms();
	sl->killed_hung = 0;
	if (s->seg && i < SHM_MAX_CHILDREN)
		shm_child_set(s->seg, i, sl->role, pid, sl->restarts);
	log_info("supervisor role=%s index=%d pid=%d restarts=%u msg=\"child started\"", sl->role,
		 sl->role_index, (int)pid, sl->restarts);
}

static void reap(struct sup *s)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < s->nslots; i++) {
			struct slot *sl = &s->slot[i];
			int64_t lived, delay;
			if (sl->pid != pid)
				continue;
			sl->pid = 0;
			lived = mh_mono_ms() - sl->started_ms;
			if (sig_term)
				break;
			sl->fails = lived >= SUP_STABLE_MS ? 0 : sl->fails + 1;
			delay = SUP_BACKOFF_MIN_MS;
			for (int k = 1; k < sl->fails && delay < SUP_BACKOFF_MAX_MS; k++)
				delay *= 2;
			if (delay > SUP_BACKOFF_MAX_MS)
				delay = SUP_BACKOFF_MAX_MS;
			sl->restarts++;
			sl->next_start_ms = mh_mono_ms() + delay;
			if (WIFSIGNALED(st))
				log_warn_x("supervisor role=%s index=%d pid=%d signal=%d hung=%d restart_in_ms=%lld"
					   " msg=\"child died\"", sl->role, sl->role_index, (int)pid,
					   WTERMSIG(st), sl->killed_hung, (long long)delay);
			else
				log_warn_x("supervisor role=%s index=%d pid=%d status=%d restart_in_ms=%lld"
					   " msg=\"child exited\"", sl->role, sl->role_index, (int)pid,
					   WEXITSTATUS(st), (long long)delay);
			if (strcmp(sl->role, "runner") == 0)
				s->assign_wanted = 1;
			break;
		}
	}
}

static void check_hung(struct sup *s)
{
	int64_t now = mh_mono_ms(), limit = cfg_int("hub.hung_seconds", 60) * 1000;

	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slot[i];
		int64_t hb = atomic_load(&hubd_shm->heartbeat_ms[i]);
		if (sl->pid <= 0 || sl->killed_hung || now - hb < limit)
			continue;
		log_error_x("supervisor role=%s index=%d pid=%d silent_ms=%lld msg=\"child hung, killing\"",
			    sl->role, sl->role_index, (int)sl->pid, (long long)(now - hb));
		sl->killed_hung = 1;
		kill(sl->pid, SIGKILL);
	}
}

static void signal_children(struct sup *s, int sig)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slot[i].pid > 0)
			kill(s->slot[i].pid, sig);
}

/* Compute and publish the model assignment; poke runners whose list changed. */
static void assign(struct sup *s)
{
	struct assign_model *am = NULL;
	unsigned char *out = NULL;
	char (*ids)[HUBD_MODEL_ID_LEN] = NULL;
	int busy[HUBD_MAX_RUNNERS], changed[HUBD_MAX_RUNNERS] = {0}, nm;
	PGresult *r;

	s->last_assign = mh_mono_ms();
	s->assign_wanted = 0;
	s->assign_lazy = 0;
	r = db_work_queue_depths(s->db);
	if (!r)
		return;
	nm = PQntuples(r);
	am = calloc((size_t)nm + 1, sizeof *am);
	ids = calloc((size_t)nm + 1, sizeof *ids);
	out = calloc((size_t)(nm + 1) * (size_t)s->nrunners, 1);
	if (!am || !ids || !out)
		goto out;
	json_object_put(s->queue);
	s->queue = json_object_new_object();
	for (int i = 0; i < nm; i++) {
		snprintf(ids[i], sizeof ids[i], "%s", PQgetvalue(r, i, 0));
		am[i].depth = atoi(PQgetvalue(r, i, 1));
		am[i].cap = atoi(PQgetvalue(r, i, 2));
		if (s->queue)
			json_object_object_add(s->queue, ids[i], json_object_new_int(am[i].depth));
	}
	for (int k = 0; k < s->nrunners; k++)
		busy[k] = atomic_load(&hubd_shm->runner_busy[k]);
	if (assign_compute(am, nm, busy, s->nrunners, HUBD_MAX_ASSIGN, out) > 0)
		log_warn_x("supervisor models=%d runners=%d msg=\"more models than runner slots\"", nm,
			   s->nrunners);
	atomic_fetch_add(&hubd_shm->assign_seq, 1); /* odd: writing */
	atomic_thread_fence(memory_order_release);
	for (int k = 0; k < s->nrunners; k++) {
		struct hubd_runner_models *rm = &hubd_shm->assigned[k];
		struct hubd_runner_models nw;
		nw.n = 0;
		for (int i = 0; i < nm && nw.n < HUBD_MAX_ASSIGN; i++)
			if (out[k * nm + i])
				snprintf(nw.id[nw.n++], HUBD_MODEL_ID_LEN, "%s", ids[i]);
		if (nw.n != rm->n)
			changed[k] = 1;
		for (int i = 0; i < nw.n && !changed[k]; i++)
			if (strcmp(nw.id[i], rm->id[i]) != 0)
				changed[k] = 1;
		if (changed[k]) {
			rm->n = nw.n;
			memcpy(rm->id, nw.id, sizeof nw.id[0] * (size_t)nw.n);
		}
	}
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add(&hubd_shm->assign_seq, 1); /* even: done */
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slot[i];
		if (sl->pid > 0 && strcmp(sl->role, "runner") == 0 && changed[sl->role_index])
			kill(sl->pid, SIGUSR1);
	}
out:
	PQclear(r);
	free(am);
	free(ids);
	free(out);
}

static void beat(struct sup *s)
{
	struct json_object *d = json_object_new_object(), *arr = json_object_new_array();
	int64_t now = mh_mono_ms();

	s->last_beat = now;
	if (!d || !arr) {
		json_object_put(d);
		json_object_put(arr);
		return;
	}
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slot[i];
		struct json_object *c = json_object_new_object();
		if (!c)
			continue;
		json_object_object_add(c, "role", json_object_new_string(sl->role));
		json_object_object_add(c, "index", json_object_new_int(sl->role_index));
		json_object_object_add(c, "pid", json_object_new_int(sl->pid));
		json_object_object_add(c, "restarts", json_object_new_int((int)sl->restarts));
		json_object_object_add(c, "uptime_s",
				       json_object_new_int64(sl->pid > 0 ? (now - sl->started_ms) / 1000 : 0));
		json_object_object_add(c, "heartbeat_age_s",
				       json_object_new_int64((now - atomic_load(&hubd_shm->heartbeat_ms[i])) / 1000));
		json_object_array_add(arr, c);
	}
	json_object_object_add(d, "children", arr);
	if (s->queue)
		json_object_object_add(d, "queued", json_object_get(s->queue));
	{
		struct json_object *as = json_object_new_array();
		for (int k = 0; as && k < s->nrunners; k++) {
			struct hubd_runner_models rm;
			struct json_object *l = json_object_new_array();
			hubd_assigned_models(k, &rm);
			for (int i = 0; l && i < rm.n; i++)
				json_object_array_add(l, json_object_new_string(rm.id[i]));
			json_object_array_add(as, l);
		}
		json_object_object_add(d, "assignment", as);
	}
	json_object_object_add(d, "runners", json_object_new_int(s->nrunners));
	db_hub_server_beat(s->db, s->replica, s->hostname, (int)getpid(), MH_VERSION,
			   json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN), s->starting);
	s->starting = 0;
	json_object_put(d);
}

/* Is the model in some runner's list? Only the supervisor writes the lists. */
static int model_assigned(const struct sup *s, const char *model)
{
	for (int k = 0; k < s->nrunners; k++) {
		const struct hubd_runner_models *rm = &hubd_shm->assigned[k];

		for (int i = 0; i < rm->n; i++)
			if (strcmp(rm->id[i], model) == 0)
				return 1;
	}
	return 0;
}

/* New work for a model nobody runs needs an assignment now; for a model
 * that has a runner only the weights change, which can wait
 * SUP_ASSIGN_LAZY_MS (the queue-depth query counts every queued row, and a
 * burst of submissions sends a NOTIFY each). */
static void drain(struct sup *s)
{
	PGnotify *n;

	while ((n = db_next_notify(s->db)) != NULL) {
		if (strcmp(n->relname, "work_queued") == 0 && n->extra[0] &&
		    model_assigned(s, n->extra))
			s->assign_lazy = 1;
		else
			s->assign_wanted = 1;
		PQfreemem(n);
	}
}

static void reload(struct sup *s)
{
	const char *err = NULL;
	int line = 0;

	if (cfg_load(cfg_path(), &err, &line) < 0)
		log_warn_x("supervisor path=%s line=%d error=\"%s\" msg=\"config reload failed, keeping old\"",
			   cfg_path() ? cfg_path() : "-", line, err ? err : "?");
	else
		log_info("supervisor msg=\"config reloaded\"");
	signal_children(s, SIGHUP);
	s->assign_wanted = 1;
}

static void shutdown_children(struct sup *s)
{
	int64_t until = mh_mono_ms() + cfg_int("hub.shutdown_seconds", 30) * 1000;
	int alive;

	log_info("supervisor msg=\"stopping children\"");
	signal_children(s, SIGTERM);
	for (;;) {
		int st;
		pid_t pid;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			for (int i = 0; i < s->nslots; i++)
				if (s->slot[i].pid == pid)
					s->slot[i].pid = 0;
		alive = 0;
		for (int i = 0; i < s->nslots; i++)
			alive += s->slot[i].pid > 0;
		if (!alive || mh_mono_ms() >= until)
			break;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (alive) {
		log_warn_x("supervisor children=%d msg=\"children did not stop in time, killing\"", alive);
		signal_children(s, SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
	}
}

int supervisor_run(void)
{
	struct sup *s = calloc(1, sizeof *s);
	struct sigaction sa;
	sigset_t block, empty;
	int rc = 0;

	if (!s)
		die("out of memory");
	gethostname(s->hostname, sizeof s->hostname - 1);
	snprintf(s->replica, sizeof s->replica, "%s", cfg_str("hub.replica_id", s->hostname));
	s->nrunners = (int)cfg_int("hub.runners", 2);
	if (s->nrunners < 1 || s->nrunners > HUBD_MAX_RUNNERS)
		die("hub.runners must be 1..%d", HUBD_MAX_RUNNERS);
	hubd_shm = mmap(NULL, sizeof *hubd_shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (hubd_shm == MAP_FAILED)
		die("mmap of the shared area failed");
	memset(hubd_shm, 0, sizeof *hubd_shm);
	hubd_shm->magic = HUBD_SHARED_MAGIC;
	{
		struct shm_dims dims;
		shm_dims_from_config(&dims);
		shm_name_from_config(s->shm_name, sizeof s->shm_name, s->replica);
		s->seg = shm_create(s->shm_name, &dims, s->replica);
		if (!s->seg)
			log_warn_x("supervisor name=%s msg=\"no metrics segment; live metrics disabled\"",
				   s->shm_name);
	}
	for (int k = 0; k < s->nrunners; k++)
		add_slot(s, "runner", k, runner_main);
	add_slot(s, "janitor", 0, janitor_main);
	add_slot(s, "scraper", 0, scraper_main);
	add_slot(s, "monitor", 0, monitor_main);
	if (strcmp(cfg_str("hub.backend", "local"), "kubernetes") == 0)
		add_slot(s, "kubewatch", 0, kubewatch_main);
	s->db = db_new(cfg_str("db.conninfo", ""), cfg_str("db.schema", "modelhub"), "modelhubd supervisor");
	if (!s->db)
		die("out of memory");

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&empty);

	hubd_set_title("modelhubd: supervisor");
	log_info("supervisor replica=%s runners=%d version=%s msg=\"starting\"", s->replica,
		 s->nrunners, MH_VERSION);
	s->starting = 1;
	db_listen(s->db, "work_queued");
	db_listen(s->db, "model_changed");
	beat(s);
	assign(s);
	while (!sig_term) {
		int64_t now = mh_mono_ms();
		struct pollfd pfd;
		struct timespec ts = {0, 0};
		int64_t wait_ms;
		int fd;

		if (sig_chld) {
			sig_chld = 0;
			reap(s);
		}
		if (sig_hup) {
			sig_hup = 0;
			reload(s);
		}
		if (sig_usr1) {
			sig_usr1 = 0;
			s->assign_wanted = 1;
		}
		for (int i = 0; i < s->nslots; i++)
			if (s->slot[i].pid == 0 && now >= s->slot[i].next_start_ms)
				start_child(s, i);
		check_hung(s);
		if (now - s->last_beat >= SUP_BEAT_MS)
			beat(s);
		if ((s->assign_wanted && now - s->last_assign >= SUP_ASSIGN_MIN_MS) ||
		    (s->assign_lazy && now - s->last_assign >= SUP_ASSIGN_LAZY_MS) ||
		    now - s->last_assign >= SUP_ASSIGN_EVERY_MS)
			assign(s);
		/* the queries above may have left notifications in libpq's
		 * buffer, which ppoll() cannot see */
		drain(s);
		fd = db_socket(s->db);
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		wait_ms = SUP_LOOP_MS;
		if (s->assign_wanted || s->assign_lazy) {
			/* leading edge: at once after a quiet spell, else the rest */
			wait_ms = (s->assign_wanted ? SUP_ASSIGN_MIN_MS : SUP_ASSIGN_LAZY_MS) -
				  (mh_mono_ms() - s->last_assign);
			if (wait_ms <= 0)
				continue;
		}
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000L;
		if (ppoll(fd >= 0 ? &pfd : NULL, fd >= 0 ? 1 : 0, &ts, &empty) > 0 || fd < 0)
			drain(s);
	}
	log_info("supervisor msg=\"SIGTERM: shutting down\"");
	shutdown_children(s);
	if (s->seg) {
		shm_close(s->seg);
		shm_unlink_name(s->shm_name);
	}
	db_free(s->db);
	json_object_put(s->queue);
	munmap(hubd_shm, sizeof *hubd_shm);
	free(s);
	log_info("supervisor msg=\"stopped\"");
	return rc;
}
