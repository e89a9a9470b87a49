/*
 * ctl.h — modelhubctl subcommands (one function per command).
 *
 * Runs in: modelhubctl (a short-lived command-line process). Called by:
 * main.c after the configuration is loaded and the options parsed.
 * Each command returns the process exit status: 0 success, 1 failure
 * (already reported on stderr), 2 usage error.
 */
#ifndef MH_CTL_H
#define MH_CTL_H

#include "db/db.h"

struct ctl_opts {
	const char *sql_dir;      /* --sql-dir */
	const char *password_env; /* --password-env VAR */
	const char *out;          /* --out FILE */
	const char *models_dir;   /* --models-dir DIR */
	int ttl_days;             /* --days N (create-token) */
	const char *url;          /* --url (client commands) */
	const char *token_file;   /* --token-file FILE (client commands) */
	const char *format;       /* --format csv|json (client commands) */
	int wait;                 /* --wait (submit) */
	int header;               /* --header: FILE's first line is a header (submit) */
	int create;               /* --create (import-catalog) */
	const char *args[4];      /* positional arguments after the command */
	int nargs;
};

/* One connection for the command, from db.conninfo/db.schema. */
struct db *ctl_db(void);

int ctl_migrate(const struct ctl_opts *o);
int ctl_create_admin(const struct ctl_opts *o);
int ctl_create_token(const struct ctl_opts *o);
int ctl_reset_password(const struct ctl_opts *o);
int ctl_add_model(const struct ctl_opts *o);
int ctl_list_models(const struct ctl_opts *o);
int ctl_import_catalog(const struct ctl_opts *o);
int ctl_stats_fold(const struct ctl_opts *o);
int ctl_kubeconfig(const struct ctl_opts *o); /* ctl_kube.c */
int ctl_alive(const struct ctl_opts *o);      /* ctl_alive.c */
/* ctl_client.c: the HTTP API from scripts (no database) */
int ctl_submit(const struct ctl_opts *o);
int ctl_status(const struct ctl_opts *o);
int ctl_result(const struct ctl_opts *o);
int ctl_cancel(const struct ctl_opts *o);

#endif
