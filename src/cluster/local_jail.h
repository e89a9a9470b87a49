/*
 * local_jail.h — what a local model instance may do: the unprivileged user
 * it runs as, its own directory, read-only /tmp, the directories its command
 * may come from, and the retention of its files.
 *
 * Runs in: runners (local backend; the parent half before fork, the child
 * half between fork and exec), the janitor (local_jail_sweep).
 * Called by: local.c, janitor.c.
 * Owns: <hub.var_dir>/instances/<id>/ (the instance's own directory) and the
 * instances' log files <hub.var_dir>/instances/<id>.log past retention.
 */
#ifndef MH_LOCAL_JAIL_H
#define MH_LOCAL_JAIL_H

#include <stdint.h>
#include <sys/types.h>

#define LOCAL_JAIL_DEFAULT_USER "modelhub-model"

struct local_jail {
	int switch_user;  /* we are root: setuid to uid/gid before exec */
	uid_t uid;
	gid_t gid;
	char user[64];
	char dir[512];    /* the instance's own directory (cwd, HOME, TMPDIR) */
};

/* Parent, before fork: the user (hub.local_user; when unset
 * "modelhub-model", else "nobody"; never uid 0) and the instance's own
 * directory, made and given to that user (mode 0700). 0, or -1 with the
 * reason in why. */
int local_jail_prepare(struct local_jail *j, const char *var_dir, int64_t instance_id,
		       char *why, size_t why_size);

/* Child, after fork and before exec: /tmp and /var/tmp read-only and a
 * private /dev/shm (when a mount namespace can be made), cwd and
 * HOME/TMPDIR in the own directory, supplementary groups dropped, gid and uid switched. The
 * parent-death signal is cleared by the switch: the caller sets it after.
 * 0, or -1 with the reason written to logfd (the caller must not exec). */
int local_jail_enter(const struct local_jail *j, int logfd);

/* Remove an instance's own directory (files the model left; symlinks are
 * removed, never followed). */
void local_jail_remove_dir(const char *var_dir, int64_t instance_id);

/* Janitor: delete instance logs and directories not modified for
 * retention_days. The number removed, or -1 when the directory cannot be
 * read (no instances yet is 0). */
int local_jail_sweep(const char *var_dir, int retention_days);

#endif
