/*
 * db_migrate.h — the statements of `modelhubctl migrate`: the migration
 * lock, the schema and its schema_migration table, applying one file.
 *
 * Runs in: modelhubctl. Called by: ctl_migrate.c.
 * Shared state: creates the configured schema and schema_migration
 * (version, name, applied_at); a session advisory lock per schema
 * serialises concurrent runs.
 * Returns: 0 / -1 unless said otherwise; on -1 db_errmsg() (statements
 * through db.c) or PQerrorMessage(db_conn()) (scripts) says why.
 */
#ifndef MH_DB_MIGRATE_H
#define MH_DB_MIGRATE_H

#include "db/db.h"

/* Session advisory lock on "modelhub.migrate:<schema>" (waits). */
int db_migrate_lock(struct db *db);
/* CREATE SCHEMA IF NOT EXISTS for db_schema(db); -1 with the error in
 * PQerrorMessage(db_conn(db)). */
int db_migrate_create_schema(struct db *db);
/* CREATE TABLE IF NOT EXISTS schema_migration. */
int db_migrate_table(struct db *db);
/* 1 version recorded as applied, 0 not, -1 error. */
int db_migrate_applied(struct db *db, int version);

/* Which step of db_migrate_apply failed. */
enum db_migrate_rc {
	DB_MIGRATE_OK = 0,
	DB_MIGRATE_BEGIN_FAILED,  /* PQerrorMessage(db_conn(db)) */
	DB_MIGRATE_SCRIPT_FAILED, /* PQerrorMessage(db_conn(db)) */
	DB_MIGRATE_RECORD_FAILED, /* db_errmsg(db) */
	DB_MIGRATE_COMMIT_FAILED, /* PQerrorMessage(db_conn(db)) */
};
/* Run the script sql and record (version, name) in one transaction; rolled
 * back on any failure. */
enum db_migrate_rc db_migrate_apply(struct db *db, int version, const char *name,
				    const char *sql);

#endif
