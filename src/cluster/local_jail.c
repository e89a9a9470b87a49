/*
 * local_jail.c — what a local model instance may do (see local_jail.h).
 *
 * Runs in: runners (local backend: local_jail_prepare in the parent,
 * local_jail_enter in the forked child), the janitor (local_jail_sweep).
 * Called by: local.c, janitor.c.
 * Owns: <hub.var_dir>/instances/<id>/, and removes instance logs and
 * directories past hub.retention_days.
 * Shared state: none.
 *
 * DESIGN (issue 17, finding 4)
 * - Registering a model is code execution by design: local_command is any
 *   program. What we bound is who runs it. A hub running as root runs every
 *   instance as hub.local_user (scripts/run-local creates
 *   "modelhub-model"); when the key is unset and that user does not exist,
 *   "nobody". uid 0 is refused whatever the configuration says. A hub that
 *   is not root runs instances as itself (it cannot switch).
 * - The instance's own directory (0700, owned by that user) is its cwd,
 *   HOME and TMPDIR. The chdir happens before the switch, so the directory
 *   is usable even when its parents are not searchable by that user (a
 *   0700 var_dir). Its log file is opened by the runner and inherited.
 * - The world-writable places, in a new mount namespace (root only): /tmp
 *   and /var/tmp read-only (still readable: a model or its data may live
 *   there), /dev/shm a fresh tmpfs of its own; the own directory, which may
 *   itself lie under /tmp, is bound onto itself writable. So the instance
 *   writes only its own directory and its own /dev/shm. Without a mount
 *   namespace (no CAP_SYS_ADMIN, e.g. in some containers) it keeps the
 *   host's, and its log says so.
 * - The switch drops supplementary groups first (setgroups), then gid, then
 *   uid, and checks that uid 0 cannot be regained.
 */
#include "cluster/local_jail.h"
#include "lib/config.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JAIL_TMPFS_OPTS "mode=1777,size=256m"

/* The user instances run as: 0, or -1 with why. */
static int jail_user(struct local_jail *j, char *why, size_t why_size)
{
	const char *cfg = cfg_str("hub.local_user", "");
	const char *name = *cfg ? cfg : LOCAL_JAIL_DEFAULT_USER;
	struct passwd *pw = getpwnam(name);

	if (!pw && !*cfg)
		pw = getpwnam(name = "nobody");
	if (!pw) {
		snprintf(why, why_size, "hub.local_user %s does not exist (scripts/run-local creates"
			 " %s; or name another unprivileged user)", name, LOCAL_JAIL_DEFAULT_USER);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(why, why_size, "hub.local_user %s is root (uid or gid 0): model processes"
			 " never run as root", name);
		return -1;
	}
	snprintf(j->user, sizeof j->user, "%s", name);
	j->uid = pw->pw_uid;
	j->gid = pw->pw_gid;
	return 0;
}

int local_jail_prepare(struct local_jail *j, const char *var_dir, int64_t instance_id,
		       char *why, size_t why_size)
{
	memset(j, 0, sizeof *j);
	snprintf(j->dir, sizeof j->dir, "%s/instances/%lld", var_dir, (long long)instance_id);
	j->switch_user = geteuid() == 0;
	if (j->switch_user && jail_user(j, why, why_size) < 0)
		return -1;
	local_jail_remove_dir(var_dir, instance_id); /* an id reused after a reset */
	if (mkdir(j->dir, 0700) < 0) {
		snprintf(why, why_size, "cannot make %s: %s", j->dir, strerror(errno));
		return -1;
	}
	if (j->switch_user && chown(j->dir, j->uid, j->gid) < 0) {
		snprintf(why, why_size, "cannot give %s to %s: %s", j->dir, j->user, strerror(errno));
		return -1;
	}
	return 0;
}

/* In a new mount namespace: /tmp and /var/tmp read-only, a fresh tmpfs on
 * /dev/shm, and the own directory (which may lie under /tmp) bound onto
 * itself writable. 0, or -1 logged (what was done stays: the namespace is
 * this process's alone). */
static int private_mounts(const struct local_jail *j, int logfd)
{
	static const char *const ro[] = {"/tmp", "/var/tmp"};
	const char *what = "namespace";

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
		what = ro[i];
		if (access(ro[i], F_OK) == 0 &&
		    (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
		     mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
			   NULL) < 0))
			goto fail;
	}
	what = "/dev/shm";
	if (access(what, F_OK) == 0 &&
	    mount("modelhub-shm", what, "tmpfs", MS_NOSUID | MS_NODEV, JAIL_TMPFS_OPTS) < 0)
		goto fail;
	what = j->dir;
	/* a bind mount inherits read-only from /tmp: remounted writable */
	if (mount(j->dir, j->dir, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, j->dir, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL) < 0)
		goto fail;
	return 0;
fail:
	dprintf(logfd, "modelhub: no private mounts (%s: %s)\n", what, strerror(errno));
	return -1;
}

int local_jail_enter(const struct local_jail *j, int logfd)
{
	/* without them, still unprivileged: logged, not fatal */
	if (j->switch_user)
		private_mounts(j, logfd);
	if (chdir(j->dir) < 0) {
		dprintf(logfd, "modelhub: cannot enter %s: %s\n", j->dir, strerror(errno));
		return -1;
	}
	setenv("HOME", j->dir, 1);
	setenv("TMPDIR", j->dir, 1);
	if (!j->switch_user)
		return 0;
	setenv("USER", j->user, 1);
	setenv("LOGNAME", j->user, 1);
	if (setgroups(0, NULL) < 0 || setgid(j->gid) < 0 || setuid(j->uid) < 0) {
		dprintf(logfd, "modelhub: cannot switch to user %s: %s\n", j->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		dprintf(logfd, "modelhub: still root after switching to %s\n", j->user);
		return -1;
	}
	dprintf(logfd, "modelhub: running as %s (uid %d) in %s\n", j->user, (int)j->uid, j->dir);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path); /* keep going whatever one entry does */
	return 0;
}

void local_jail_remove_dir(const char *var_dir, int64_t instance_id)
{
	char dir[512];

	snprintf(dir, sizeof dir, "%s/instances/%lld", var_dir, (long long)instance_id);
	/* FTW_PHYS: a symlink the model left is removed, not followed */
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* "<digits>.log" or "<digits>": the instance id, else -1. */
static long long instance_entry(const char *name)
{
	char *end;
	long long id = strtoll(name, &end, 10);

	if (end == name || id <= 0 || (*end && strcmp(end, ".log") != 0))
		return -1;
	return id;
}

int local_jail_sweep(const char *var_dir, int retention_days)
{
	char dir[512], path[800];
	time_t cut = time(NULL) - (time_t)retention_days * 86400;
	struct dirent *e;
	struct stat st;
	long long id;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/instances", var_dir);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		if ((id = instance_entry(e->d_name)) < 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (lstat(path, &st) < 0 || st.st_mtime >= cut)
			continue;
		if (S_ISDIR(st.st_mode))
			local_jail_remove_dir(var_dir, id);
		else if (unlink(path) < 0)
			continue;
		n++;
	}
	closedir(d);
	return n;
}
