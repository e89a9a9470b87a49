/*
 * config.h — the modelhub configuration file (`key = value`, `#` comments).
 *
 * Runs in: every process. Called by: main() of each binary at start and on
 * SIGHUP (cfg_load again). Keys are dotted (`db.schema`, `fcgi.workers`).
 * An environment variable MODELHUB_<KEY> (upper case, dots and dashes as
 * underscores, e.g. MODELHUB_DB_SCHEMA) overrides the file, so tests and
 * containers can set single values.
 *
 * Strings returned by cfg_str() stay valid until the next cfg_load/cfg_free.
 */
#ifndef MH_CONFIG_H
#define MH_CONFIG_H

#include <stddef.h>

/* Load (or reload) a file; replaces all values on success, keeps the old
 * ones on failure. path NULL: $MODELHUB_CONFIG, or no file (env + defaults).
 * Returns 0, or -1 with *err (static text) and *line set. */
int cfg_load(const char *path, const char **err, int *line);
/* Parse text instead of a file (unit tests). Same contract as cfg_load. */
int cfg_parse(const char *text, const char **err, int *line);
const char *cfg_path(void);

const char *cfg_str(const char *key, const char *def);
long cfg_int(const char *key, long def);
double cfg_double(const char *key, double def);
int cfg_bool(const char *key, int def);
/* Set one value in memory (tests, command-line overrides). 0 / -1. */
int cfg_set(const char *key, const char *value);
void cfg_free(void);

#endif
