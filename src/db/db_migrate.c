/*
 * db_migrate.c — implementation of db_migrate.h.
 *
 * Runs in: modelhubctl. Called by: ctl_migrate.c.
 * Owns: nothing; runs on the ctl_db() connection.
 * Shared state: see db_migrate.h.
 *
 * DESIGN: the schema name comes from the configuration, never from a
 * request; it is still quoted with PQescapeIdentifier because CREATE
 * SCHEMA takes no parameters.
 */
#include "db/db_migrate.h"

#include <stdio.h>
#include <string.h>

/* Simple-query protocol on purpose: a migration file is a script of many
 * statements, which PQexecParams cannot run, and CREATE SCHEMA takes an
 * identifier, not a parameter (built with PQescapeIdentifier). Nothing a
 * user sends reaches here. */
static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;

	PQclear(r);
	return ok ? 0 : -1;
}

int db_migrate_lock(struct db *db)
{
	const char *p[1] = {db_schema(db)};

	return db_cmd(db, "SELECT pg_advisory_lock(hashtext('modelhub.migrate:' || $1))", 1, p);
}

int db_migrate_create_schema(struct db *db)
{
	const char *schema = db_schema(db);
	char *ident = PQescapeIdentifier(db_conn(db), schema, strlen(schema));
	char sql[512];

	if (!ident)
		return -1;
	snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", ident);
	PQfreemem(ident);
	return exec_ok(db_conn(db), sql);
}

int db_migrate_table(struct db *db)
{
	return db_cmd(db, "CREATE TABLE IF NOT EXISTS schema_migration ("
			  " version integer PRIMARY KEY,"
			  " name text NOT NULL,"
			  " applied_at timestamptz NOT NULL DEFAULT now())",
		      0, NULL);
}

int db_migrate_applied(struct db *db, int version)
{
	const char *p[1] = {DB_INT(version)};
	PGresult *r = db_exec(db, "SELECT 1 FROM schema_migration WHERE version = $1", 1, p);
	int n;

	if (!r)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	return n > 0;
}

enum db_migrate_rc db_migrate_apply(struct db *db, int version, const char *name,
				    const char *sql)
{
	PGconn *c = db_conn(db);
	const char *p[2] = {DB_INT(version), name};
	enum db_migrate_rc rc;

	if (exec_ok(c, "BEGIN") < 0)
		return DB_MIGRATE_BEGIN_FAILED;
	if (exec_ok(c, sql) < 0)
		rc = DB_MIGRATE_SCRIPT_FAILED;
	else if (db_cmd(db, "INSERT INTO schema_migration (version, name) VALUES ($1, $2)", 2, p) < 0)
		rc = DB_MIGRATE_RECORD_FAILED;
	else if (exec_ok(c, "COMMIT") < 0)
		rc = DB_MIGRATE_COMMIT_FAILED;
	else
		return DB_MIGRATE_OK;
	db_rollback(db);
	return rc;
}
