/*
 * cmdpath.c — may a model's local_command run this program? (see cmdpath.h)
 *
 * Runs in: modelhub-fcgi workers, runners. Called by: api_models.c,
 * local.c, t/138-cmdpath.c. Owns: nothing. Shared state: none.
 *
 * DESIGN: the check is on the program only. An allowed interpreter
 * (/usr/bin/python3) runs whatever script its arguments name, so the list
 * is a guard against mistakes and casual misuse, not a sandbox: registering
 * a model is code execution by design, and the boundary is the
 * unprivileged user instances run as (local_jail.c).
 */
#include "lib/cmdpath.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s with every "{models_dir}" replaced, into out. 0, -1 too long. */
static int expand(const char *s, const char *models_dir, char *out, size_t size)
{
	static const char key[] = "{models_dir}";
	size_t n = 0, k = strlen(key), m = strlen(models_dir ? models_dir : "");

	while (*s) {
		if (strncmp(s, key, k) == 0) {
			if (n + m >= size)
				return -1;
			memcpy(out + n, models_dir, m);
			n += m;
			s += k;
		} else {
			if (n + 1 >= size)
				return -1;
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	return 0;
}

/* Absolute, no "." or ".." component, no "//". */
static int clean_abs(const char *p)
{
	if (p[0] != '/')
		return 0;
	for (const char *c = p; *c; c++)
		if (c[0] == '/' &&
		    (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || c[2] == '\0' ||
						     (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))))
			return 0;
	return 1;
}

/* Is path inside dir (dir itself excluded)? dir without its trailing '/'. */
static int inside(const char *path, const char *dir, size_t dlen)
{
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	return strncmp(path, dir, dlen) == 0 && path[dlen] == '/' && path[dlen + 1] != '\0';
}

/* Is path inside one of the dirs (with resolve, their real paths: /bin
 * may be a symlink to /usr/bin)? */
static int in_dirs(const char *path, const char *dirs, const char *models_dir, int resolve)
{
	char one[PATH_MAX], exp[PATH_MAX], real[PATH_MAX];

	for (const char *d = dirs; *d;) {
		size_t len = strcspn(d, ":,");

		if (len > 0 && len < sizeof one) {
			memcpy(one, d, len);
			one[len] = '\0';
			if (expand(one, models_dir, exp, sizeof exp) == 0 && clean_abs(exp) &&
			    (resolve ? realpath(exp, real) && inside(path, real, strlen(real))
				     : inside(path, exp, strlen(exp))))
				return 1;
		}
		d += len;
		if (*d)
			d++;
	}
	return 0;
}

int cmdpath_allowed(const char *prog, const char *dirs, const char *models_dir, char *why,
		    size_t why_size)
{
	char path[PATH_MAX], real[PATH_MAX];

	if (!dirs || !*dirs)
		return 1;
	if (!prog || expand(prog, models_dir, path, sizeof path) < 0 || !clean_abs(path)) {
		snprintf(why, why_size, "the program must be an absolute path without . or .."
			 " (hub.local_command_dirs is set)");
		return 0;
	}
	if (!in_dirs(path, dirs, models_dir, 0)) {
		snprintf(why, why_size, "%s is not in hub.local_command_dirs (%s)", path, dirs);
		return 0;
	}
	if (realpath(path, real) && !in_dirs(real, dirs, models_dir, 1)) {
		snprintf(why, why_size, "%s leads to %s, outside hub.local_command_dirs (%s)", path,
			 real, dirs);
		return 0;
	}
	return 1;
}
