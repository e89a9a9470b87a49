/*
 * db-async-helper.c — checks of db_send/db_collect (src/db/db.c) against a
 * real Postgres: a statement left in flight, another statement meanwhile
 * (the first one's result is kept), misuse, a failing statement, and the
 * connection killed with a statement in flight or kept.
 *
 * Runs in: t/117-db-async.t, which starts a throwaway cluster and runs this
 * program with its conninfo and schema; prints TAP (tap.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "lib/log.h"
#include "lib/tap.h"

/* First column of the first row as a number, -1 on NULL result; clears. */
static long first_value(PGresult *r)
{
	long v = -1;

	if (r && PQntuples(r) > 0)
		v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static long backend_pid(struct db *db)
{
	return first_value(db_exec(db, "SELECT pg_backend_pid()", 0, NULL));
}

static void kill_backend(struct db *killer, long pid)
{
	char p[24];
	const char *params[1] = {p};

	snprintf(p, sizeof p, "%ld", pid);
	PQclear(db_exec(killer, "SELECT pg_terminate_backend($1::int)", 1, params));
}

int main(int argc, char **argv)
{
	struct db *db, *killer;
	long pid;

	if (argc != 3) {
		fprintf(stderr, "usage: db-async-helper CONNINFO SCHEMA\n");
		return 2;
	}
	log_init("db-async-helper");
	db = db_new(argv[1], argv[2], "t117");
	killer = db_new(argv[1], argv[2], "t117-killer");

	/* the ordinary case */
	is_int(db_send(db, "t_slow", "SELECT 42 FROM pg_sleep(0.2)", 0, NULL), 0, "send returns at once");
	ok(db_in_flight(db), "in flight");
	is_int(first_value(db_exec(db, "SELECT 7", 0, NULL)), 7,
	       "another statement meanwhile runs (after waiting for the one in flight)");
	ok(db_in_flight(db), "the first one's result is still to collect");
	is_int(first_value(db_collect(db)), 42, "collect gives the first statement's result");
	ok(!db_in_flight(db), "nothing in flight afterwards");

	/* misuse */
	ok(db_collect(db) == NULL, "collect with nothing in flight: NULL");
	is_str(db_sqlstate(db), "55000", "  sqlstate 55000");
	is_int(db_send(db, "t_one", "SELECT 1", 0, NULL), 0, "send");
	is_int(db_send(db, "t_two", "SELECT 2", 0, NULL), -1, "a second send while one is in flight: -1");
	is_int(first_value(db_collect(db)), 1, "  the first is unharmed");

	/* a statement that fails on the server */
	is_int(db_send(db, "t_div", "SELECT 1 / (random() * 0)::int", 0, NULL), 0, "failing statement sent");
	ok(db_collect(db) == NULL, "  collect: NULL");
	is_str(db_sqlstate(db), "22012", "  with the server's sqlstate (division by zero)");
	is_int(first_value(db_exec(db, "SELECT 3", 0, NULL)), 3, "  the connection goes on");

	/* connection killed while the statement is in flight */
	pid = backend_pid(db);
	is_int(db_send(db, "t_long", "SELECT 5 FROM pg_sleep(5)", 0, NULL), 0, "long statement sent");
	kill_backend(killer, pid);
	ok(db_collect(db) == NULL, "backend terminated: collect NULL");
	ok(db_is_unavailable(db), "  as unavailable (%s)", db_sqlstate(db));
	is_int(first_value(db_exec(db, "SELECT 4", 0, NULL)), 4, "  the next statement reconnects");
	ok(backend_pid(db) != pid, "  on a new backend");

	/* killed while in flight, noticed by another statement first */
	pid = backend_pid(db);
	is_int(db_send(db, "t_long", "SELECT 5 FROM pg_sleep(5)", 0, NULL), 0,
	       "long statement sent (prepared again on the new connection)");
	kill_backend(killer, pid);
	is_int(first_value(db_exec(db, "SELECT 6", 0, NULL)), 6,
	       "a statement meanwhile runs on a new connection");
	ok(db_in_flight(db), "  the one in flight is still to collect");
	pid = backend_pid(db);
	ok(pid > 0, "  the new connection is up");
	ok(db_collect(db) == NULL, "  the one in flight still reports its failure");
	ok(db_is_unavailable(db), "  as unavailable (%s)", db_sqlstate(db));
	ok(!db_in_flight(db), "  and is gone");
	is_int(backend_pid(db), pid, "  and the new connection was kept");

	db_free(killer);
	db_free(db);
	return done_testing();
}
