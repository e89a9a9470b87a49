/*
 * cmdpath.h — may a model's local_command run this program?
 * (hub.local_command_dirs, issue 17 finding 4).
 *
 * Runs in: modelhub-fcgi workers (model create/patch), runners (local
 * backend, before fork). Called by: api_models.c, local.c, t/138-cmdpath.c.
 * Owns: nothing.
 */
#ifndef MH_CMDPATH_H
#define MH_CMDPATH_H

#include <stddef.h>

/* dirs: hub.local_command_dirs, directories separated by ':' or ','
 * ("{models_dir}" in an entry is models_dir); empty or NULL allows any
 * program. Otherwise prog (argv[0], with "{models_dir}" substituted) must be
 * an absolute path without "." or ".." components inside one of the dirs,
 * and so must its real path when it exists (a symlink cannot lead out).
 * 1 allowed, 0 refused with the reason in why. */
int cmdpath_allowed(const char *prog, const char *dirs, const char *models_dir, char *why,
		    size_t why_size);

#endif
