/*
 * proc.c — /proc and cgroup sampling for local model instances and the
 * machine (see proc.h).
 *
 * Runs in: the scraper. Called by: hubd/scraper.c. Owns: the entry array
 * of a struct proc_table.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "metrics/proc.h"

static int64_t boot_ms_cached;

static int read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = '\0';
	return (int)r;
}

static int64_t boot_ms(void)
{
	char buf[8192];
	const char *p;

	if (boot_ms_cached)
		return boot_ms_cached;
	if (read_small("/proc/stat", buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "\nbtime ");
	if (p)
		boot_ms_cached = strtoll(p + 7, NULL, 10) * 1000;
	return boot_ms_cached;
}

int proc_parse_stat(const char *line, struct proc_entry *out, long ticks, int64_t boot,
		    long page_size)
{
	/* pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime vsize rss ... ; comm may hold ' ' and ')' */
	const char *rp = strrchr(line, ')');
	unsigned long long utime, stime, start;
	long long cutime, cstime, rss;
	int pid, pgrp;
	char state;

	if (!rp || sscanf(line, "%d", &pid) != 1)
		return -1;
	if (sscanf(rp + 1,
		   " %c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld %*d %*d %*d %*d %llu %*u %lld",
		   &state, &pgrp, &utime, &stime, &cutime, &cstime, &start, &rss) != 8)
		return -1;
	out->zombie = state == 'Z' || state == 'X';
	if (out->zombie)
		rss = 0;
	out->pid = pid;
	out->pgrp = pgrp;
	out->cpu_s = (double)(utime + stime + (unsigned long long)(cutime > 0 ? cutime : 0) +
			      (unsigned long long)(cstime > 0 ? cstime : 0)) /
		     (double)ticks;
	out->start_ms = boot + (int64_t)(start * 1000ULL / (unsigned long long)ticks);
	out->rss_bytes = rss * page_size;
	return 0;
}

int proc_scan(struct proc_table *t)
{
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int64_t boot = boot_ms();
	DIR *d = opendir("/proc");
	struct dirent *de;
	char path[300], line[1024];

	if (!d) {
		log_error("proc scan: opendir /proc");
		return -1;
	}
	t->n = 0;
	t->at_ms = mh_wall_ms();
	while ((de = readdir(d)) != NULL) {
		struct proc_entry e;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (read_small(path, line, sizeof(line)) < 0)
			continue; /* exited meanwhile */
		if (proc_parse_stat(line, &e, ticks, boot, page) < 0)
			continue;
		e.at_ms = mh_wall_ms();
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 512;
			struct proc_entry *ne = realloc(t->e, cap * sizeof(*ne));

			if (!ne) {
				closedir(d);
				log_error("proc scan: out of memory");
				return -1;
			}
			t->e = ne;
			t->cap = cap;
		}
		t->e[t->n++] = e;
	}
	closedir(d);
	return 0;
}

void proc_table_free(struct proc_table *t)
{
	if (!t)
		return;
	free(t->e);
	t->e = NULL;
	t->n = t->cap = 0;
}

int64_t proc_group_at(const struct proc_table *t, pid_t pgid)
{
	int64_t at = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].pgrp == pgid && !t->e[i].zombie && t->e[i].at_ms > at)
			at = t->e[i].at_ms;
	return at ? at : t->at_ms;
}

int proc_group_usage(const struct proc_table *t, pid_t pgid, double *cpu_s, int64_t *rss_bytes,
		     int64_t *leader_start_ms)
{
	double cpu = 0;
	int64_t rss = 0, start = 0;
	int n = 0;

	for (size_t i = 0; i < t->n; i++) {
		const struct proc_entry *e = &t->e[i];

		if (e->pgrp != pgid || e->zombie)
			continue;
		n++;
		cpu += e->cpu_s;
		rss += e->rss_bytes;
		if (e->pid == pgid)
			start = e->start_ms;
	}
	if (cpu_s)
		*cpu_s = cpu;
	if (rss_bytes)
		*rss_bytes = rss;
	if (leader_start_ms)
		*leader_start_ms = start;
	return n;
}

/* ---- cgroups ---- */

/* Is ctrl one of the comma separated controllers of list? */
static int has_ctrl(const char *list, const char *ctrl)
{
	size_t k = strlen(ctrl);

	for (const char *tok = list; tok && *tok;) {
		const char *comma = strchr(tok, ',');
		size_t len = comma ? (size_t)(comma - tok) : strlen(tok);

		if (len == k && memcmp(tok, ctrl, k) == 0)
			return 1;
		tok = comma ? comma + 1 : NULL;
	}
	return 0;
}

/* The cgroup path of pid for controller ctrl from /proc/<pid>/cgroup: the
 * v1 "N:...ctrl...:/p" line preferred (its controller list, the v1 mount
 * directory's name, into list when given), else the v2 "0::/p" line. *v2
 * tells which. 0 / -1. */
static int cgroup_of_ctrl(const char *pidstr, const char *ctrl, char *out, size_t n, int *v2,
			  char *list, size_t ln)
{
	char path[64], buf[4096], *line, *save = NULL;
	char v2path[512] = "";

	snprintf(path, sizeof(path), "/proc/%s/cgroup", pidstr);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = '\0';
		if (c1[1] == '\0' && strncmp(line, "0:", 2) == 0) {
			snprintf(v2path, sizeof(v2path), "%s", c2 + 1);
			continue;
		}
		if (has_ctrl(c1 + 1, ctrl)) {
			snprintf(out, n, "%s", c2 + 1);
			if (list)
				snprintf(list, ln, "%s", c1 + 1);
			*v2 = 0;
			return 0;
		}
	}
	if (v2path[0]) {
		snprintf(out, n, "%s", v2path);
		*v2 = 1;
		return 0;
	}
	return -1;
}

static int cgroup_of(const char *pidstr, char *out, size_t n, int *v2)
{
	return cgroup_of_ctrl(pidstr, "memory", out, n, v2, NULL, 0);
}

static int64_t read_i64(const char *path)
{
	char buf[64];

	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	if (strncmp(buf, "max", 3) == 0)
		return -1;
	return strtoll(buf, NULL, 10);
}

/* Value of "key N" lines in a flat keyed file, -1 if absent. */
static int64_t read_key(const char *path, const char *key)
{
	char buf[8192];
	size_t k = strlen(key);

	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	for (char *p = buf; p && *p;) {
		if (strncmp(p, key, k) == 0 && p[k] == ' ')
			return strtoll(p + k + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

int proc_cgroup_memory(pid_t pid, int64_t *ws_bytes, int64_t *oom_kills, char *out_path,
		       size_t path_len)
{
	char pidstr[24], mine[512], theirs[512], dir[1100], file[1200];
	int v2a = 0, v2b = 0;
	int64_t usage, inactive;

	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	if (cgroup_of(pidstr, theirs, sizeof(theirs), &v2b) < 0)
		return -1;
	if (cgroup_of("self", mine, sizeof(mine), &v2a) < 0)
		mine[0] = '\0';
	if (v2a == v2b && strcmp(mine, theirs) == 0)
		return 1; /* shares our cgroup: not a dedicated one */
	if (strcmp(theirs, "/") == 0)
		return 1;
	if (v2b)
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", theirs);
	else
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/memory%s", theirs);
	snprintf(file, sizeof(file), "%s/%s", dir, v2b ? "memory.current" : "memory.usage_in_bytes");
	usage = read_i64(file);
	if (usage < 0)
		return 1; /* no memory controller there */
	snprintf(file, sizeof(file), "%s/memory.stat", dir);
	inactive = read_key(file, v2b ? "inactive_file" : "total_inactive_file");
	if (inactive > 0 && inactive < usage)
		usage -= inactive;
	*ws_bytes = usage;
	if (oom_kills) {
		snprintf(file, sizeof(file), "%s/%s", dir, v2b ? "memory.events" : "memory.oom_control");
		*oom_kills = read_key(file, "oom_kill");
		if (*oom_kills < 0)
			*oom_kills = 0;
	}
	if (out_path)
		snprintf(out_path, path_len, "%s", dir);
	return 0;
}

int proc_cgroup_exclusive(const char *cgroup_dir, const struct proc_table *t, pid_t pgid)
{
	char path[1200], line[32];
	FILE *f;
	int rc = 1;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup_dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (rc == 1 && fgets(line, sizeof(line), f)) {
		pid_t pid = (pid_t)atoi(line);
		int found = 0;

		for (size_t i = 0; i < t->n && !found; i++)
			if (t->e[i].pid == pid) {
				found = 1;
				if (t->e[i].pgrp != pgid)
					rc = 0;
			}
		/* a pid the scan did not see (started since) proves nothing */
	}
	fclose(f);
	return rc;
}

/* ---- machine ---- */

int proc_machine(struct proc_machine *m)
{
	char buf[8192];
	unsigned long long v[10] = {0};
	long ticks = sysconf(_SC_CLK_TCK);
	unsigned long long busy;
	int64_t total, avail;

	memset(m, 0, sizeof(*m));
	m->at_ms = mh_wall_ms();
	if (read_small("/proc/stat", buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) < 4) {
		log_error("proc machine: /proc/stat");
		return -1;
	}
	/* user nice system idle iowait irq softirq steal: busy = all but idle+iowait */
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	m->cpu_busy_s = (double)busy / (double)ticks;
	m->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (read_small("/proc/meminfo", buf, sizeof(buf)) < 0) {
		log_error("proc machine: /proc/meminfo");
		return -1;
	}
	total = avail = -1;
	{
		char *p = strstr(buf, "MemTotal:");

		if (p)
			total = strtoll(p + 9, NULL, 10) * 1024;
		p = strstr(buf, "MemAvailable:");
		if (p)
			avail = strtoll(p + 13, NULL, 10) * 1024;
	}
	if (total <= 0 || avail < 0) {
		log_error_x("proc machine: MemTotal/MemAvailable missing");
		return -1;
	}
	m->mem_total_bytes = total;
	m->mem_available_bytes = avail;
	return 0;
}

/* ---- CPU throttling (CFS bandwidth) ---- */

int proc_cpu_stat_parse(const char *text, double *periods, double *throttled)
{
	int got = 0;

	for (const char *p = text; p && *p;) {
		if (strncmp(p, "nr_periods ", 11) == 0) {
			*periods = strtod(p + 11, NULL);
			got |= 1;
		} else if (strncmp(p, "nr_throttled ", 13) == 0) {
			*throttled = strtod(p + 13, NULL);
			got |= 2;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return got == 3 ? 0 : -1;
}

/* The directory of pid's CPU cgroup when it is not the caller's own nor
 * the root: 0 with dir set, 1 none dedicated, -1 unknown. */
static int cpu_cgroup_dir(pid_t pid, char *dir, size_t n)
{
	char pidstr[24], mine[512], theirs[512], list[128] = "";
	int v2a = 0, v2b = 0;
	struct stat st;

	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	if (cgroup_of_ctrl(pidstr, "cpu", theirs, sizeof(theirs), &v2b, list, sizeof(list)) < 0)
		return -1;
	if (cgroup_of_ctrl("self", "cpu", mine, sizeof(mine), &v2a, NULL, 0) < 0)
		mine[0] = '\0';
	if ((v2a == v2b && strcmp(mine, theirs) == 0) || strcmp(theirs, "/") == 0)
		return 1;
	if (v2b)
		snprintf(dir, n, "/sys/fs/cgroup%s", theirs);
	else
		snprintf(dir, n, "/sys/fs/cgroup/%s%s", list, theirs);
	if (!v2b && stat(dir, &st) < 0)
		snprintf(dir, n, "/sys/fs/cgroup/cpu%s", theirs);
	return 0;
}

int proc_cgroup_cpu_stat(pid_t pid, const struct proc_table *t, pid_t pgid, double *periods,
			 double *throttled)
{
	char dir[1100], file[1200], buf[4096];

	if (cpu_cgroup_dir(pid, dir, sizeof(dir)) != 0)
		return 0;
	/* a cgroup shared with other processes counts their throttling too */
	if (proc_cgroup_exclusive(dir, t, pgid) != 1)
		return 0;
	snprintf(file, sizeof(file), "%s/cpu.stat", dir);
	if (read_small(file, buf, sizeof(buf)) < 0)
		return 0;
	return proc_cpu_stat_parse(buf, periods, throttled) == 0 ? 1 : 0;
}
