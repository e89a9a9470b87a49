/*
 * db_inst_metrics.c — what the monitor and the scraper read and write
 * about instances: the rows they watch, the persisted record of an ended
 * instance (instance_metrics + final snapshot), instance_live, the copied
 * log, kubernetes pod events, LOST and OOMKILLED marks.
 *
 * Runs in: modelhubd children monitor and scraper. Called by: monitor.c,
 * scraper.c.
 * Owns: nothing beyond the statements it prepares on the caller's connection.
 * Shared state: reads model_instance (state BUSY for the busy phase), model,
 * work_request.input_count;
 * writes instance_metrics, instance_live, instance_log, instance_event,
 * model_instance (snapshot, LOST, termination_reason OOMKILLED).
 */
#include "db/db_instance.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>

static const char SQL_ACTIVE[] =
	"SELECT id, model_id, backend, coalesce(name, ''), coalesce(node, ''), coalesce(pid, 0), "
	"       state, coalesce(cpu_request_m, 0), coalesce(cpu_limit_m, 0), "
	"       coalesce(memory_request_mib, 0), coalesce(memory_limit_mib, 0), "
	"       (extract(epoch FROM now() - started_at) * 1000)::bigint "
	"FROM model_instance "
	"WHERE state <> 'TERMINATED' AND (replica_id = $1 OR replica_id IS NULL) ORDER BY id";

static const char SQL_TO_PERSIST[] =
	"SELECT mi.id, mi.model_id, mi.termination_reason, coalesce(mi.cpu_request_m, 0), "
	"       coalesce(mi.cpu_limit_m, 0), coalesce(mi.memory_request_mib, 0), "
	"       coalesce(mi.memory_limit_mib, 0), "
	"       (SELECT coalesce(sum(w.input_count), 0) FROM work_request w "
	"         WHERE w.id = ANY (mi.request_ids)), "
	"       il.aggregates, mi.backend, "
	"       (SELECT max(w.input_count) FROM work_request w WHERE w.id = ANY (mi.request_ids)), "
	"       (SELECT max(w.input_count - w.cached_count) FROM work_request w "
	"         WHERE w.id = ANY (mi.request_ids)), "
	"       coalesce(mi.chunk_size, 0), mi.sized_inputs IS NOT NULL "
	"FROM model_instance mi "
	"LEFT JOIN instance_metrics im ON im.instance_id = mi.id "
	"LEFT JOIN instance_live il ON il.instance_id = mi.id "
	"WHERE mi.state = 'TERMINATED' AND im.instance_id IS NULL "
	"  AND (mi.replica_id = $1 OR mi.replica_id IS NULL "
	"       OR coalesce(mi.terminated_at, mi.updated_at) < now() - interval '60 seconds') "
	"  AND coalesce(mi.terminated_at, mi.updated_at) > now() - interval '1 day' "
	"ORDER BY mi.id LIMIT 100";

static const char SQL_INSERT_METRICS[] =
	"INSERT INTO instance_metrics (instance_id, model_id, sample_count, "
	"  cpu_min_m, cpu_max_m, cpu_avg_m, cpu_60_min_m, cpu_60_max_m, cpu_60_avg_m, "
	"  mem_min_mib, mem_max_mib, mem_avg_mib, mem_60_min_mib, mem_60_max_mib, mem_60_avg_mib, "
	"  cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, input_count, "
	"  termination_reason, busy_samples, cpu_busy_m, mem_busy_mib, throttled_pct, "
	"  request_inputs, call_inputs, sized_from_request) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
	"        $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28) "
	"ON CONFLICT (instance_id) DO NOTHING";

static const char SQL_SNAPSHOT[] =
	"UPDATE model_instance SET snapshot = coalesce(snapshot, '{}'::jsonb) || $2::jsonb "
	"WHERE id = $1";

static const char SQL_DROP_LIVE[] = "DELETE FROM instance_live WHERE instance_id = $1";

static const char SQL_LOST[] =
	"UPDATE model_instance SET state = 'TERMINATED', "
	"       termination_reason = coalesce(termination_reason, 'LOST'), "
	"       termination_detail = coalesce(termination_detail, $2), "
	"       terminated_at = now(), updated_at = now() "
	"WHERE id = $1 AND state <> 'TERMINATED' RETURNING termination_reason";

static const char SQL_SLOT_DONE[] =
	"SELECT NOT EXISTS (SELECT 1 FROM model_instance WHERE id = $1 AND state <> 'TERMINATED') "
	"   AND (EXISTS (SELECT 1 FROM instance_metrics WHERE instance_id = $1) "
	"        OR NOT EXISTS (SELECT 1 FROM model_instance WHERE id = $1))";

static const char SQL_LOG[] =
	"INSERT INTO instance_log (instance_id, text, updated_at) VALUES ($1, $2, now()) "
	"ON CONFLICT (instance_id) DO UPDATE SET text = EXCLUDED.text, updated_at = now()";

static const char SQL_INSTANCES[] =
	"SELECT mi.id, mi.pid, coalesce(mi.memory_limit_mib, 0), "
	"       coalesce(m.disable_memory_limit, false), mi.termination_reason IS NOT NULL, "
	"       mi.state IN ('REQUESTED', 'STARTING') "
	"FROM model_instance mi LEFT JOIN model m ON m.id = mi.model_id "
	"WHERE mi.backend = 'local' AND mi.state <> 'TERMINATED' AND mi.pid IS NOT NULL "
	"  AND (mi.replica_id = $1 OR mi.replica_id IS NULL)";

static const char SQL_OOM_MARK[] =
	"UPDATE model_instance SET termination_reason = 'OOMKILLED', termination_detail = $2, "
	"       updated_at = now() "
	"WHERE id = $1 AND state <> 'TERMINATED' AND termination_reason IS NULL";

static const char SQL_OOM_EVENT[] =
	"INSERT INTO instance_event (instance_id, kind, detail) VALUES ($1, 'OOM_KILLED', $2::jsonb)";

static const char SQL_LIVE[] =
	"INSERT INTO instance_live (instance_id, at, aggregates) VALUES ($1, now(), $2::jsonb) "
	"ON CONFLICT (instance_id) DO UPDATE SET at = now(), aggregates = EXCLUDED.aggregates";

/* ---- monitor ---- */

PGresult *db_inst_active_rows(struct db *db, const char *replica_id)
{
	const char *p[1] = {replica_id};

	return db_prep(db, "monitor_active", SQL_ACTIVE, 1, p);
}

PGresult *db_inst_to_persist(struct db *db, const char *replica_id)
{
	const char *p[1] = {replica_id};

	return db_prep(db, "monitor_to_persist", SQL_TO_PERSIST, 1, p);
}

static const char *fmt_num(char *b, size_t n, double v, int present)
{
	if (!present)
		return NULL;
	snprintf(b, n, "%.3f", v);
	return b;
}

/* The six parameters of one aggregate (min, max, avg all-time, then the
 * same for the window) into p[0..5], text in nb[0..5]; NULL where no
 * samples. */
static void fmt_agg(const char **p, char (*nb)[32], const struct db_agg *a)
{
	p[0] = fmt_num(nb[0], 32, a->min, a->count > 0);
	p[1] = fmt_num(nb[1], 32, a->max, a->count > 0);
	p[2] = fmt_num(nb[2], 32, a->avg, a->count > 0);
	p[3] = fmt_num(nb[3], 32, a->w_min, a->w_count > 0);
	p[4] = fmt_num(nb[4], 32, a->w_max, a->w_count > 0);
	p[5] = fmt_num(nb[5], 32, a->w_avg, a->w_count > 0);
}

/* A request or limit: NULL when not set (<= 0). */
static const char *fmt_res(char *b, int v)
{
	return v > 0 ? db_int_text(b, v) : NULL;
}

/* The three statements of db_inst_persist, inside its transaction. */
static int persist_tx(struct db *db, const struct db_inst_final *f)
{
	char nb[15][32], rb[7][DB_INT_LEN];
	const char *ids = DB_INT(f->id);
	const char *p[28] = {ids, f->model_id, DB_INT(f->sample_count)};
	const char *ps[2] = {ids, f->snapshot_json};

	fmt_agg(&p[3], &nb[0], &f->cpu);
	fmt_agg(&p[9], &nb[6], &f->mem);
	p[15] = fmt_res(rb[0], f->cpu_request_m);
	p[16] = fmt_res(rb[1], f->cpu_limit_m);
	p[17] = fmt_res(rb[2], f->memory_request_mib);
	p[18] = fmt_res(rb[3], f->memory_limit_mib);
	p[19] = f->input_count;
	p[20] = f->reason;
	p[21] = f->busy_samples > 0 ? db_int_text(rb[4], f->busy_samples) : NULL;
	p[22] = fmt_num(nb[12], 32, f->cpu_busy_m, isfinite(f->cpu_busy_m));
	p[23] = fmt_num(nb[13], 32, f->mem_busy_mib, isfinite(f->mem_busy_mib));
	p[24] = fmt_num(nb[14], 32, f->throttled_pct, isfinite(f->throttled_pct));
	p[25] = fmt_res(rb[5], f->request_inputs);
	p[26] = fmt_res(rb[6], f->call_inputs);
	p[27] = f->sized ? "true" : "false";
	if (db_cmd(db, SQL_INSERT_METRICS, 28, p) < 0 || db_cmd(db, SQL_SNAPSHOT, 2, ps) < 0 ||
	    db_cmd(db, SQL_DROP_LIVE, 1, p) < 0)
		return -1;
	return 0;
}

int db_inst_persist(struct db *db, const struct db_inst_final *f)
{
	if (db_begin(db) < 0)
		return -1;
	if (persist_tx(db, f) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int db_inst_monitor_lost(struct db *db, int64_t id, const char *why)
{
	const char *ids = DB_INT(id);
	const char *p[2] = {ids, why};
	PGresult *r = db_prep(db, "monitor_lost", SQL_LOST, 2, p);
	int rc = r ? 0 : -1;

	if (r && PQntuples(r) == 1) {
		json_object *o = json_object_new_object();
		char detail[256];

		json_object_object_add(o, "reason", json_object_new_string(PQgetvalue(r, 0, 0)));
		json_object_object_add(o, "by", json_object_new_string("monitor"));
		json_object_object_add(o, "detail", json_object_new_string(why));
		snprintf(detail, sizeof(detail), "%s",
			 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		db_inst_event(db, id, "TERMINATED", detail);
		rc = 1;
	}
	PQclear(r);
	return rc;
}

int db_inst_slot_done(struct db *db, int64_t id)
{
	const char *p[1] = {DB_INT(id)};
	PGresult *r = db_prep(db, "monitor_slot_done", SQL_SLOT_DONE, 1, p);
	int done;

	if (!r)
		return -1;
	done = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return done;
}

int db_inst_log_put(struct db *db, int64_t id, const char *text)
{
	const char *p[2] = {DB_INT(id), text};

	return db_cmd(db, SQL_LOG, 2, p);
}

/* ---- scraper ---- */

PGresult *db_inst_local_rows(struct db *db, const char *replica_id)
{
	const char *p[1] = {replica_id};

	return db_prep(db, "scraper_instances", SQL_INSTANCES, 1, p);
}

PGresult *db_inst_busy_ids(struct db *db)
{
	return db_prep(db, "scraper_busy",
		       "SELECT id FROM model_instance WHERE state = 'BUSY' ORDER BY id", 0, NULL);
}

void db_inst_oom_mark(struct db *db, int64_t id, const char *detail, const char *event_json)
{
	const char *ids = DB_INT(id);
	const char *p2[2] = {ids, detail}, *pe[2] = {ids, event_json};

	db_cmd(db, SQL_OOM_MARK, 2, p2);
	db_cmd(db, SQL_OOM_EVENT, 2, pe);
}

int db_inst_live_put(struct db *db, int64_t id, const char *aggregates_json)
{
	const char *p[2] = {DB_INT(id), aggregates_json};

	return db_done(db_prep(db, "scraper_live", SQL_LIVE, 2, p));
}
