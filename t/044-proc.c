/* 044-proc — /proc and cgroup sampling: stat parsing, process-group CPU/RSS, dedicated memory cgroup, machine totals. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "metrics/proc.h"
#include "lib/tap.h"

/* Child: own process group, touches mib MiB, burns CPU for burn_ms, then
 * waits to be killed; a grandchild in the same group does the same. */
static volatile char *volatile keep;

static void touch(int mib)
{
	char *mem = malloc((size_t)mib << 20);

	for (size_t i = 0; mem && i < ((size_t)mib << 20); i += 4096)
		((volatile char *)mem)[i] = 1;
	keep = mem;
}

static pid_t spawn_group(int mib, int burn_ms, int fds[2])
{
	pid_t pid = fork();

	if (pid == 0) {
		int64_t end;
		volatile double x = 0;

		setpgid(0, 0);
		if (fork() == 0) {
			touch(mib);
			pause();
			_exit(0);
		}
		touch(mib);
		/* burn CPU time, not wall time: the machine may be busy */
		end = burn_ms;
		for (;;) {
			struct timespec ts;

			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
			if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= end)
				break;
			for (int i = 0; i < 100000; i++)
				x += 1.0;
		}
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	return pid;
}

int main(void)
{
	struct proc_entry e;
	struct proc_table t = {0};
	struct proc_machine m;
	double cpu;
	int64_t rss, start, ws, ooms;
	int n, fds[2];
	char c;
	pid_t g;

	log_init("t044");
	log_set_level(LOG_ERROR);
	ok(proc_parse_stat("123 (a b) c)) S 1 77 77 0 -1 4194560 100 0 0 0 250 50 10 20 20 0 1 0 500 1000000 256 18446744073709551615",
			   &e, 100, 1000000, 4096) == 0, "parse a stat line with ') ' in comm");
	is_int(e.pid, 123, "pid");
	is_int(e.pgrp, 77, "pgrp");
	is_dbl(e.cpu_s, 3.3, 1e-9, "utime+stime+cutime+cstime in seconds");
	is_int(e.start_ms, 1000000 + 5000, "start time from boot + ticks");
	is_int(e.rss_bytes, 256 * 4096, "rss bytes");
	ok(proc_parse_stat("garbage", &e, 100, 0, 4096) < 0, "garbage rejected");
	ok(proc_parse_stat("12 (x) S 1", &e, 100, 0, 4096) < 0, "short line rejected");

	ok(proc_scan(&t) == 0 && t.n > 3, "scan /proc (%zu processes)", t.n);
	n = proc_group_usage(&t, getpgrp(), NULL, NULL, NULL);
	ok(n >= 1, "our own group has members");
	is_int(proc_group_usage(&t, 999999999, &cpu, &rss, &start), 0, "unknown group: 0 members");

	ok(pipe(fds) == 0, "pipe");
	g = spawn_group(40, 600, fds);
	ok(read(fds[0], &c, 1) == 1, "group child burned CPU");
	usleep(50000);
	proc_scan(&t);
	n = proc_group_usage(&t, g, &cpu, &rss, &start);
	is_int(n, 2, "two processes in the group");
	ok(cpu >= 0.4 && cpu < 5, "group CPU counter %.2f s >= 0.4", cpu);
	ok(rss >= (int64_t)75 << 20, "group RSS %lld MiB >= 75 (2 x 40)", (long long)(rss >> 20));
	ok(start > mh_wall_ms() - 10000 && start <= mh_wall_ms() + 1000, "leader start time is recent");

	is_int(proc_cgroup_memory(getpid(), &ws, &ooms, NULL, 0), 1, "our own cgroup is not dedicated");
	is_int(proc_cgroup_memory(999999999, &ws, &ooms, NULL, 0), -1, "unknown pid -> -1");
	is_int(proc_cgroup_exclusive("/nonexistent", &t, g), -1, "no cgroup dir -> -1");

	/* a dedicated v1 memory cgroup, when this machine lets us make one */
	{
		char dir[128], file[160], pidbuf[32];
		FILE *f;

		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/memory/mh-t044-%d", (int)getpid());
		if (mkdir(dir, 0755) == 0) {
			snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
			f = fopen(file, "w");
			snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)g);
			ok(f && fputs(pidbuf, f) >= 0 && fclose(f) == 0, "moved the leader into a v1 cgroup");
			/* charge follows new allocations; touch fresh memory in the group */
			ws = -1;
			n = proc_cgroup_memory(g, &ws, &ooms, file, sizeof(file));
			is_int(n, 0, "dedicated cgroup found");
			ok(ws >= 0, "working set read (%lld bytes)", (long long)ws);
			ok(strstr(file, "mh-t044") != NULL, "path names the cgroup");
			is_int(ooms, 0, "no OOM kills");
			proc_scan(&t);
			is_int(proc_cgroup_exclusive(file, &t, g), 1, "cgroup holds only the group");
			{
				pid_t other = fork();

				if (other == 0) {
					pause();
					_exit(0);
				}
				snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)other);
				snprintf(file + strlen(file), sizeof(file) - strlen(file), "/cgroup.procs");
				f = fopen(file, "w");
				ok(f && fputs(pidbuf, f) >= 0 && fclose(f) == 0, "another process joins it");
				*strrchr(file, '/') = '\0';
				proc_scan(&t);
				is_int(proc_cgroup_exclusive(file, &t, g), 0, "cgroup shared -> 0");
				kill(other, SIGKILL);
				waitpid(other, NULL, 0);
			}
		} else {
			ok(1, "# SKIP no writable v1 memory cgroup (%s)", strerror(errno));
		}
		kill(-g, SIGKILL);
		waitpid(g, NULL, 0);
		usleep(100000);
		rmdir(dir);
	}
	proc_scan(&t);
	is_int(proc_group_usage(&t, g, NULL, NULL, NULL), 0, "killed group is gone");

	ok(proc_machine(&m) == 0, "machine totals");
	ok(m.ncpu >= 1 && m.cpu_busy_s > 0, "cpus %d busy %.0f s", m.ncpu, m.cpu_busy_s);
	ok(m.mem_total_bytes > m.mem_available_bytes && m.mem_available_bytes > 0, "meminfo");
	proc_table_free(&t);
	proc_table_free(&t);
	return done_testing();
}
