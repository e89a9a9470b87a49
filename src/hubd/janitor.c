/*
 * janitor.c — the janitor child: leases, retention, expired sessions,
 * requests of disabled models, instances of dead replicas.
 *
 * Runs in: modelhubd, one child per replica ("modelhubd: janitor"); only
 * the replica holding the hub lease (leader_lease row 'hub', sql/012,
 * db_lead.h) does the work, the others retry every JANITOR_LEADER_RETRY_MS
 * (singleton across replicas).
 * Called by: supervisor.c (janitor_main after fork).
 * Owns: its Postgres connection and the lease while leader: renewed every
 * tick (and between retention batches) for hub.leader_lease_seconds, given
 * up on a clean stop. It is the elector role (supervisor.c): it publishes
 * leadership and the lease's fencing token with hubd_set_leader(), and the
 * supervisor runs leader-only roles meanwhile. Every sweep passes the
 * token (DB_LEASE_FENCE): a leader frozen past its lease changes nothing
 * on waking, and its first renewal fails, so it steps down.
 * Shared state: work_request (requeue/fail/delete), model_instance (old
 * rows deleted, rows of dead replicas marked LOST), session (expired rows
 * deleted; login_attempt and rate_limit through db_session_purge), job_run
 * (time of the last retention pass), request_stats_pending folded into
 * request_stats_day every tick (sql/016), recommendation (the nightly run: the
 * janitor checks every JANITOR_NIGHTLY_CHECK_MS, claims the day's run in
 * job_run, then per enabled model loads, computes and stores).
 *
 * Timers: leases and disabled models every JANITOR_TICK_MS; retention at
 * start and every JANITOR_RETENTION_MS, in batches of JANITOR_BATCH rows
 * with a heartbeat between batches so a big backlog never looks hung.
 */
#include "autoscale/as_config.h"
#include "db/db_recommend.h"
#include "db/db_lead.h"
#include "db/db_session.h"
#include "db/db_stats.h"
#include "db/db_work.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "metrics/view.h"
#include "recommend/rec_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JANITOR_TICK_MS 2000
#define JANITOR_LEADER_RETRY_MS 2000
#define JANITOR_LEASE_S 15 /* hub.leader_lease_seconds: takeover <= lease + retry */
#define JANITOR_RETENTION_MS (3600 * 1000)
#define JANITOR_BATCH 1000
#define JANITOR_REPLICA_STALE_S 30 /* 3 missed hub_server beats (every 10 s) */
#define JANITOR_NIGHTLY_CHECK_MS 60000 /* is the nightly recommendation run due? */
#define JANITOR_AUTH_KEEP_S 86400      /* ended sessions, login attempts, rate windows */
#define JANITOR_STATS_BATCH 20000      /* finished requests folded into the stats per tick */

struct jan {
	struct hubd_child *c;
	struct db *db;
	char holder[160]; /* "<replica_id>:<supervisor pid>" */
	int64_t token;    /* of the lease held, 0 when not leading */
	int64_t until_ms; /* the lease's end as of its last renewal (mono) */
};

static void step_down(struct jan *j, const char *why)
{
	log_warn_x("janitor token=%lld msg=\"leadership lost: %s\"", (long long)j->token, why);
	hubd_set_leader(0, 0, 0);
	j->token = 0;
}

/* Take or renew the hub lease: 1 leading with j->token, 0 not. A lease
 * that changed hands or lapsed (new token) means stepping down first; a
 * database error keeps leadership only until the lease would have run out. */
static int lead(struct jan *j)
{
	int ttl = (int)cfg_int("hub.leader_lease_seconds", JANITOR_LEASE_S);
	int64_t sent = mh_mono_ms(), t = 0;
	int r = db_lease_hold(j->db, DB_LEASE_HUB, j->holder, ttl < 3 ? 3 : ttl, &t);

	if (r < 0) {
		if (j->token && sent >= j->until_ms)
			step_down(j, "lease not renewed (database)");
		return j->token != 0;
	}
	if (j->token && (r == 0 || t != j->token))
		step_down(j, r == 0 ? "another replica holds the lease" : "lease had lapsed");
	else if (r == 1) {
		if (!j->token)
			log_info("janitor token=%lld msg=\"leader: holding the hub lease\"", (long long)t);
		j->token = t;
		j->until_ms = sent + (int64_t)(ttl < 3 ? 3 : ttl) * 1000;
		hubd_set_leader(1, t, j->until_ms);
	}
	return j->token != 0;
}

/* Persisted instance metrics: their own retention (recommend windows
 * reach further back than requests), recommend.metrics_retention_days. */
static void metrics_retention(struct jan *j)
{
	int days = (int)cfg_int("recommend.metrics_retention_days", 90), n;

	if (days < 1)
		days = 1;
	do {
		n = db_janitor_old_metrics(j->db, j->token, days, JANITOR_BATCH);
		hubd_heartbeat(j->c);
	} while (n == JANITOR_BATCH && !hubd_should_stop() && lead(j));
}

static void retention(struct jan *j)
{
	struct hubd_child *c = j->c;
	struct db *db = j->db;
	int days = (int)cfg_int("hub.retention_days", 7), n, total = 0, inst = 0;

	if (days < 1)
		days = 1;
	do {
		n = db_janitor_retention(db, j->token, days, JANITOR_BATCH);
		if (n > 0)
			total += n;
		hubd_heartbeat(c);
	} while (n == JANITOR_BATCH && !hubd_should_stop() && lead(j));
	do {
		n = db_janitor_old_instances(db, j->token, days, JANITOR_BATCH);
		if (n > 0)
			inst += n;
		hubd_heartbeat(c);
	} while (n == JANITOR_BATCH && !hubd_should_stop() && lead(j));
	metrics_retention(j);
	for (int k = 0; k < 100 && !hubd_should_stop() && lead(j); k++) {
		long gone = 0;
		if (db_session_purge(db, JANITOR_AUTH_KEEP_S, JANITOR_BATCH, &gone) < 0 || gone == 0)
			break;
		hubd_heartbeat(c);
	}
	n = db_janitor_sessions(db, j->token);
	db_janitor_retention_done(db);
	log_info("janitor days=%d requests=%d instances=%d sessions=%d msg=\"retention pass\"", days,
		 total, inst, n > 0 ? n : 0);
}

static void tick(struct jan *j)
{
	struct db *db = j->db;
	int n;

	n = db_janitor_requeue(db, j->token, (int)cfg_int("hub.max_attempts", 3));
	if (n > 0)
		log_info("janitor requests=%d msg=\"expired leases handled\"", n);
	n = db_janitor_disabled(db, j->token);
	if (n > 0)
		log_info("janitor requests=%d msg=\"queued requests of disabled models failed\"", n);
	n = db_janitor_dead_replicas(db, j->token, j->c->replica_id,
				     (int)cfg_int("hub.replica_stale_seconds", JANITOR_REPLICA_STALE_S));
	if (n > 0)
		log_info("janitor instances=%d msg=\"instances of dead replicas marked LOST\"", n);
	/* readers add what is still pending: this only keeps their work small */
	if (db_stats_fold(db, JANITOR_STATS_BATCH) < 0)
		log_warn_x("janitor msg=\"stats fold failed\"");
}

/* One model's nightly recommendation: load, compute, store. 0 / -1. */
static int nightly_model(struct db *db, const struct rec_config *cfg, const char *model)
{
	struct rec_instance *in;
	struct rec_report rep;
	json_object *detail;
	int n, rc = -1;

	if (db_recommend_load(db, model, NULL, NULL, REC_DEFAULT_LIMIT, &rep, &in, &n) == DB_REC_OK) {
		rec_report_compute(cfg, in, n, &rep);
		detail = rec_report_json(&rep);
		if (detail)
			rc = db_recommend_store(db, &rep,
						json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN),
						NULL);
		json_object_put(detail);
	}
	free(in);
	return rc;
}

/* The nightly recommendations, once a day after recommend.nightly_at (UTC
 * "HH:MM"; the first run ever at once): one cheap claim statement when not
 * due. Returns the number of models stored, 0 when not due, -1 on error. */
static int nightly(struct db *db, int64_t token, struct metrics_seg *seg)
{
	struct rec_node seen[64];
	struct rec_config cfg;
	PGresult *models;
	int stored = 0, due = db_recommend_nightly_claim(db, token,
							  cfg_str("recommend.nightly_at", "03:00"));

	if (due <= 0)
		return due;
	models = db_recommend_models(db, 1);
	if (!models)
		return -1;
	rec_config_read(&cfg);
	as_config_rec_caps(&cfg, seen, view_node_caps(seg, seen, 64));
	for (int i = 0; i < PQntuples(models); i++)
		if (nightly_model(db, &cfg, PQgetvalue(models, i, 0)) == 0)
			stored++;
	PQclear(models);
	return stored;
}

/* The leader's round: retention when due, the sweeps, the nightly check. */
static void leader_round(struct jan *j, int64_t now, int64_t *last_retention,
			 int64_t *last_nightly)
{
	if (*last_retention == 0 || now - *last_retention >= JANITOR_RETENTION_MS) {
		retention(j);
		*last_retention = now;
	}
	if (!j->token)
		return;
	tick(j);
	if (now - *last_nightly >= JANITOR_NIGHTLY_CHECK_MS) {
		int stored = nightly(j->db, j->token, j->c->seg);
		*last_nightly = now;
		if (stored > 0)
			log_info("janitor models=%d msg=\"nightly recommendations stored\"", stored);
		hubd_heartbeat(j->c);
	}
}

int janitor_main(struct hubd_child *c)
{
	struct jan j = {.c = c, .db = c->db};
	int64_t last_retention = 0, last_nightly = 0;

	/* the supervisor's pid: a janitor restarted in the same replica renews
	 * the lease it held (same token); a restarted replica waits it out */
	snprintf(j.holder, sizeof j.holder, "%s:%ld", c->replica_id ? c->replica_id : "?",
		 (long)getppid());
	log_info("janitor holder=%s msg=\"started\"", j.holder);
	while (!hubd_should_stop()) {
		int was = j.token != 0;
		hubd_heartbeat(c);
		hubd_take_reload();
		/* first thing after any sleep (or a SIGSTOP): renew, or step down */
		if (!lead(&j)) {
			hubd_wait(c, -1, JANITOR_LEADER_RETRY_MS);
			continue;
		}
		if (!was)
			last_retention = 0;
		leader_round(&j, mh_mono_ms(), &last_retention, &last_nightly);
		hubd_wait(c, -1, JANITOR_TICK_MS);
	}
	if (j.token) {
		hubd_set_leader(0, 0, 0);
		db_lease_drop(j.db, DB_LEASE_HUB, j.holder, j.token);
	}
	log_info("janitor msg=\"stopping\"");
	return 0;
}
