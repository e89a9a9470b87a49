/*
 * janitor.c — the janitor child: leases, retention, expired sessions,
 * requests of disabled models, instances of dead replicas.
 *
 * Runs in: modelhubd, one child per replica ("modelhubd: janitor"); only
 * the replica holding the Postgres advisory lock JANITOR_LOCK_KEY does the
 * work, the others wait and retry (singleton across replicas).
 * Called by: supervisor.c (janitor_main after fork).
 * Owns: its Postgres connection, which holds the session-level advisory
 * lock while leader (a lost connection loses the lock; it is taken again).
 * It is the elector role (supervisor.c): it publishes leadership with
 * hubd_set_leader(), and the supervisor runs leader-only roles meanwhile.
 * Shared state: work_request (requeue/fail/delete), model_instance (old
 * rows deleted, rows of dead replicas marked LOST), session (expired rows
 * deleted; login_attempt and rate_limit through db_session_purge), job_run
 * (time of the last retention pass), recommendation (the nightly run: the
 * janitor checks every JANITOR_NIGHTLY_CHECK_MS, claims the day's run in
 * job_run, then per enabled model loads, computes and stores).
 *
 * Timers: leases and disabled models every JANITOR_TICK_MS; retention at
 * start and every JANITOR_RETENTION_MS, in batches of JANITOR_BATCH rows
 * with a heartbeat between batches so a big backlog never looks hung.
 */
#include "db/db_recommend.h"
#include "db/db_lead.h"
#include "db/db_session.h"
#include "db/db_work.h"
#include "hubd/hubd.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "recommend/rec_json.h"

#include <stdlib.h>
#include <string.h>

#define JANITOR_LOCK_KEY 7236051898443571022LL /* arbitrary, "modelhub janitor" */
#define JANITOR_TICK_MS 2000
#define JANITOR_LEADER_RETRY_MS 5000
#define JANITOR_RETENTION_MS (3600 * 1000)
#define JANITOR_BATCH 1000
#define JANITOR_REPLICA_STALE_S 30 /* 3 missed hub_server beats (every 10 s) */
#define JANITOR_NIGHTLY_CHECK_MS 60000 /* is the nightly recommendation run due? */
#define JANITOR_AUTH_KEEP_S 86400      /* ended sessions, login attempts, rate windows */

static int try_lead(struct db *db) { return db_lead_try(db, JANITOR_LOCK_KEY); }

/* Still leader? A reconnect drops the session lock; holding it again is
 * idempotent (the lock count just grows by one on this session). */
static int still_lead(struct db *db) { return db_lead_still(db, JANITOR_LOCK_KEY); }

static void retention(struct hubd_child *c, struct db *db)
{
	int days = (int)cfg_int("hub.retention_days", 7), n, total = 0, inst = 0;

	if (days < 1)
		days = 1;
	do {
		n = db_janitor_retention(db, days, JANITOR_BATCH);
		if (n > 0)
			total += n;
		hubd_heartbeat(c);
	} while (n == JANITOR_BATCH && !hubd_should_stop());
	do {
		n = db_janitor_old_instances(db, days, JANITOR_BATCH);
		if (n > 0)
			inst += n;
		hubd_heartbeat(c);
	} while (n == JANITOR_BATCH && !hubd_should_stop());
	for (int k = 0; k < 100 && !hubd_should_stop(); k++) {
		long gone = 0;
		if (db_session_purge(db, JANITOR_AUTH_KEEP_S, JANITOR_BATCH, &gone) < 0 || gone == 0)
			break;
		hubd_heartbeat(c);
	}
	n = db_janitor_sessions(db);
	db_janitor_retention_done(db);
	log_info("janitor days=%d requests=%d instances=%d sessions=%d msg=\"retention pass\"", days,
		 total, inst, n > 0 ? n : 0);
}

static void tick(struct db *db)
{
	int n;

	n = db_janitor_requeue(db, (int)cfg_int("hub.max_attempts", 3));
	if (n > 0)
		log_info("janitor requests=%d msg=\"expired leases handled\"", n);
	n = db_janitor_disabled(db);
	if (n > 0)
		log_info("janitor requests=%d msg=\"queued requests of disabled models failed\"", n);
	n = db_janitor_dead_replicas(db, (int)cfg_int("hub.replica_stale_seconds",
						     JANITOR_REPLICA_STALE_S));
	if (n > 0)
		log_info("janitor instances=%d msg=\"instances of dead replicas marked LOST\"", n);
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
static int nightly(struct db *db)
{
	struct rec_config cfg;
	PGresult *models;
	int stored = 0, due = db_recommend_nightly_claim(db, cfg_str("recommend.nightly_at", "03:00"));

	if (due <= 0)
		return due;
	models = db_recommend_models(db, 1);
	if (!models)
		return -1;
	rec_config_read(&cfg);
	for (int i = 0; i < PQntuples(models); i++)
		if (nightly_model(db, &cfg, PQgetvalue(models, i, 0)) == 0)
			stored++;
	PQclear(models);
	return stored;
}

int janitor_main(struct hubd_child *c)
{
	struct db *db = c->db;
	int leader = 0;
	int64_t last_retention = 0, last_check = 0, last_nightly = 0;

	log_info("janitor msg=\"started\"");
	while (!hubd_should_stop()) {
		int64_t now = mh_mono_ms();
		hubd_heartbeat(c);
		hubd_take_reload();
		if (!leader) {
			leader = try_lead(db);
			if (!leader) {
				hubd_wait(c, -1, JANITOR_LEADER_RETRY_MS);
				continue;
			}
			log_info("janitor msg=\"leader: holding the janitor lock\"");
			hubd_set_leader(1);
			last_retention = 0;
			last_check = now;
		} else if (now - last_check >= 30000 && (last_check = now) && !still_lead(db)) {
			log_warn_x("janitor msg=\"lost the janitor lock (reconnected?)\"");
			hubd_set_leader(0);
			leader = 0;
			continue;
		}
		if (last_retention == 0 || now - last_retention >= JANITOR_RETENTION_MS) {
			retention(c, db);
			last_retention = now;
		}
		tick(db);
		if (now - last_nightly >= JANITOR_NIGHTLY_CHECK_MS) {
			int stored = nightly(db);
			last_nightly = now;
			if (stored > 0)
				log_info("janitor models=%d msg=\"nightly recommendations stored\"", stored);
			hubd_heartbeat(c);
		}
		hubd_wait(c, -1, JANITOR_TICK_MS);
	}
	log_info("janitor msg=\"stopping\"");
	return 0;
}
