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
 * DESIGN: the statements are in db_migrate.c. Objects in the files carry no schema prefix:
 * the connection's search_path (db.c) puts them in the configured schema.
 * A session advisory lock serialises concurrent runs (two replicas or
 * run-local and a test starting together).
 */
#include "ctl/ctl.h"
#include "db/db_migrate.h"
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

/* The message for a failed apply, as modelhubctl has always printed it. */
static void apply_failed(struct db *db, const char *name, enum db_migrate_rc rc)
{
	const char *pq = PQerrorMessage(db_conn(db));

	if (rc == DB_MIGRATE_RECORD_FAILED)
		fprintf(stderr, "modelhubctl: recording %s failed: %s\n", name, db_errmsg(db));
	else
		fprintf(stderr, "modelhubctl: %s failed: %s",
			rc == DB_MIGRATE_BEGIN_FAILED ? "BEGIN"
			: rc == DB_MIGRATE_COMMIT_FAILED ? "COMMIT" : name, pq);
}

static int apply_one(struct db *db, const char *dir, const char *name, int version)
{
	char path[8192];
	char *sql;
	enum db_migrate_rc rc;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
		fprintf(stderr, "modelhubctl: path too long: %s/%s\n", dir, name);
		return -1;
	}
	sql = slurp(path);
	if (!sql) {
		fprintf(stderr, "modelhubctl: cannot read %s\n", path);
		return -1;
	}
	rc = db_migrate_apply(db, version, name, sql);
	free(sql);
	if (rc != DB_MIGRATE_OK) {
		apply_failed(db, name, rc);
		return -1;
	}
	printf("applied %s\n", name);
	log_info("migrate msg=applied file=%s version=%d schema=%s", name, version, db_schema(db));
	return 0;
}

/* Lock, schema, schema_migration: 0, -1 (message printed). */
static int prepare_schema(struct db *db)
{
	if (db_migrate_lock(db) < 0)
		goto dberr;
	if (db_migrate_create_schema(db) < 0) {
		fprintf(stderr, "modelhubctl: CREATE SCHEMA failed: %s", PQerrorMessage(db_conn(db)));
		return -1;
	}
	if (db_migrate_table(db) < 0)
		goto dberr;
	return 0;
dberr:
	fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
	return -1;
}

/* Apply the files not yet recorded, in order: 0, -1 (message printed). */
static int apply_all(struct db *db, const char *dir, struct dirent **names, int n)
{
	int done = 0, last = -1, max_applied = 0;

	for (int i = 0; i < n; i++) {
		int version = atoi(names[i]->d_name), a;
		if (version == last) {
			fprintf(stderr, "modelhubctl: two migrations numbered %d in %s\n", version, dir);
			return -1;
		}
		last = version;
		a = db_migrate_applied(db, version);
		if (a < 0) {
			fprintf(stderr, "modelhubctl: database error: %s\n", db_errmsg(db));
			return -1;
		}
		if (!a && apply_one(db, dir, names[i]->d_name, version) < 0)
			return -1;
		done += !a;
		max_applied = version;
	}
	if (done == 0)
		printf("schema %s is up to date (version %d)\n", db_schema(db), max_applied);
	else
		printf("schema %s now at version %d (%d applied)\n", db_schema(db), max_applied, done);
	return 0;
}

int ctl_migrate(const struct ctl_opts *o)
{
	struct db *db = ctl_db();
	char tmp[4096];
	const char *dir = pick_dir(o, tmp, sizeof tmp);
	struct dirent **names = NULL;
	int n, rc = 1;

	if (db_ensure(db) < 0) {
		fprintf(stderr, "modelhubctl: cannot connect to the database: %s\n", db_errmsg(db));
		return 1;
	}
	n = scandir(dir, &names, migration_name, alphasort);
	if (n < 0) {
		fprintf(stderr, "modelhubctl: cannot read the sql directory %s\n", dir);
		return 1;
	}
	if (n == 0 || n > MIGRATE_MAX_FILES)
		fprintf(stderr, "modelhubctl: %d migration files in %s\n", n, dir);
	else if (prepare_schema(db) == 0 && apply_all(db, dir, names, n) == 0)
		rc = 0;
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
