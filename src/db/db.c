/*
 * db.c — implementation of db.h.
 *
 * Runs in: every process that talks to Postgres; one struct db per process.
 * Owns: PGconn, prepared-name list, channel list.
 * The search_path is set with set_config() and a bound parameter, so the
 * schema name never becomes SQL text (the upstream bug was a driver that
 * ignored the schema option).
 * Every connection gets TCP keepalives and tcp_user_timeout (a peer that
 * vanished, or a partition, is noticed in about 10 s instead of the
 * kernel's two hours) and statement_timeout / lock_timeout (db_set_timeouts;
 * DB_STATEMENT_MS / DB_LOCK_MS by default): the db.conninfo string is
 * applied after these defaults, so it can override any of them.
 *
 * With hooks (the runner's event loop), a transaction's BEGIN is not a
 * round trip of its own: db_begin only takes the connection, and the
 * transaction's first statement goes out behind BEGIN in one libpq
 * pipeline (exec_begin). db_round_trips counts the waits for the server.
 */
#include "db/db.h"
#include "lib/log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_MAX_NAMES 256
#define DB_MAX_CHANNELS 8
#define DB_MAX_QUEUED 4096
#define DB_STATEMENT_MS 30000
#define DB_LOCK_MS 10000

struct db {
	PGconn *conn;
	char *conninfo;
	char *schema;
	char *app_name;
	int statement_ms, lock_ms; /* 0: no limit */
	char *prepared[DB_MAX_NAMES];
	int nprepared;
	char *channels[DB_MAX_CHANNELS];
	int nchannels;
	unsigned long seen[DB_MAX_CHANNELS]; /* notifications received per channel */
	PGnotify **queue;                   /* received, not yet taken by db_next_notify */
	int nqueue, capqueue;
	char sqlstate[6];
	char errmsg[512];
	unsigned long reconnects;
	int ever_connected;
	/* db_send: statement in flight (name kept for the error log), or its
	 * result already read by another statement and kept for db_collect */
	int in_flight, flight_lost;
	const char *flight_name;
	PGresult *parked;
	struct db_hooks hooks; /* hooks.wait NULL: blocking libpq */
	int begin_pending;     /* db_begin with hooks: BEGIN goes with the next statement */
	unsigned long trips;   /* statements sent and waited for (db_round_trips) */
};

struct db *db_new(const char *conninfo, const char *schema, const char *app_name)
{
	struct db *db = calloc(1, sizeof *db);

	if (!db)
		return NULL;
	db->conninfo = strdup(conninfo ? conninfo : "");
	db->schema = strdup(schema ? schema : "modelhub");
	db->app_name = strdup(app_name ? app_name : "modelhub");
	if (!db->conninfo || !db->schema || !db->app_name) {
		db_free(db);
		return NULL;
	}
	db->statement_ms = DB_STATEMENT_MS;
	db->lock_ms = DB_LOCK_MS;
	return db;
}

void db_set_timeouts(struct db *db, int statement_ms, int lock_ms)
{
	db->statement_ms = statement_ms > 0 ? statement_ms : 0;
	db->lock_ms = lock_ms > 0 ? lock_ms : 0;
}

/* PQconnectdbParams: liveness defaults first, then db.conninfo expanded
 * in place of dbname, so its own settings win (later keywords override). */
static PGconn *connect_params(struct db *db)
{
	char opts[128];
	const char *k[] = {"keepalives", "keepalives_idle", "keepalives_interval",
			   "keepalives_count", "tcp_user_timeout", "options", "dbname", NULL};
	const char *v[] = {"1", "5", "2", "3", "10000", opts, db->conninfo, NULL};

	snprintf(opts, sizeof opts, "-c statement_timeout=%d -c lock_timeout=%d",
		 db->statement_ms, db->lock_ms);
	return PQconnectdbParams(k, v, 1);
}

static void forget_prepared(struct db *db)
{
	for (int i = 0; i < db->nprepared; i++)
		free(db->prepared[i]);
	db->nprepared = 0;
}

void db_free(struct db *db)
{
	if (!db)
		return;
	PQclear(db->parked);
	if (db->conn)
		PQfinish(db->conn);
	forget_prepared(db);
	for (int i = 0; i < db->nchannels; i++)
		free(db->channels[i]);
	for (int i = 0; i < db->nqueue; i++)
		PQfreemem(db->queue[i]);
	free(db->queue);
	free(db->conninfo);
	free(db->schema);
	free(db->app_name);
	free(db);
}

static void set_err(struct db *db, const char *state, const char *msg)
{
	snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
	snprintf(db->errmsg, sizeof db->errmsg, "%s", msg ? msg : "");
	/* libpq messages end with a newline; keep log lines to one line */
	for (char *p = db->errmsg; *p; p++)
		if (*p == '\n' || *p == '"')
			*p = *p == '"' ? '\'' : ' ';
}

static int session_setup(struct db *db)
{
	const char *p[2] = {db->schema, db->app_name};
	PGresult *r = PQexecParams(db->conn,
				   "SELECT set_config('search_path', quote_ident($1), false),"
				   " set_config('application_name', $2, false),"
				   " set_config('TimeZone', 'UTC', false)",
				   2, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok) {
		set_err(db, PQresultErrorField(r, PG_DIAG_SQLSTATE), PQerrorMessage(db->conn));
		log_error_x("db msg=\"session setup failed\" error=\"%s\"", db->errmsg);
	}
	PQclear(r);
	for (int i = 0; ok && i < db->nchannels; i++) {
		char *id = PQescapeIdentifier(db->conn, db->channels[i], strlen(db->channels[i]));
		char sql[160];
		if (!id)
			return -1;
		/* LISTEN takes an identifier, which cannot be a bind
		 * parameter; the channel names are the daemons' own
		 * constants, escaped all the same */
		snprintf(sql, sizeof sql, "LISTEN %s", id);
		PQfreemem(id);
		r = PQexec(db->conn, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	return ok ? 0 : -1;
}

/* Server notices (e.g. "terminating connection due to immediate shutdown")
 * go to the log as one line instead of raw to stderr. */
static void notice_to_log(void *arg, const char *msg)
{
	char line[512];
	size_t n;

	(void)arg;
	snprintf(line, sizeof line, "%s", msg);
	for (n = 0; line[n]; n++)
		if (line[n] == '\n' || line[n] == '"')
			line[n] = line[n] == '"' ? '\'' : ' ';
	while (n > 0 && line[n - 1] == ' ')
		line[--n] = '\0';
	log_warn_x("db msg=\"server notice\" notice=\"%s\"", line);
}

int db_ensure(struct db *db)
{
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	if (db->conn) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	db->flight_lost |= db->in_flight; /* went with the connection */
	db->in_flight = 0;
	forget_prepared(db);
	db->conn = connect_params(db);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		set_err(db, "08006", PQerrorMessage(db->conn));
		log_error_x("db msg=\"connect failed\" error=\"%s\"", db->errmsg);
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
	if (session_setup(db) < 0) {
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	if (db->hooks.wait)
		PQsetnonblocking(db->conn, 1);
	if (db->ever_connected) {
		db->reconnects++;
		log_info("db msg=\"reconnected\" reconnects=%lu", db->reconnects);
	}
	db->ever_connected = 1;
	return 0;
}

PGconn *db_conn(struct db *db) { return db->conn; }
const char *db_schema(const struct db *db) { return db->schema; }

static int is_prepared(struct db *db, const char *name)
{
	for (int i = 0; i < db->nprepared; i++)
		if (strcmp(db->prepared[i], name) == 0)
			return 1;
	return 0;
}

void db_set_hooks(struct db *db, const struct db_hooks *h)
{
	memset(&db->hooks, 0, sizeof db->hooks);
	if (h)
		db->hooks = *h;
	if (db->conn)
		PQsetnonblocking(db->conn, db->hooks.wait != NULL);
}

static void hook_acquire(struct db *db)
{
	if (db->hooks.acquire)
		db->hooks.acquire(db->hooks.ctx);
}

/* The connection is free for another task once no transaction is open and
 * no statement is in flight or parked. */
static void hook_release(struct db *db)
{
	if (!db->hooks.release || db->in_flight || db->parked || db->begin_pending)
		return;
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK ||
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		db->hooks.release(db->hooks.ctx);
}

/* Hooks set: wait (letting other tasks run) for the statement just sent
 * and return its last result, as PQexec would. */
static PGresult *wait_result(struct db *db)
{
	PGresult *r, *last = NULL;
	int fd = PQsocket(db->conn);

	while (PQflush(db->conn) == 1) {
		db->hooks.wait(db->hooks.ctx, fd, POLLIN | POLLOUT);
		if (!PQconsumeInput(db->conn))
			break;
	}
	for (;;) {
		while (PQisBusy(db->conn) && PQstatus(db->conn) == CONNECTION_OK) {
			db->hooks.wait(db->hooks.ctx, fd, POLLIN);
			if (!PQconsumeInput(db->conn))
				break;
		}
		r = PQgetResult(db->conn);
		if (!r)
			break;
		PQclear(last);
		last = r;
		if (PQstatus(db->conn) == CONNECTION_BAD)
			break;
	}
	return last;
}

/* Hooks set: the next result of a pipeline, waiting (letting other tasks
 * run) while libpq has none complete; NULL between queries. */
static PGresult *next_result(struct db *db)
{
	int fd = PQsocket(db->conn);

	while (PQisBusy(db->conn) && PQstatus(db->conn) == CONNECTION_OK) {
		db->hooks.wait(db->hooks.ctx, fd, POLLIN);
		if (!PQconsumeInput(db->conn))
			break;
	}
	return PQgetResult(db->conn);
}

/* One query's result in a pipeline (read up to its NULL). */
static PGresult *pipeline_result(struct db *db)
{
	PGresult *r, *last = NULL;

	while ((r = next_result(db)) != NULL) {
		PQclear(last);
		last = r;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC || PQstatus(db->conn) == CONNECTION_BAD)
			break;
	}
	return last;
}

/* BEGIN and the statement in one pipeline, one round trip (hooks set, the
 * statement prepared already when named). The statement's result, or
 * BEGIN's when BEGIN failed; begin_pending stays set when the connection
 * was lost, so a retry on a new one begins again. */
static PGresult *exec_begin(struct db *db, const char *name, const char *sql, int n,
			    const char *const *params)
{
	PGresult *beg = NULL, *r = NULL, *sync;
	int fd = PQsocket(db->conn), ok;

	if (!PQenterPipelineMode(db->conn))
		return NULL;
	ok = PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
	     (name ? PQsendQueryPrepared(db->conn, name, n, params, NULL, NULL, 0) :
		     PQsendQueryParams(db->conn, sql, n, NULL, params, NULL, NULL, 0)) &&
	     PQpipelineSync(db->conn);
	while (ok && PQflush(db->conn) == 1) {
		db->hooks.wait(db->hooks.ctx, fd, POLLIN | POLLOUT);
		if (!PQconsumeInput(db->conn))
			break;
	}
	if (ok) {
		beg = pipeline_result(db);
		r = pipeline_result(db);
		sync = PQstatus(db->conn) == CONNECTION_OK ? pipeline_result(db) : NULL;
		PQclear(sync);
	}
	PQexitPipelineMode(db->conn);
	if (PQstatus(db->conn) == CONNECTION_OK && PQresultStatus(beg) == PGRES_COMMAND_OK)
		db->begin_pending = 0; /* the transaction is open, whatever the statement did */
	if (beg && PQresultStatus(beg) != PGRES_COMMAND_OK) {
		PQclear(r);
		return beg;
	}
	PQclear(beg);
	return r;
}

static PGresult *prepare_now(struct db *db, const char *name, const char *sql, int n)
{
	db->trips++;
	if (!db->hooks.wait)
		return PQprepare(db->conn, name, sql, n, NULL);
	return PQsendPrepare(db->conn, name, sql, n, NULL) ? wait_result(db) : NULL;
}

static PGresult *exec_now(struct db *db, const char *name, const char *sql, int n,
			  const char *const *params)
{
	int ok;

	db->trips++;
	if (db->begin_pending && db->hooks.wait)
		return exec_begin(db, name, sql, n, params);
	if (!db->hooks.wait)
		return name ? PQexecPrepared(db->conn, name, n, params, NULL, NULL, 0) :
			      PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
	ok = name ? PQsendQueryPrepared(db->conn, name, n, params, NULL, NULL, 0) :
		    PQsendQueryParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
	return ok ? wait_result(db) : NULL;
}

static PGresult *run_once(struct db *db, const char *name, const char *sql, int n,
			  const char *const *params)
{
	if (name && !is_prepared(db, name)) {
		PGresult *r = prepare_now(db, name, sql, n);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return r;
		PQclear(r);
		if (db->nprepared < DB_MAX_NAMES) {
			db->prepared[db->nprepared] = strdup(name);
			if (db->prepared[db->nprepared])
				db->nprepared++;
		}
		if (!is_prepared(db, name)) /* table full: fall back to unnamed */
			return exec_now(db, NULL, sql, n, params);
	}
	return exec_now(db, name, sql, n, params);
}

/* A failed statement lost the connection when libpq says so, or when the
 * error came from libpq itself (no SQLSTATE): after an immediate server
 * shutdown libpq reports "server closed the connection unexpectedly" while
 * PQstatus() still answers CONNECTION_OK until the next call. */
static int conn_lost(struct db *db, const PGresult *r)
{
	int st = PQresultStatus(r);

	if (PQstatus(db->conn) == CONNECTION_BAD)
		return 1;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	return !r || !PQresultErrorField(r, PG_DIAG_SQLSTATE);
}

/* Read the result of the db_send statement (the last one, for a
 * statement that somehow returned several); NULL only when libpq had none. */
static PGresult *take_in_flight(struct db *db)
{
	PGresult *r, *last = NULL;

	if (db->hooks.wait) {
		last = wait_result(db);
		db->in_flight = 0;
		return last;
	}
	while ((r = PQgetResult(db->conn)) != NULL) {
		PQclear(last);
		last = r;
	}
	db->in_flight = 0;
	return last;
}

/* A statement is about to run while one sent by db_send is in flight:
 * libpq allows one at a time, so read that one's result now and keep it. */
static void park_in_flight(struct db *db)
{
	if (db->in_flight && db->conn) {
		db->parked = take_in_flight(db);
		if (PQstatus(db->conn) == CONNECTION_BAD) {
			/* its error belongs to a connection about to be replaced:
			 * keep only the fact, so that collecting it later does not
			 * drop the new one */
			PQclear(db->parked);
			db->parked = NULL;
			db->flight_lost = 1;
		}
	}
	db->in_flight = 0;
}

static PGresult *check_result(struct db *db, const char *name, PGresult *r);
static PGresult *run_locked(struct db *db, const char *name, const char *sql, int n,
			    const char *const *params);

static PGresult *run(struct db *db, const char *name, const char *sql, int n,
		     const char *const *params)
{
	PGresult *r;

	hook_acquire(db);
	r = run_locked(db, name, sql, n, params);
	hook_release(db);
	return r;
}

static PGresult *run_locked(struct db *db, const char *name, const char *sql, int n,
			    const char *const *params)
{
	PGresult *r;
	int idle;

	park_in_flight(db);
	if (db_ensure(db) < 0)
		return NULL;
	idle = PQtransactionStatus(db->conn) == PQTRANS_IDLE;
	r = run_once(db, name, sql, n, params);
	if (idle && conn_lost(db, r)) {
		/* The server went away between statements (restart, failover):
		 * nothing was half-done, so one retry on a new connection is safe. */
		PQclear(r);
		log_warn_x("db msg=\"connection lost, reconnecting\"");
		PQfinish(db->conn);
		db->conn = NULL;
		if (db_ensure(db) < 0)
			return NULL;
		r = run_once(db, name, sql, n, params);
	}
	return check_result(db, name, r);
}

/* r on success; otherwise NULL with the error set and logged, and a lost
 * connection dropped so that the next statement reconnects. */
static PGresult *check_result(struct db *db, const char *name, PGresult *r)
{
	int st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		db->sqlstate[0] = '\0';
		db->errmsg[0] = '\0';
		return r;
	}
	if (conn_lost(db, r)) {
		set_err(db, "08006", PQerrorMessage(db->conn));
		/* drop it now so the next statement reconnects instead of failing */
		PQclear(r);
		r = NULL;
		PQfinish(db->conn);
		db->conn = NULL;
		db->flight_lost |= db->in_flight;
		db->in_flight = 0;
		forget_prepared(db);
	} else
		set_err(db, PQresultErrorField(r, PG_DIAG_SQLSTATE),
			PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
	/* Constraint violations are expected outcomes (409s); callers decide. */
	if (strncmp(db->sqlstate, "23", 2) != 0 && strcmp(db->sqlstate, "40001") != 0)
		log_error_x("db stmt=%s sqlstate=%s error=\"%s\"", name ? name : "-",
			    db->sqlstate, db->errmsg);
	PQclear(r);
	return NULL;
}

static int send_locked(struct db *db, const char *name, const char *sql, int n,
		       const char *const *params);

int db_send(struct db *db, const char *name, const char *sql, int n,
	    const char *const *params)
{
	int rc;

	hook_acquire(db);
	rc = send_locked(db, name, sql, n, params);
	hook_release(db);
	return rc;
}

static int send_locked(struct db *db, const char *name, const char *sql, int n,
		       const char *const *params)
{
	db->flight_lost = 0;
	if (db->in_flight || db->parked) {
		set_err(db, "55000", "a statement is already in flight");
		log_error_x("db stmt=%s msg=\"db_send while another is in flight\"", name);
		return -1;
	}
	if (db_ensure(db) < 0)
		return -1;
	if (db->begin_pending) {
		/* a transaction begun by db_begin: BEGIN on its own first */
		PGresult *r = check_result(db, "BEGIN", exec_now(db, NULL, "BEGIN", 0, NULL));
		if (!r)
			return -1;
		PQclear(r);
	}
	if (!is_prepared(db, name)) {
		/* once per connection: prepare synchronously, then send */
		PGresult *r = check_result(db, name, prepare_now(db, name, sql, n));
		if (!r)
			return -1;
		PQclear(r);
		if (db->nprepared >= DB_MAX_NAMES || !(db->prepared[db->nprepared] = strdup(name))) {
			set_err(db, "53200", "prepared statement table full");
			return -1;
		}
		db->nprepared++;
	}
	db->trips++;
	if (!PQsendQueryPrepared(db->conn, name, n, params, NULL, NULL, 0)) {
		PQclear(check_result(db, name, NULL));
		return -1;
	}
	db->in_flight = 1;
	db->flight_name = name;
	return 0;
}

PGresult *db_collect(struct db *db)
{
	PGresult *r;

	if (db->parked) {
		r = db->parked;
		db->parked = NULL;
	} else if (db->in_flight && db->conn) {
		r = take_in_flight(db);
	} else if (db->flight_lost) {
		db->flight_lost = 0;
		set_err(db, "08006", "connection lost with the statement in flight");
		log_error_x("db stmt=%s msg=\"connection lost with the statement in flight\"",
			    db->flight_name);
		return NULL;
	} else {
		set_err(db, "55000", "no statement in flight");
		log_error_x("db msg=\"db_collect without a statement in flight\"");
		return NULL;
	}
	db->in_flight = 0;
	r = check_result(db, db->flight_name, r);
	hook_release(db);
	return r;
}

int db_in_flight(const struct db *db) { return db->in_flight || db->parked || db->flight_lost; }

PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params)
{
	return run(db, NULL, sql, nparams, params);
}

PGresult *db_prep(struct db *db, const char *name, const char *sql, int nparams,
		  const char *const *params)
{
	return run(db, name, sql, nparams, params);
}

int db_cmd(struct db *db, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = run(db, NULL, sql, nparams, params);

	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

int db_done(PGresult *r)
{
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

int db_affected(PGresult *r)
{
	int n;

	if (!r)
		return -1;
	n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n;
}

const char *db_int_text(char *buf, int64_t v)
{
	snprintf(buf, DB_INT_LEN, "%lld", (long long)v);
	return buf;
}

char *db_int_array(const int64_t *v, const int *w, int n)
{
	char *arr = malloc((size_t)n * 21 + 3), *p = arr;

	if (!arr)
		return NULL;
	*p++ = '{';
	for (int k = 0; k < n; k++)
		p += sprintf(p, "%s%lld", k ? "," : "", v ? (long long)v[k] : (long long)w[k]);
	strcpy(p, "}");
	return arr;
}

int db_begin(struct db *db)
{
	if (!db->hooks.wait)
		return db_cmd(db, "BEGIN", 0, NULL);
	/* the connection is ours from now on; BEGIN goes out with the first
	 * statement (exec_begin) */
	hook_acquire(db);
	db->begin_pending = 1;
	return 0;
}

int db_commit(struct db *db)
{
	if (db->begin_pending) { /* nothing ran: nothing to commit */
		db->begin_pending = 0;
		hook_release(db);
		return 0;
	}
	return db_cmd(db, "COMMIT", 0, NULL);
}

unsigned long db_round_trips(const struct db *db) { return db->trips; }

void db_rollback(struct db *db)
{
	db->begin_pending = 0;
	park_in_flight(db);
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
		PGresult *r = !db->hooks.wait ? PQexec(db->conn, "ROLLBACK") :
			      PQsendQuery(db->conn, "ROLLBACK") ? wait_result(db) : NULL;
		PQclear(r);
	}
	hook_release(db);
}

int db_listen(struct db *db, const char *channel)
{
	for (int i = 0; i < db->nchannels; i++)
		if (strcmp(db->channels[i], channel) == 0)
			return 0;
	if (db->nchannels >= DB_MAX_CHANNELS)
		return -1;
	db->channels[db->nchannels] = strdup(channel);
	if (!db->channels[db->nchannels])
		return -1;
	db->nchannels++;
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
		/* force LISTEN on the live connection through the same path */
		return session_setup(db);
	}
	return db_ensure(db);
}

int db_socket(struct db *db)
{
	return db->conn && PQstatus(db->conn) == CONNECTION_OK ? PQsocket(db->conn) : -1;
}

/* Move every notification libpq has received into our queue, counting
 * them per channel. Several consumers share one connection (the auth
 * cache, the model list cache): counting is non-destructive, only
 * db_next_notify takes them out. */
static int poll_notify_locked(struct db *db);

int db_poll_notify(struct db *db)
{
	int rc;

	hook_acquire(db);
	rc = poll_notify_locked(db);
	hook_release(db);
	return rc;
}

/* Move what libpq already parsed into the queue, without reading. */
static void queue_notifies(struct db *db)
{
	PGnotify *n;

	while ((n = PQnotifies(db->conn)) != NULL) {
		for (int i = 0; i < db->nchannels; i++)
			if (strcmp(db->channels[i], n->relname) == 0)
				db->seen[i]++;
		if (db->nqueue == DB_MAX_QUEUED) {
			/* nobody takes them (no db_next_notify caller for a long
			 * time): bound the memory, drop the oldest */
			PQfreemem(db->queue[0]);
			memmove(db->queue, db->queue + 1, (size_t)(db->nqueue - 1) * sizeof *db->queue);
			db->nqueue--;
		}
		if (db->nqueue == db->capqueue) {
			int ncap = db->capqueue ? db->capqueue * 2 : 16;
			PGnotify **nq = realloc(db->queue, (size_t)ncap * sizeof *nq);
			if (!nq) {
				PQfreemem(n);
				continue;
			}
			db->queue = nq;
			db->capqueue = ncap;
		}
		db->queue[db->nqueue++] = n;
	}
}

int db_notify_pending(struct db *db)
{
	if (db->conn)
		queue_notifies(db);
	return db->nqueue > 0;
}

static int poll_notify_locked(struct db *db)
{
	if (!db->conn)
		return -1;
	if (!PQconsumeInput(db->conn)) {
		set_err(db, "08006", PQerrorMessage(db->conn));
		log_warn_x("db msg=\"listen connection lost\" error=\"%s\"", db->errmsg);
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	queue_notifies(db);
	return 0;
}

PGnotify *db_next_notify(struct db *db)
{
	PGnotify *n;

	db_poll_notify(db);
	if (db->nqueue == 0)
		return NULL;
	n = db->queue[0];
	memmove(db->queue, db->queue + 1, (size_t)(db->nqueue - 1) * sizeof *db->queue);
	db->nqueue--;
	return n;
}

unsigned long db_notify_count(const struct db *db, const char *channel)
{
	for (int i = 0; i < db->nchannels; i++)
		if (strcmp(db->channels[i], channel) == 0)
			return db->seen[i];
	return 0;
}

const char *db_sqlstate(const struct db *db) { return db->sqlstate; }
const char *db_errmsg(const struct db *db) { return db->errmsg; }
int db_is_unique_violation(const struct db *db) { return strcmp(db->sqlstate, "23505") == 0; }
int db_is_unavailable(const struct db *db) { return strncmp(db->sqlstate, "08", 2) == 0 || strncmp(db->sqlstate, "57P", 3) == 0; }
unsigned long db_reconnects(const struct db *db) { return db->reconnects; }
