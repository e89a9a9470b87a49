/*
 * dealer.c — the dealer child: deals models to runners and keeps the
 * replica's hub_server row. Everything modelhubd's supervisor used to ask
 * Postgres in its own loop happens here, so a stalled Postgres never delays
 * the reaping and restarting of children.
 *
 * Runs in: modelhubd, one child per replica ("modelhubd: dealer").
 * Called by: supervisor.c (dealer_main after fork).
 * Owns: its Postgres connection (LISTEN work_queued, model_changed), the
 * last queue depths (a json-c object).
 * Shared state: writes hubd_shm->assigned (seqlock, only writer),
 * poke_runners and beat_started; reads runner_busy and the supervisor
 * core's slot table (pids, restarts, heartbeats) for the hub_server row;
 * upserts hub_server every DEALER_BEAT_MS.
 * On crash: the supervisor restarts it (crash policy) and evens an odd
 * assign_seq; runners keep their last lists meanwhile and still claim the
 * models of their own instances.
 *
 * NOTES
 * - A runner that turns idle pokes the supervisor (SIGUSR1), which passes
 *   the poke on to us; a NOTIFY does the same on our own connection. Both
 *   trigger a new assignment: at once after a quiet spell, then at most
 *   every DEALER_ASSIGN_MIN_MS; new work for a model that already has a
 *   runner only every DEALER_ASSIGN_LAZY_MS. Runners whose model list
 *   changed are poked back through the supervisor so they claim at once.
 * - hub_server.pid is the supervisor's pid (our parent), the process that
 *   represents the replica.
 */
#include "db/db_work.h"
#include "hubd/assign.h"
#include "hubd/hubd.h"
#include "hubd/shared.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/sup.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEALER_BEAT_MS 10000          /* hub_server heartbeat */
#define DEALER_ASSIGN_EVERY_MS 30000  /* periodic reassignment */
#define DEALER_ASSIGN_MIN_MS 50       /* debounce of NOTIFY-driven reassignment */
#define DEALER_ASSIGN_LAZY_MS 1000    /* same, new work for a model that has a runner */
#define DEALER_LOOP_MS 1000

struct dealer {
	struct hubd_child *c;
	struct db *db;
	int nrunners;
	char hostname[128];
	int64_t last_beat, last_assign;
	int assign_wanted; /* reassign within DEALER_ASSIGN_MIN_MS */
	int assign_lazy;   /* reassign within DEALER_ASSIGN_LAZY_MS */
	struct json_object *queue; /* {model: queued} from the last assignment */
};

/* The queued models: ids, depth and cap per model; NULL-safe frees. */
struct depths {
	int n;
	struct assign_model *am;
	char (*ids)[HUBD_MODEL_ID_LEN];
};

static int load_depths(struct dealer *d, struct depths *dp)
{
	PGresult *r = db_work_queue_depths(d->db);

	if (!r)
		return -1;
	dp->n = PQntuples(r);
	dp->am = calloc((size_t)dp->n + 1, sizeof *dp->am);
	dp->ids = calloc((size_t)dp->n + 1, sizeof *dp->ids);
	if (!dp->am || !dp->ids) {
		PQclear(r);
		return -1;
	}
	json_object_put(d->queue);
	d->queue = json_object_new_object();
	for (int i = 0; i < dp->n; i++) {
		snprintf(dp->ids[i], sizeof dp->ids[i], "%s", PQgetvalue(r, i, 0));
		dp->am[i].depth = atoi(PQgetvalue(r, i, 1));
		dp->am[i].cap = atoi(PQgetvalue(r, i, 2));
		if (d->queue)
			json_object_object_add(d->queue, dp->ids[i], json_object_new_int(dp->am[i].depth));
	}
	PQclear(r);
	return 0;
}

/* Write runner k's new list if it differs; 1 when it changed. */
static int publish_one(int k, const struct depths *dp, const unsigned char *out)
{
	struct hubd_runner_models *rm = &hubd_shm->assigned[k];
	struct hubd_runner_models nw;
	int changed;

	nw.n = 0;
	for (int i = 0; i < dp->n && nw.n < HUBD_MAX_ASSIGN; i++)
		if (out[k * dp->n + i])
			snprintf(nw.id[nw.n++], HUBD_MODEL_ID_LEN, "%s", dp->ids[i]);
	changed = nw.n != rm->n;
	for (int i = 0; i < nw.n && !changed; i++)
		changed = strcmp(nw.id[i], rm->id[i]) != 0;
	if (changed) {
		rm->n = nw.n;
		memcpy(rm->id, nw.id, sizeof nw.id[0] * (size_t)nw.n);
	}
	return changed;
}

/* Compute and publish the model assignment; poke runners whose list changed. */
static void assign(struct dealer *d)
{
	struct depths dp = {0};
	unsigned char *out = NULL;
	int busy[HUBD_MAX_RUNNERS];
	uint32_t changed = 0;

	d->last_assign = mh_mono_ms();
	d->assign_wanted = 0;
	d->assign_lazy = 0;
	d->nrunners = hubd_shm->nrunners; /* hub.runners may change at a reload */
	if (load_depths(d, &dp) < 0)
		goto out;
	out = calloc((size_t)(dp.n + 1) * (size_t)d->nrunners, 1);
	if (!out)
		goto out;
	for (int k = 0; k < d->nrunners; k++)
		busy[k] = atomic_load(&hubd_shm->runner_busy[k]);
	if (assign_compute(dp.am, dp.n, busy, d->nrunners, HUBD_MAX_ASSIGN, out) > 0)
		log_warn_x("dealer models=%d runners=%d msg=\"more models than runner slots\"", dp.n,
			   d->nrunners);
	atomic_fetch_add(&hubd_shm->assign_seq, 1); /* odd: writing */
	atomic_thread_fence(memory_order_release);
	for (int k = 0; k < d->nrunners; k++)
		if (publish_one(k, &dp, out))
			changed |= 1u << k;
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add(&hubd_shm->assign_seq, 1); /* even: done */
	hubd_poke_runners(changed);
out:
	free(dp.am);
	free(dp.ids);
	free(out);
}

/* [{role, index, pid, restarts, crashes, errors, uptime_s, heartbeat_age_s}] */
static struct json_object *children_json(const struct sup *s)
{
	struct json_object *arr = json_object_new_array();
	int64_t now = mh_mono_ms();

	for (int i = 0; arr && i < sup_nslots(s); i++) {
		const struct sup_pub *p = sup_slot_pub(s, i);
		const struct sup_role *role = sup_slot_role(s, i);
		struct json_object *c = json_object_new_object();
		int pid = atomic_load(&p->pid);
		if (!c || !role)
			continue;
		json_object_object_add(c, "role", json_object_new_string(role->name));
		json_object_object_add(c, "index", json_object_new_int(sup_slot_index(s, i)));
		json_object_object_add(c, "pid", json_object_new_int(pid));
		json_object_object_add(c, "restarts", json_object_new_int((int)atomic_load(&p->restarts)));
		json_object_object_add(c, "crashes", json_object_new_int((int)atomic_load(&p->crashes)));
		json_object_object_add(c, "errors", json_object_new_int((int)atomic_load(&p->errors)));
		json_object_object_add(c, "uptime_s", json_object_new_int64(
			pid > 0 ? (now - atomic_load(&p->started_ms)) / 1000 : 0));
		json_object_object_add(c, "heartbeat_age_s", json_object_new_int64(
			(now - atomic_load(&p->heartbeat_ms)) / 1000));
		json_object_array_add(arr, c);
	}
	return arr;
}

static struct json_object *assignment_json(int nrunners)
{
	struct json_object *as = json_object_new_array();

	for (int k = 0; as && k < nrunners; k++) {
		struct hubd_runner_models rm;
		struct json_object *l = json_object_new_array();
		hubd_assigned_models(k, &rm);
		for (int i = 0; l && i < rm.n; i++)
			json_object_array_add(l, json_object_new_string(rm.id[i]));
		json_object_array_add(as, l);
	}
	return as;
}

static void beat(struct dealer *d)
{
	struct json_object *o = json_object_new_object();
	int starting;

	d->last_beat = mh_mono_ms();
	if (!o)
		return;
	json_object_object_add(o, "children", children_json(d->c->sup));
	if (d->queue)
		json_object_object_add(o, "queued", json_object_get(d->queue));
	json_object_object_add(o, "assignment", assignment_json(d->nrunners));
	json_object_object_add(o, "runners", json_object_new_int(d->nrunners));
	json_object_object_add(o, "leader", json_object_new_boolean(sup_is_leader(d->c->sup)));
	/* started_at moves once per supervisor, not per dealer restart */
	starting = !atomic_exchange(&hubd_shm->beat_started, 1);
	db_hub_server_beat(d->db, d->c->replica_id, d->hostname, (int)getppid(), MH_VERSION,
			   json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), starting);
	json_object_put(o);
}

/* Is the model in some runner's list? Only we write the lists. */
static int model_assigned(const struct dealer *d, const char *model)
{
	for (int k = 0; k < d->nrunners; k++) {
		const struct hubd_runner_models *rm = &hubd_shm->assigned[k];

		for (int i = 0; i < rm->n; i++)
			if (strcmp(rm->id[i], model) == 0)
				return 1;
	}
	return 0;
}

/* New work for a model nobody runs needs an assignment now; for a model
 * that has a runner only the weights change, which can wait
 * DEALER_ASSIGN_LAZY_MS (the queue-depth query counts every queued row, and
 * a burst of submissions sends a NOTIFY each). */
static void drain(struct dealer *d)
{
	PGnotify *n;

	while ((n = db_next_notify(d->db)) != NULL) {
		if (strcmp(n->relname, "work_queued") == 0 && n->extra[0] &&
		    model_assigned(d, n->extra))
			d->assign_lazy = 1;
		else
			d->assign_wanted = 1;
		PQfreemem(n);
	}
}

/* How long to sleep: the rest of the debounce when an assignment is
 * wanted (leading edge: at once after a quiet spell), else the loop tick. */
static int sleep_ms(const struct dealer *d)
{
	int64_t since = mh_mono_ms() - d->last_assign, ms = DEALER_LOOP_MS;

	if (d->assign_wanted || d->assign_lazy)
		ms = (d->assign_wanted ? DEALER_ASSIGN_MIN_MS : DEALER_ASSIGN_LAZY_MS) - since;
	return ms < 0 ? 0 : (int)ms;
}

static void step(struct dealer *d)
{
	int64_t now = mh_mono_ms();

	if (now - d->last_beat >= DEALER_BEAT_MS)
		beat(d);
	if ((d->assign_wanted && now - d->last_assign >= DEALER_ASSIGN_MIN_MS) ||
	    (d->assign_lazy && now - d->last_assign >= DEALER_ASSIGN_LAZY_MS) ||
	    now - d->last_assign >= DEALER_ASSIGN_EVERY_MS)
		assign(d);
	/* the queries above may have left notifications in libpq's buffer,
	 * which poll() cannot see */
	drain(d);
}

int dealer_main(struct hubd_child *c)
{
	struct dealer d;
	int ms, w;

	memset(&d, 0, sizeof d);
	d.c = c;
	d.db = c->db;
	d.nrunners = hubd_shm->nrunners;
	gethostname(d.hostname, sizeof d.hostname - 1);
	log_info("dealer runners=%d msg=\"started\"", d.nrunners);
	db_listen(d.db, "work_queued");
	db_listen(d.db, "model_changed");
	beat(&d);
	assign(&d);
	while (!hubd_should_stop()) {
		if (hubd_take_reload())
			d.assign_wanted = 1;
		step(&d);
		ms = sleep_ms(&d);
		if (ms == 0)
			continue;
		w = hubd_wait(c, db_socket(d.db), ms);
		if (w == 1)
			drain(&d);
		else if (w == 2)
			d.assign_wanted = 1; /* a runner turned idle */
	}
	log_info("dealer msg=\"stopping\"");
	json_object_put(d.queue);
	return 0;
}
