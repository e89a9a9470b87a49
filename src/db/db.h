/*
 * db.h — one PostgreSQL connection with lazy (re)connect, schema search_path,
 * lazily prepared statements and LISTEN channels that survive reconnects.
 *
 * Runs in: modelhub-fcgi workers (one each), every modelhubd child (one
 * each), modelhubctl. Called by: the per-table query modules (db_*.c) and
 * handlers. Owns: the PGconn, the list of prepared statement names, the list
 * of LISTEN channels.
 *
 * Errors: functions return a PGresult (caller PQclear()s it) or NULL; on
 * NULL, db_sqlstate()/db_errmsg() say why (SQLSTATE "08000" family when the
 * server is unreachable). The error is logged once here.
 *
 * Reconnect: if the connection is found broken and no transaction was open,
 * the statement is retried once on a fresh connection, so a Postgres restart
 * fails at most the statements that were in flight inside a transaction.
 */
#ifndef MH_DB_H
#define MH_DB_H

#include <libpq-fe.h>
#include <stdint.h>

struct db;

/* Never connects; the first query does. NULL only on out of memory. */
struct db *db_new(const char *conninfo, const char *schema, const char *app_name);
void db_free(struct db *db);
/* statement_timeout and lock_timeout (ms, 0 none) of the connections made
 * from now on; db_new sets 30 s and 10 s. modelhubctl sets none (migrations
 * may run long). Every connection also gets TCP keepalives and a 10 s
 * tcp_user_timeout; db.conninfo may override any of these. */
void db_set_timeouts(struct db *db, int statement_ms, int lock_ms);

/* Connect if not connected. 0 / -1. */
int db_ensure(struct db *db);
PGconn *db_conn(struct db *db);
const char *db_schema(const struct db *db);

/* Parameterised statement (text params, text results). */
PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params);
/* Same, prepared once per connection under `name` (a literal). */
PGresult *db_prep(struct db *db, const char *name, const char *sql, int nparams,
		  const char *const *params);
/* One statement in flight while the caller does something else (the
 * runner stores a chunk's results while the model computes the next).
 * db_send sends a prepared statement and returns at once (0 / -1);
 * db_collect waits for its result, with db_prep's contract (PGresult or
 * NULL with the error set). At most one at a time. Any other statement
 * issued in between first waits for the one in flight and keeps its result
 * for db_collect, so code that runs meanwhile (lease renewal, housekeeping)
 * needs no care. No retry on a new connection: a lost connection fails the
 * statement. */
int db_send(struct db *db, const char *name, const char *sql, int nparams,
	    const char *const *params);
PGresult *db_collect(struct db *db);

/* Cooperative use of one connection by several tasks of a process (the
 * runner's event loop, hubd/runner_loop.c). With hooks set, every statement
 * is sent with libpq's non-blocking calls and the caller waits in
 * wait(ctx, fd, POLLIN/POLLOUT) (which runs other tasks meanwhile) instead
 * of blocking the process; acquire(ctx) is called before a statement and
 * release(ctx) once the connection is back to no transaction and nothing
 * in flight, so a transaction (or a db_send until its db_collect) keeps the
 * connection for one task. Connecting stays blocking. */
struct db_hooks {
	void (*acquire)(void *ctx);
	void (*release)(void *ctx);
	void (*wait)(void *ctx, int fd, int events);
	void *ctx;
};
void db_set_hooks(struct db *db, const struct db_hooks *h);
/* 1 when notifications are waiting in the queue or in libpq (read with
 * the last statement), without reading the socket. */
int db_notify_pending(struct db *db);
/* 1 while a db_send statement (or its failure) has not been collected. */
int db_in_flight(const struct db *db);
/* Convenience: run a statement, PQclear the result; 0 / -1. */
int db_cmd(struct db *db, const char *sql, int nparams, const char *const *params);
/* For the query modules: PQclear r; 0, or -1 when r is NULL (the failed
 * statement was logged by db_prep). */
int db_done(PGresult *r);
/* PQclear r; rows affected (PQcmdTuples), or -1 when r is NULL. */
int db_affected(PGresult *r);

/* Integer query parameters: DB_INT(v) is the decimal text of v in a buffer
 * that lives until the end of the enclosing block, so it can sit in a
 * parameter array initialiser: const char *p[] = {DB_INT(id), name}; */
#define DB_INT_LEN 24
#define DB_INT(v) db_int_text((char[DB_INT_LEN]){0}, (int64_t)(v))
const char *db_int_text(char *buf, int64_t v);
/* An array parameter ("{1,2,3}", for $n::bigint[] or $n::int[]) of the n
 * integers of v, or of w when v is NULL; malloc()ed, NULL when out of
 * memory. */
char *db_int_array(const int64_t *v, const int *w, int n);

int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* LISTEN on a channel (a literal identifier); re-issued after reconnects. */
int db_listen(struct db *db, const char *channel);
/* Socket to poll(2) for notifications, -1 when disconnected. */
int db_socket(struct db *db);
/* Consume input; returns the next notification (PQfreemem it) or NULL. */
PGnotify *db_next_notify(struct db *db);
/* Consume input and count notifications per channel without taking them
 * out of the queue db_next_notify reads (for caches that only need to know
 * "something changed"). 0, or -1 when the connection is gone. */
int db_poll_notify(struct db *db);
/* Notifications received so far on a LISTENed channel (see db_poll_notify). */
unsigned long db_notify_count(const struct db *db, const char *channel);

const char *db_sqlstate(const struct db *db);
const char *db_errmsg(const struct db *db);
/* 1 if the last error was a unique violation (23505). */
int db_is_unique_violation(const struct db *db);
/* 1 if the last error means the server could not be reached. */
int db_is_unavailable(const struct db *db);
/* Count of successful reconnects (tests and /metrics). */
unsigned long db_reconnects(const struct db *db);
/* Statements sent and waited for on this connection so far (a BEGIN sent
 * with the statement after it counts with it). */
unsigned long db_round_trips(const struct db *db);

#endif
