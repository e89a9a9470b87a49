/*
 * ctl_migrate.c — `modelhubctl migrate`: create the schema and apply the
 * sql/NNN_name.sql migrations in order.
 *
 * Runs in: modelhubctl. Called by: main.c.
 * Owns: nothing beyond the command; uses the ctl_db() connection.
 * Shared state: creates the configured schema and its table
 * schema_migration (version, name, applied_at); every migration runs in
 * its own transaction together with its schema_migration row, so a failed
 * file leaves nothing behind and a re-run continues where it stopped.
 *
 * DESIGN: the schema name comes from the configuration, never from a
 * request; it is still quoted with PQescapeIdentifier because CREATE
 * SCHEMA takes no parameters. Objects in the files carry no schema prefix:
 * the connection's search_path (db.c) puts them in the configured schema.
 * A session advisory lock serialises concurrent runs (two replicas or
 * run-local and a test starting together).
 */
#include "ctl/ctl.h"
#include "lib/config.h"
#include "lib/log.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIGRATE_MAX_FILES 1000

static int is_dir(const char *p)
{
	struct stat st;

	return p && *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --sql-dir, $MODELHUB_SQL_DIR, $top_srcdir/sql (make check), the
 * installed MH_DATADIR/sql, ./sql — the first that exists. */
static const char *pick_dir(const struct ctl_opts *o, char *tmp, size_t n)
{
	const char *e;

	if (o->sql_dir)
		return o->sql_dir;
	e = getenv("MODELHUB_SQL_DIR");
	if (is_dir(e))
		return e;
	e = getenv("top_srcdir");
	if (e && *e) {
		snprintf(tmp, n, "%s/sql", e);
		if (is_dir(tmp))
			return tmp;
	}
	if (is_dir(MH_DATADIR "/sql"))
		return MH_DATADIR "/sql";
	return "sql";
}

/* NNN_name.sql with at least one digit before the underscore. */
static int migration_name(const struct dirent *d)
{
	const char *s = d->d_name;
	size_t n = strlen(s), i = 0;

	while (isdigit((unsigned char)s[i]))
		i++;
	return i > 0 && s[i] == '_' && n > 4 && strcmp(s + n - 4, ".sql") == 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *txt = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (txt = malloc((size_t)len + 1)) != NULL) {
		if (fread(txt, 1, (size_t)len, f) != (size_t)len) {
			free(txt);
			txt = NULL;
		} else {
			txt[len] = '\0';
		}
	}
	fclose(f);
	return txt;
}

/* Simple-query protocol on purpose: a migration file is a script of many
 * statements, which PQexecParams cannot run, and CREATE SCHEMA takes an
 * identifier, not a parameter (built with PQescapeIdentifier). Nothing a
 * user sends reaches here. */
static int exec_ok(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	int st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;

	if (!ok)
		fprintf(stderr, "modelhubctl: %s failed: %s", what, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int applied(struct db *db, int version)
{
	char v[16];
	const char *p[1] = {v};
	PGresult *r;
	int n;

	snprintf(v, sizeof v, "%d", version);
	r = db_exec(db, "SELECT 1 FROM schema_migration WHERE version = $1", 1, p);
	if (!r)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	return n > 0;
}

static int apply_one(struct db *db, const char *dir, const char *name, int version)
{
	PGconn *c = db_conn(db);
	char path[8192], v[16];
	const char *p[2] = {v, name};
	char *sql;
	int rc = -1;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
		fprintf(stderr, "modelhubctl: path too long: %s/%s\n", dir, name);
		return -1;
	}
	sql = slurp(path);
	if (!sql) {
		fprintf(stderr, "modelhubctl: cannot read %s\n", path);
		return -1;
	}
	snprintf(v, sizeof v, "%d", version);
	if (exec_ok(c, "BEGIN", "BEGIN") < 0)
		goto out;
	if (exec_ok(c, sql, name) < 0)
		goto rollback;
	if (db_cmd(db, "INSERT INTO schema_migration (version, name) VALUES ($1, $2)", 2, p) < 0) {
		fprintf(stderr, "modelhubctl: recording %s failed: %s\n", name, db_errmsg(db));
		goto rollback;
	}
	if (exec_ok(c, "COMMIT", "COMMIT") < 0)
		goto rollback;
	printf("applied %s\n", name);
	log_info("migrate msg=applied file=%s version=%d schema=%s", name, version, db_schema(db));
	rc = 0;
	goto out;
rollback:
	db_rollback(db);
out:
	free(sql);
	return rc;
}

int ctl_migrate(const struct ctl_opts *o)
{
	struct db *db = ctl_db();
	char tmp[4096], sql[512];
	const char *dir = pick_dir(o, tmp, sizeof tmp);
	const char *p[1];
	struct dirent **names = NULL;
	char *ident;
	int n, rc = 1, done = 0, last = -1, max_applied = 0;

	if (db_ensure(db) < 0) {
		fprintf(stderr, "modelhubctl: cannot connect to the database: %s\n", db_errmsg(db));
		return 1;
	}
	n = scandir(dir, &names, migration_name, alphasort);
	if (n < 0) {
		fprintf(stderr, "modelhubctl: cannot read the sql directory %s\n", dir);
		return 1;
	}
	if (n == 0 || n > MIGRATE_MAX_FILES) {
		fprintf(stderr, "modelhubctl: %d migration files in %s\n", n, dir);
		goto out;
	}
	p[0] = db_schema(db);
	if (db_cmd(db, "SELECT pg_advisory_lock(hashtext('modelhub.migrate:' || $1))", 1, p) < 0)
		goto dberr;
	ident = PQescapeIdentifier(db_conn(db), p[0], strlen(p[0]));
	if (!ident)
		goto dberr;
	snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", ident);
	PQfreemem(ident);
	if (exec_ok(db_conn(db), sql, "CREATE SCHEMA") < 0)
		goto out;
	if (db_cmd(db, "CREATE TABLE IF NOT EXISTS schema_migration ("
		       " version integer PRIMARY KEY,"
		       " name text NOT NULL,"
		       " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL) < 0)
		goto dberr;
	for (int i = 0; i < n; i++) {
		int version = atoi(names[i]->d_name), a;
		if (version == last) {
			fprintf(stderr, "modelhubctl: two migrations numbered %d in %s\n", version, dir);
			goto out;
		}
		last = version;
		a = applied(db, version);
		if (a < 0)
			goto dberr;
		if (a) {
			max_applied = version;
			continue;
		}
		if (apply_one(db, dir, names[i]->d_name, version) < 0)
			goto out;
		max_applied = version;
		done++;
	}
	if (done == 0)
		printf("schema %s is up to date (version %d)\n", db_schema(db), max_applied);
	else
		printf("schema %s now at version %d (%d applied)\n", db_schema(db), max_applied, done);
	rc = 0;
	goto out;
dberr:
	fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
