/* 300-local-backend.c — the local instance backend (cluster/local.c) with a real demo model server:
 * start, readiness by /healthz, the HTTP client, logs, stop as a process group,
 * memory limit -> OOMKILLED, crash and exec failure -> FAILED, unwritable log dir, log tails,
 * and the kubernetes-only operations refused. */
#include "cluster/cluster.h"
#include "cluster/modelclient.h"
#include "lib/config.h"
#include "lib/log.h"
#include "t/lib/tap.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *srcdir(void)
{
	const char *s = getenv("top_srcdir");
	return s && *s ? s : ".";
}

/* Running (a zombie nobody reaped yet counts as gone). */
static int running(int pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int r = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')))
		r = p[2] != 'Z';
	fclose(f);
	return r;
}

/* Live (not zombie) children of this process. */
static int live_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL) {
		char path[300], buf[512], *p;
		FILE *f;
		int ppid = 0;
		char st = 0;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')) && sscanf(p + 2, "%c %d", &st, &ppid) == 2 &&
		    ppid == (int)getpid() && st != 'Z')
			n++;
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static void nap(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Poll until the instance is READY or EXITED (or timeout); returns its state. */
static enum cluster_state settle(struct cluster *c, const char *name, struct cluster_instance *ci,
				 int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (cluster_get(c, name, ci) != 0)
			return CLUSTER_EXITED;
		if (ci->state == CLUSTER_READY || ci->state == CLUSTER_EXITED)
			return ci->state;
		nap(100);
	}
	return ci->state;
}

/* Poll until the instance has exited (or timeout). */
static enum cluster_state until_exit(struct cluster *c, const char *name,
				     struct cluster_instance *ci, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 50) {
		if (cluster_get(c, name, ci) != 0 || ci->state == CLUSTER_EXITED)
			return CLUSTER_EXITED;
		nap(50);
	}
	return ci->state;
}

static int start(struct cluster *c, int64_t id, const char *const *cmd, int n, int mem_mib,
		 struct cluster_instance *ci)
{
	struct cluster_spec sp = {0};

	sp.instance_id = id;
	sp.model_id = "t300";
	sp.local_command = cmd;
	sp.ncommand = n;
	sp.memory_limit_mib = mem_mib;
	return cluster_create(c, &sp, ci);
}

int main(void)
{
	char models[512], var[] = "/tmp/mh-t300-XXXXXX";
	struct cluster_instance ci, ci2;
	struct buf b = BUF_INIT;
	struct cluster *c;
	struct mc *m;
	long st;
	int pid;

	log_init("t300");
	log_set_level(LOG_WARN);
	if (!mkdtemp(var))
		return 1;
	snprintf(models, sizeof models, "%s/models", srcdir());
	cfg_parse("", &(const char *){0}, &(int){0});
	cfg_set("hub.models_dir", models);
	cfg_set("hub.var_dir", var);
	c = cluster_new("local");
	m = mc_new();
	ok(c && m, "local backend and client created");
	ok(cluster_new("nosuch") == NULL, "unknown backend refused");

	{
		const char *cmd[] = {"/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e",
				     "--host", "{host}", "--port", "{port}"};
		is_int(start(c, 1, cmd, 8, 0, &ci), 0, "instance created");
		is_str(ci.name, "mh-1", "  named after the instance id");
		ok(strncmp(ci.address, "127.0.0.1:", 10) == 0, "  loopback address %s", ci.address);
		is_int(ci.state, CLUSTER_STARTING, "  starting");
		is_int(settle(c, "mh-1", &ci, 20000), CLUSTER_READY, "  ready by /healthz");
		ok(ci.ready_ms >= ci.started_ms && ci.ready_ms > 0, "  ready time recorded");
		pid = ci.pid;
		is_int(getpgid(pid), pid, "  runs in its own process group");
		is_int(mc_call(m, "POST", ci.address, "/run?orient=records", "[\"CCO\"]", 10000, &b, &st),
		       MC_OK, "  POST /run answered");
		is_int(st, 200, "  HTTP 200");
		ok(strstr(buf_cstr(&b), "mol_weight") != NULL, "  a record: %s", buf_cstr(&b));
		is_int(mc_call(m, "POST", ci.address, "/run", "[]", 10000, &b, &st), MC_OK, "empty batch answered");
		is_int(st, 422, "  422 like ersilia-pack");
		ok(mc_healthz(m, ci.address, 1000), "healthz via the client");
		buf_reset(&b);
		is_int(cluster_logs(c, "mh-1", &b, 1 << 20), 0, "logs readable");
		ok(strstr(buf_cstr(&b), "starting instance mh-1") != NULL, "  log file has our start line");
		ok(strstr(buf_cstr(&b), "listening") != NULL, "  and the server's output");
		is_int(cluster_delete(c, "mh-1", 5000), 0, "delete");
		cluster_get(c, "mh-1", &ci);
		is_int(ci.state, CLUSTER_EXITED, "  exited");
		is_str(cluster_term_name(ci.term), "STOPPED", "  reason STOPPED");
		ok(!running(pid), "  process gone");
		is_int(mc_call(m, "GET", ci.address, "/healthz", NULL, 1000, &b, &st), MC_CONN,
		       "  a call now reports the instance unreachable");
	}
	{
		/* memory limit: the load model allocates 40 MiB per input, limit 128 MiB */
		const char *cmd[] = {"/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
				     "--host", "{host}", "--port", "{port}", "--mib-per-input", "40",
				     "--cpu-per-input", "0"};
		start(c, 2, cmd, 12, 128, &ci);
		is_int(settle(c, "mh-2", &ci, 20000), CLUSTER_READY, "load model ready under a 128 MiB limit");
		{
			enum mc_rc rc = mc_call(m, "POST", ci.address, "/run",
						"[\"C\",\"CC\",\"CCC\",\"CCCC\",\"CCCCC\",\"C\",\"C\"]",
						20000, &b, &st);
			is_int(rc, MC_CONN, "  the call ends without an answer (%s)", mc_rc_name(rc));
		}
		is_int(until_exit(c, "mh-2", &ci, 10000), CLUSTER_EXITED, "  killed when it grows past the limit");
		is_str(cluster_term_name(ci.term), "OOMKILLED", "  reason OOMKILLED (%s)", ci.detail);
	}
	{
		const char *cmd[] = {"/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e",
				     "--host", "{host}", "--port", "{port}", "--crash-after-calls", "1"};
		start(c, 3, cmd, 10, 0, &ci);
		settle(c, "mh-3", &ci, 20000);
		is_int(mc_call(m, "POST", ci.address, "/run", "[\"C\"]", 10000, &b, &st), MC_CONN,
		       "a server crashing mid-call: connection error, not an HTTP answer");
		is_int(until_exit(c, "mh-3", &ci, 5000), CLUSTER_EXITED, "  exited");
		is_str(cluster_term_name(ci.term), "FAILED", "  reason FAILED (%s)", ci.detail);
	}
	{
		const char *cmd[] = {"/nonexistent/server", "{port}"};
		start(c, 4, cmd, 2, 0, &ci);
		is_int(settle(c, "mh-4", &ci, 5000), CLUSTER_EXITED, "exec failure: exited");
		is_int(ci.exit_code, 127, "  exit code 127");
		buf_reset(&b);
		cluster_logs(c, "mh-4", &b, 4096);
		ok(strstr(buf_cstr(&b), "exec /nonexistent/server failed") != NULL, "  cause in the log");
	}
	{
		/* a group with a child: stopping the leader stops the child too */
		const char *cmd[] = {"/bin/sh", "-c", "sleep 300 & echo child=$! ; sleep 300"};
		start(c, 5, cmd, 3, 0, &ci2);
		nap(300);
		buf_reset(&b);
		cluster_logs(c, "mh-5", &b, 4096);
		const char *p = strstr(buf_cstr(&b), "child=");
		int child = p ? atoi(p + 6) : 0;
		ok(child > 0, "group member started (pid %d)", child);
		cluster_delete(c, "mh-5", 2000);
		nap(100);
		ok(child > 0 && !running(child), "  stopped with the whole process group");
	}
	{
		/* the log file cannot be created: create fails, nothing is left running */
		const char *cmd[] = {"/bin/sleep", "300"};
		int running_before = live_children(), running_after;
		cfg_set("hub.var_dir", "/proc/modelhub-no-such-dir");
		ok(start(c, 6, cmd, 2, 0, &ci) < 0, "create fails when the log cannot be written");
		cfg_set("hub.var_dir", var);
		running_after = live_children();
		is_int(running_after, running_before, "  and starts nothing");
	}
	{
		/* the last lines of a log: the tail of the full text */
		struct buf t = BUF_INIT;
		const char *full, *last;
		buf_reset(&b);
		cluster_logs(c, "mh-1", &b, 1 << 20);
		full = buf_cstr(&b);
		last = full + strlen(full);
		for (int lines = 0; last > full; last--)
			if (last[-1] == '\n' && last != full + strlen(full) && ++lines == 2)
				break;
		buf_adds(&t, "kept:");
		is_int(cluster_logs_tail(c, "mh-1", &t, 1 << 20, 2), 0, "log tail readable");
		ok(strlen(full) > strlen(last), "  the full log is longer than two lines");
		is_str(buf_cstr(&t) + 5, last, "  two lines: the end of the full log");
		ok(strncmp(buf_cstr(&t), "kept:", 5) == 0, "  what was in the buffer is kept");
		buf_free(&t);
	}
	{
		/* kubernetes-only operations are refused, not faked */
		struct cluster_watch w;
		struct cluster_scrape sc;
		struct cluster_pod_row *rows = NULL;
		int n = 5;
		int64_t synced = 7;
		memset(&w, 0, sizeof w);
		memset(&sc, 0, sizeof sc);
		ok(cluster_watch(c, &w) < 0, "no pod watch locally");
		ok(cluster_pods(c, &rows, &n, &synced) < 0 && !rows && n == 0 && synced == 0,
		   "  no pod table (outputs cleared)");
		ok(cluster_reap(c, "mh-1", 1000) < 0, "  no reap");
		ok(cluster_scrape(c, &sc) < 0, "  no node scrape");
	}
	buf_free(&b);
	mc_free(m);
	cluster_free(c);
	{
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", var);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", var);
	}
	return done_testing();
}
