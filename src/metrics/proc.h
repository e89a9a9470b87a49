/*
 * proc.h — sampling of local processes, their memory cgroups and the
 * machine from /proc and /sys/fs/cgroup (local backend metrics).
 *
 * Runs in: the scraper (every metrics.interval_ms). Called by:
 * hubd/scraper.c, t/044-proc.c. Owns: the arrays of one /proc scan
 * (struct proc_table, freed by proc_table_free).
 *
 * CPU is reported as a cumulative counter in seconds (utime+stime of every
 * live member of a process group, plus cutime+cstime of what they reaped),
 * so the segment turns deltas into millicores; a member that exits unreaped
 * makes the counter go back, which the segment treats as a new baseline.
 */
#ifndef MH_PROC_H
#define MH_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_entry {
	pid_t pid, pgrp;
	double cpu_s;           /* utime + stime + cutime + cstime, seconds */
	int64_t start_ms;       /* wall clock */
	int64_t rss_bytes;
	int zombie;             /* exited, not reaped: not counted in groups */
	int64_t at_ms;          /* wall clock when its stat was read (proc_scan) */
};

struct proc_table {
	struct proc_entry *e;
	size_t n, cap;
	int64_t at_ms;          /* wall clock of the scan */
};

/* Read every /proc/<pid>/stat. 0 / -1. Reuses t's memory. */
int proc_scan(struct proc_table *t);
void proc_table_free(struct proc_table *t);

/* Sum over the live (non-zombie) processes whose process group is pgid. Returns the number of
 * live members (0: the group is gone). Outputs may be NULL. */
int proc_group_usage(const struct proc_table *t, pid_t pgid, double *cpu_s, int64_t *rss_bytes,
		     int64_t *leader_start_ms);
/* When the group's counters were read: the latest at_ms of its members
 * (t->at_ms when it has none). A scan of a busy machine's /proc takes long
 * and can be descheduled midway; a CPU rate over the time of the scan's
 * start would count that delay (a 1 s sample read 300 ms late shows 130 %
 * of the usage, the next one 70 %). */
int64_t proc_group_at(const struct proc_table *t, pid_t pgid);

/* Memory working set of pid's memory cgroup, when it is not the cgroup the
 * caller itself runs in (i.e. a dedicated one): v1 usage_in_bytes -
 * total_inactive_file, v2 memory.current - inactive_file. 0 found, 1 no
 * dedicated cgroup, -1 error. *oom_kills gets the cgroup's oom_kill count
 * (may be NULL). path (may be NULL) receives the cgroup directory. */
int proc_cgroup_memory(pid_t pid, int64_t *ws_bytes, int64_t *oom_kills, char *path,
		       size_t path_len);

/* 1 when every process listed in <cgroup_dir>/cgroup.procs belongs to
 * process group pgid (per the scan t), 0 when another process shares the
 * cgroup (its working set would not be the instance's alone), -1 on error. */
int proc_cgroup_exclusive(const char *cgroup_dir, const struct proc_table *t, pid_t pgid);

/* CFS bandwidth counters of pid's CPU cgroup (v1 cpu controller or v2
 * unified cpu.stat: nr_periods, nr_throttled), only when that cgroup is a
 * dedicated one holding process group pgid alone (per the scan t): the
 * hub's own or a shared cgroup would count other processes' throttling.
 * 1 read, 0 no dedicated cgroup or no CPU quota counters. */
int proc_cgroup_cpu_stat(pid_t pid, const struct proc_table *t, pid_t pgid, double *periods,
			 double *throttled);
/* nr_periods and nr_throttled from a cpu.stat text (exposed for tests).
 * 0 both found, -1 otherwise. */
int proc_cpu_stat_parse(const char *text, double *periods, double *throttled);

struct proc_machine {
	double cpu_busy_s;      /* non-idle CPU seconds since boot (all CPUs) */
	int ncpu;
	int64_t mem_total_bytes;
	int64_t mem_available_bytes;
	int64_t at_ms;
};

/* /proc/stat and /proc/meminfo. 0 / -1. */
int proc_machine(struct proc_machine *m);

/* Parse one /proc/<pid>/stat line (exposed for tests). 0 / -1. */
int proc_parse_stat(const char *line, struct proc_entry *out, long ticks, int64_t boot_ms,
		    long page_size);

#endif
