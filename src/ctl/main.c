/*
 * main.c — modelhubctl: administration from the shell (migrations,
 * accounts, API tokens, the model catalogue) and a client of the HTTP API
 * for scripts (submit, status, result, cancel: ctl_client.c).
 *
 * Runs in: modelhubctl, a short-lived process started by an admin,
 * scripts/run-local and the test harness (t/lib/stack.py).
 * Called by: the shell: `modelhubctl [-c FILE] COMMAND [ARGS] [OPTIONS]`.
 * Owns: the configuration and one database connection (ctl_db()).
 *
 * Messages for the operator go to stdout; log lines (lib/log.h) to stderr.
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include "ctl/ctl.h"
#include "lib/config.h"
#include "lib/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct db *the_db;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: modelhubctl [-c FILE] COMMAND [ARGS] [OPTIONS]\n"
		"       modelhubctl --version\n"
		"commands:\n"
		"  migrate [--sql-dir DIR]          create the schema, apply sql/NNN_*.sql\n"
		"  create-admin USERNAME EMAIL [--password-env VAR]\n"
		"                                   create an ADMIN account (password printed\n"
		"                                   once unless taken from $VAR)\n"
		"  create-token USERNAME [--out FILE] [--days N]\n"
		"                                   long-lived API token (FILE mode 0600)\n"
		"  reset-password USERNAME [--password-env VAR]\n"
		"  add-model FILE.json [--models-dir DIR]\n"
		"                                   add or update models (object or array)\n"
		"  list-models                      print the catalogue\n"
		"  import-catalog FILE [--create]   set the identification fields of the\n"
		"                                   models from an Ersilia catalogue (JSON\n"
		"                                   array); --create adds the others, disabled\n"
		"  stats-fold                       fold pending request stats into the daily\n"
		"                                   rollups now (the janitor does it every 2 s)\n"
		"  kubeconfig FILE [CONTEXT]        print kube.* config lines for a kubeconfig\n"
		"  alive [SECONDS]                  exit 0 if modelhubd's supervisor beat within\n"
		"                                   SECONDS (liveness probe, no database)\n"
		"client commands (the HTTP API; no database):\n"
		"  submit MODEL FILE [--header] [--wait] [--format csv|json] [-o OUT]\n"
		"                                   submit FILE (CSV or one SMILES a line, - for\n"
		"                                   stdin; --header: its first line is a header);\n"
		"                                   prints the request id, or with --wait\n"
		"                                   shows progress and writes the result\n"
		"  status ID [--format json]        status and progress of a request\n"
		"  result ID [--format csv|json] [-o OUT]\n"
		"  cancel ID\n"
		"  client options: --url URL (client.url, default http://127.0.0.1:8080),\n"
		"  --token-file FILE (client.token_file; or client.token, env\n"
		"  MODELHUB_CLIENT_TOKEN); without a token submit uses an anonymous one\n"
		"options: -c FILE  configuration file (default $MODELHUB_CONFIG)\n");
}

struct db *ctl_db(void)
{
	if (!the_db) {
		the_db = db_new(cfg_str("db.conninfo", ""), cfg_str("db.schema", "modelhub"),
				"modelhubctl");
		if (!the_db)
			die("ctl msg=\"out of memory\"");
		db_set_timeouts(the_db, 0, 0); /* migrations, bulk admin commands */
	}
	return the_db;
}

static const struct {
	const char *name;
	int (*fn)(const struct ctl_opts *o);
	int min_args, max_args;
} commands[] = {
	{"migrate", ctl_migrate, 0, 0},
	{"create-admin", ctl_create_admin, 2, 2},
	{"create-token", ctl_create_token, 1, 1},
	{"reset-password", ctl_reset_password, 1, 1},
	{"add-model", ctl_add_model, 1, 1},
	{"list-models", ctl_list_models, 0, 0},
	{"import-catalog", ctl_import_catalog, 1, 1},
	{"stats-fold", ctl_stats_fold, 0, 0},
	{"kubeconfig", ctl_kubeconfig, 1, 2},
	{"alive", ctl_alive, 0, 1},
	{"submit", ctl_submit, 2, 2},
	{"status", ctl_status, 1, 1},
	{"result", ctl_result, 1, 1},
	{"cancel", ctl_cancel, 1, 1},
};

/* Option taking a value: "--name V" or "--name=V". Returns the value and
 * advances *i, or NULL when argv[*i] is not this option. */
static const char *opt_val(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] == '\0' && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct ctl_opts o;
	const char *cfile = NULL, *cmd = NULL, *err = NULL, *v;
	int line = 0, rc = 2, ci = -1;

	memset(&o, 0, sizeof o);
	log_init("ctl");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("modelhubctl %s\n", MH_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if ((v = opt_val(argc, argv, &i, "-c"))) {
			cfile = v;
		} else if ((v = opt_val(argc, argv, &i, "--sql-dir"))) {
			o.sql_dir = v;
		} else if ((v = opt_val(argc, argv, &i, "--password-env"))) {
			o.password_env = v;
		} else if ((v = opt_val(argc, argv, &i, "--out")) ||
			   (v = opt_val(argc, argv, &i, "-o"))) {
			o.out = v;
		} else if ((v = opt_val(argc, argv, &i, "--url"))) {
			o.url = v;
		} else if ((v = opt_val(argc, argv, &i, "--token-file"))) {
			o.token_file = v;
		} else if ((v = opt_val(argc, argv, &i, "--format"))) {
			o.format = v;
		} else if (strcmp(argv[i], "--wait") == 0) {
			o.wait = 1;
		} else if (strcmp(argv[i], "--create") == 0) {
			o.create = 1;
		} else if (strcmp(argv[i], "--header") == 0) {
			o.header = 1;
		} else if ((v = opt_val(argc, argv, &i, "--models-dir"))) {
			o.models_dir = v;
		} else if ((v = opt_val(argc, argv, &i, "--days"))) {
			o.ttl_days = atoi(v);
			if (o.ttl_days <= 0) {
				fprintf(stderr, "modelhubctl: --days needs a positive number\n");
				return 2;
			}
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "modelhubctl: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (!cmd) {
			cmd = argv[i];
		} else if (o.nargs < (int)(sizeof o.args / sizeof o.args[0])) {
			o.args[o.nargs++] = argv[i];
		} else {
			fprintf(stderr, "modelhubctl: too many arguments\n");
			return 2;
		}
	}
	if (!cmd) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, cmd) == 0)
			ci = (int)i;
	if (ci < 0) {
		fprintf(stderr, "modelhubctl: unknown command %s\n", cmd);
		usage(stderr);
		return 2;
	}
	if (o.nargs < commands[ci].min_args || o.nargs > commands[ci].max_args) {
		fprintf(stderr, "modelhubctl: wrong number of arguments for %s\n", cmd);
		usage(stderr);
		return 2;
	}
	if (cfg_load(cfile, &err, &line) != 0) {
		fprintf(stderr, "modelhubctl: cannot load %s: %s (line %d)\n",
			cfile ? cfile : "$MODELHUB_CONFIG", err ? err : "?", line);
		return 1;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "modelhubctl: libsodium failed to initialise\n");
		return 1;
	}
	rc = commands[ci].fn(&o);
	db_free(the_db);
	cfg_free();
	return rc;
}
