/*
 * local.c — the local backend: a model instance is a child process of the
 * calling process, running the model's server on a free loopback port.
 *
 * Runs in: runners (each owns the instances it started: it is their parent
 * and reaps them). Called by: cluster.c dispatch.
 * Owns: the table of started processes, their log files
 * (<hub.var_dir>/instances/<instance id>.log) and memory cgroups.
 * Shared state: none here; the runner mirrors state into model_instance.
 *
 * DESIGN
 * - The command is the model's local_command argv template with {host},
 *   {port}, {models_dir} and {model} substituted; it runs in its own session
 *   (setsid), so stopping an instance signals the whole process group:
 *   SIGTERM, then SIGKILL after the grace period.
 * - PR_SET_PDEATHSIG(SIGKILL) ties the model process to its runner: a runner
 *   that dies takes its instances with it (the rows are then marked LOST).
 * - Memory limit: a cgroup when one is writable — v2 (memory.max under
 *   /sys/fs/cgroup/modelhub/) or v1 (/sys/fs/cgroup/memory/modelhub/
 *   <name>-<owner pid>/memory.limit_in_bytes; the owner's pid keeps hubs of
 *   different databases on one machine apart, as instance ids repeat); the
 *   child joins it before exec. Otherwise get()
 *   watches the group leader's RSS and kills it at the limit. Either way an
 *   instance killed at its limit ends OOMKILLED: the cgroup's oom_kill
 *   counter (v1 memory.oom_control, v2 memory.events) or our own RSS kill
 *   tells it apart from other deaths.
 * - Who runs it (local_jail.c): never root. A root hub runs instances as
 *   hub.local_user in their own directory <hub.var_dir>/instances/<id>/
 *   with private /tmp; the program must be in hub.local_command_dirs when
 *   that is set. Directories and logs go after hub.retention_days
 *   (janitor), an exited instance's directory when it is forgotten.
 * - Readiness is GET /healthz only (ersilia-pack's /models/status always
 *   says NOT_READY), by the caller's probe when it set one
 *   (cluster_set_probe: the runner's, on its event loop), else by our own
 *   blocking client.
 */
#include "cluster/cluster.h"
#include "cluster/local_jail.h"
#include "cluster/modelclient.h"
#include "lib/clock.h"
#include "lib/cmdpath.h"
#include "lib/config.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MH_DATADIR
#define MH_DATADIR "/usr/local/share/modelhub"
#endif

#define LOCAL_MAX 1024          /* instances of one process: a runner runs hundreds at once (issue 15) */
#define LOCAL_PROBE_MS 800       /* one readiness probe */
#define LOCAL_FORGET_MS 600000   /* drop exited entries after 10 min */
#define LOCAL_SWEEP_MS 3600000   /* old instance files: once an hour */

struct lproc {
	int used;
	char name[64];
	int64_t instance_id;
	pid_t pid;
	char address[64];
	char log_path[600];
	char cgroup[512];      /* empty: no cgroup, RSS watch */
	int cgroup_v2;
	int64_t limit_bytes;   /* 0: none */
	int stopping;          /* we sent SIGTERM/SIGKILL */
	int rss_killed;        /* we killed it at the limit */
	enum cluster_state state;
	enum cluster_term term;
	int exit_code, exit_signal;
	int64_t started_ms, ready_ms, exited_ms, mem_bytes;
	char detail[256];
	pid_t parent;          /* the runner, for the forked child's check */
};

struct local {
	struct lproc p[LOCAL_MAX];
	struct mc *mc;
};

static struct lproc *find(struct local *l, const char *name)
{
	for (int i = 0; i < LOCAL_MAX; i++)
		if (l->p[i].used && strcmp(l->p[i].name, name) == 0)
			return &l->p[i];
	return NULL;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Replace {host} {port} {models_dir} {model} in one argv element. */
static char *subst(const char *tpl, const char *host, int port, const char *models_dir,
		   const char *model)
{
	struct buf b = BUF_INIT;
	char portbuf[16];

	snprintf(portbuf, sizeof portbuf, "%d", port);
	for (const char *s = tpl; *s;) {
		if (strncmp(s, "{host}", 6) == 0) {
			buf_adds(&b, host);
			s += 6;
		} else if (strncmp(s, "{port}", 6) == 0) {
			buf_adds(&b, portbuf);
			s += 6;
		} else if (strncmp(s, "{models_dir}", 12) == 0) {
			buf_adds(&b, models_dir);
			s += 12;
		} else if (strncmp(s, "{model}", 7) == 0) {
			buf_adds(&b, model);
			s += 7;
		} else {
			buf_addc(&b, *s++);
		}
	}
	buf_cstr(&b);
	if (b.oom) {
		buf_free(&b);
		return NULL;
	}
	if (!b.data)
		return strdup("");
	return buf_steal(&b);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int64_t read_kv(const char *path, const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	int64_t v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			v = strtoll(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Make a memory cgroup for p; leaves p->cgroup empty when none is writable. */
static void cgroup_make(struct lproc *p)
{
	char path[600], val[32], name[sizeof p->name];
	struct stat st;

	/* a copy: GCC cannot tell p->name and p->cgroup apart in snprintf */
	memcpy(name, p->name, sizeof name);
	p->cgroup[0] = '\0';
	if (p->limit_bytes <= 0)
		return;
	snprintf(val, sizeof val, "%lld", (long long)p->limit_bytes);
	if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
		/* v2: a modelhub subtree with the memory controller delegated */
		write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
		mkdir("/sys/fs/cgroup/modelhub", 0755);
		write_file("/sys/fs/cgroup/modelhub/cgroup.subtree_control", "+memory");
		snprintf(p->cgroup, sizeof p->cgroup, "/sys/fs/cgroup/modelhub/%s-%d", name,
			 (int)getpid());
		p->cgroup_v2 = 1;
		if (mkdir(p->cgroup, 0755) < 0 && errno != EEXIST)
			goto none;
		snprintf(path, sizeof path, "%s/memory.max", p->cgroup);
		if (write_file(path, val) < 0)
			goto none;
		snprintf(path, sizeof path, "%s/memory.swap.max", p->cgroup);
		write_file(path, "0");
		return;
	}
	if (stat("/sys/fs/cgroup/memory", &st) == 0) {
		mkdir("/sys/fs/cgroup/memory/modelhub", 0755);
		snprintf(p->cgroup, sizeof p->cgroup, "/sys/fs/cgroup/memory/modelhub/%s-%d", name,
			 (int)getpid());
		p->cgroup_v2 = 0;
		if (mkdir(p->cgroup, 0755) < 0 && errno != EEXIST)
			goto none;
		snprintf(path, sizeof path, "%s/memory.limit_in_bytes", p->cgroup);
		if (write_file(path, val) < 0)
			goto none;
		/* without a swap limit the process would swap instead of dying */
		snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes", p->cgroup);
		write_file(path, val);
		return;
	}
	return;
none:
	log_warn("local instance=%s msg=\"memory cgroup not writable, watching RSS\"", p->name);
	rmdir(p->cgroup);
	p->cgroup[0] = '\0';
}

static int64_t cgroup_oom_kills(const struct lproc *p)
{
	char path[600];

	if (!p->cgroup[0])
		return 0;
	if (p->cgroup_v2) {
		snprintf(path, sizeof path, "%s/memory.events", p->cgroup);
		return read_kv(path, "oom_kill");
	}
	snprintf(path, sizeof path, "%s/memory.oom_control", p->cgroup);
	return read_kv(path, "oom_kill");
}

static int64_t cgroup_usage(const struct lproc *p)
{
	char path[600], line[64];
	FILE *f;
	int64_t v = 0;

	snprintf(path, sizeof path, "%s/%s", p->cgroup,
		 p->cgroup_v2 ? "memory.current" : "memory.usage_in_bytes");
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(line, sizeof line, f))
		v = strtoll(line, NULL, 10);
	fclose(f);
	return v;
}

static void cgroup_remove(struct lproc *p)
{
	if (!p->cgroup[0])
		return;
	/* the group is empty once every member was reaped; retry briefly */
	for (int i = 0; i < 20 && rmdir(p->cgroup) < 0 && errno == EBUSY; i++) {
		struct timespec ts = {0, 25 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int64_t proc_rss(pid_t pid)
{
	char path[64];
	long pages = 0, rss = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

/* In the forked child: never returns. */
static _Noreturn void child_exec(struct lproc *p, const struct local_jail *j, char **argv,
				  int logfd)
{
	sigset_t none;
	int devnull;
	char pidtext[32];

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	if (p->cgroup[0]) {
		char path[600];
		snprintf(path, sizeof path, "%s/cgroup.procs", p->cgroup);
		snprintf(pidtext, sizeof pidtext, "%d", (int)getpid());
		if (write_file(path, pidtext) < 0)
			dprintf(logfd, "modelhub: could not join cgroup %s: %s\n", p->cgroup,
				strerror(errno));
	}
	if (local_jail_enter(j, logfd) < 0)
		_exit(126);
	/* after the user switch, which clears it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != p->parent)
		_exit(126); /* the runner died before the signal was armed */
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0)
		dup2(devnull, 0);
	dup2(logfd, 1);
	dup2(logfd, 2);
	closefrom(3);
	execvp(argv[0], argv);
	dprintf(2, "modelhub: exec %s failed: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void forget_old(struct local *l)
{
	int64_t now = mh_mono_ms();

	for (int i = 0; i < LOCAL_MAX; i++)
		if (l->p[i].used && l->p[i].state == CLUSTER_EXITED &&
		    now - l->p[i].exited_ms > LOCAL_FORGET_MS) {
			local_jail_remove_dir(cfg_str("hub.var_dir", "var"), l->p[i].instance_id);
			l->p[i].used = 0;
		}
}

static void fill(const struct lproc *p, struct cluster_instance *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", p->name);
	snprintf(out->address, sizeof out->address, "%s", p->address);
	gethostname(out->node, sizeof out->node - 1);
	out->instance_id = p->instance_id;
	out->state = p->state;
	out->term = p->term;
	out->pid = (int)p->pid;
	out->exit_code = p->exit_code;
	out->exit_signal = p->exit_signal;
	out->started_ms = p->started_ms;
	out->ready_ms = p->ready_ms;
	out->mem_bytes = p->mem_bytes;
	snprintf(out->detail, sizeof out->detail, "%s", p->detail);
}

/* Instance logs and directories past hub.retention_days, on this machine
 * (each runner sweeps its var_dir at most once an hour, when it starts an
 * instance: every machine that runs local instances is covered). */
static void sweep_old_files(void)
{
	static int64_t last_ms;
	int64_t now = mh_mono_ms();
	int days = (int)cfg_int("hub.retention_days", 7), n;

	if (last_ms && now - last_ms < LOCAL_SWEEP_MS)
		return;
	last_ms = now;
	n = local_jail_sweep(cfg_str("hub.var_dir", "var"), days < 1 ? 1 : days);
	if (n > 0)
		log_info("local files=%d days=%d msg=\"old instance logs and directories removed\"", n,
			 days);
}

/* A free entry of the table (exited ones forgotten first), or NULL. */
static struct lproc *slot_take(struct local *l)
{
	forget_old(l);
	sweep_old_files();
	for (int i = 0; i < LOCAL_MAX; i++)
		if (!l->p[i].used)
			return &l->p[i];
	return NULL;
}

/* <hub.var_dir>/instances/<instance id>.log, opened for appending into
 * p->log_path. The fd, or -1 (logged). */
static int log_open(struct lproc *p, int64_t instance_id)
{
	const char *var_dir = cfg_str("hub.var_dir", "var");
	char dir[400];
	int fd;

	snprintf(dir, sizeof dir, "%s/instances", var_dir);
	mkdir(var_dir, 0755);
	mkdir(dir, 0755);
	snprintf(p->log_path, sizeof p->log_path, "%s/%lld.log", dir, (long long)instance_id);
	fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		log_error("local instance=%s path=%s msg=\"cannot open log\"", p->name, p->log_path);
	return fd;
}

static void argv_free(char **argv)
{
	for (int i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* The command: the model's template (or the built-in demo server of that
 * name) with {host} {port} {models_dir} {model} substituted. NULL-ended,
 * free with argv_free; NULL on allocation failure. */
static char **argv_make(const struct cluster_spec *spec, int port)
{
	static const char *const demo[] = {"/usr/bin/python3", "{models_dir}/serve.py", "--model",
					   "{model}", "--host", "{host}", "--port", "{port}"};
	const char *models_dir = cfg_str("hub.models_dir", MH_DATADIR "/models");
	const char *const *tpl = spec->local_command;
	int ntpl = spec->ncommand;
	char **argv;

	if (!tpl || ntpl <= 0) {
		tpl = demo;
		ntpl = (int)(sizeof demo / sizeof demo[0]);
	}
	argv = calloc((size_t)ntpl + 1, sizeof *argv);
	for (int i = 0; argv && i < ntpl; i++)
		if (!(argv[i] = subst(tpl[i], "127.0.0.1", port, models_dir, spec->model_id))) {
			argv_free(argv);
			return NULL;
		}
	return argv;
}

/* Fork the instance (memory cgroup made first). 0, -1 (logged). */
static int spawn(struct lproc *p, const struct local_jail *j, char **argv, int logfd,
		 int memory_limit_mib)
{
	pid_t pid;

	p->limit_bytes = memory_limit_mib > 0 ? (int64_t)memory_limit_mib << 20 : 0;
	cgroup_make(p);
	p->parent = getpid();
	dprintf(logfd, "modelhub: starting instance %s on %s (memory limit %d MiB, %s)\n", p->name,
		p->address, memory_limit_mib,
		p->cgroup[0] ? (p->cgroup_v2 ? "cgroup v2" : "cgroup v1") :
		p->limit_bytes ? "rss watch" : "none");
	pid = fork();
	if (pid < 0) {
		log_error("local instance=%s msg=\"fork failed\"", p->name);
		cgroup_remove(p);
		return -1;
	}
	if (pid == 0)
		child_exec(p, j, argv, logfd);
	setpgid(pid, pid); /* also done by setsid() in the child; closes the race */
	p->used = 1;
	p->pid = pid;
	p->state = CLUSTER_STARTING;
	p->exit_code = -1;
	p->started_ms = mh_wall_ms();
	return 0;
}

/* May this instance start: its program in hub.local_command_dirs, its
 * user and own directory ready? 0, or -1 (logged, and told in its log). */
static int may_start(struct lproc *p, const struct cluster_spec *spec, char **argv,
		     struct local_jail *j, int logfd)
{
	const char *var_dir = cfg_str("hub.var_dir", "var");
	char why[700];

	if (!cmdpath_allowed(argv[0], cfg_str("hub.local_command_dirs", ""),
			     cfg_str("hub.models_dir", MH_DATADIR "/models"), why, sizeof why) ||
	    local_jail_prepare(j, var_dir, spec->instance_id, why, sizeof why) < 0) {
		dprintf(logfd, "modelhub: not starting instance %s: %s\n", p->name, why);
		log_error_x("local instance=%s model=%s msg=\"not started\" why=\"%s\"", p->name,
			    spec->model_id, why);
		return -1;
	}
	return 0;
}

static int local_create(struct cluster *c, const struct cluster_spec *spec, struct cluster_instance *out)
{
	struct lproc *p = slot_take(c->priv);
	struct local_jail j;
	char **argv = NULL;
	int port, logfd, rc = -1;

	if (!p) {
		log_error_x("local model=%s msg=\"too many instances in this process\"", spec->model_id);
		return -1;
	}
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "mh-%lld", (long long)spec->instance_id);
	p->instance_id = spec->instance_id;
	port = free_port();
	if (port < 0) {
		log_error("local instance=%s msg=\"no free port\"", p->name);
		return -1;
	}
	snprintf(p->address, sizeof p->address, "127.0.0.1:%d", port);
	logfd = log_open(p, spec->instance_id);
	if (logfd < 0)
		return -1;
	argv = argv_make(spec, port);
	if (argv && may_start(p, spec, argv, &j, logfd) == 0 &&
	    spawn(p, &j, argv, logfd, spec->memory_limit_mib) == 0) {
		fill(p, out);
		log_info("local instance=%s model=%s pid=%d address=%s cgroup=%s user=%s"
			 " msg=\"started\"", p->name, spec->model_id, (int)p->pid, p->address,
			 p->cgroup[0] ? p->cgroup : "-", j.switch_user ? j.user : "(self)");
		rc = 0;
	}
	argv_free(argv);
	close(logfd);
	return rc;
}

/* Record an exit status collected by waitpid. */
static void on_exit_status(struct lproc *p, int st)
{
	int64_t ooms = cgroup_oom_kills(p);

	p->state = CLUSTER_EXITED;
	p->exited_ms = mh_mono_ms();
	if (WIFEXITED(st)) {
		p->exit_code = WEXITSTATUS(st);
		p->exit_signal = 0;
	} else if (WIFSIGNALED(st)) {
		p->exit_signal = WTERMSIG(st);
	}
	if (p->rss_killed || (ooms > 0 && p->exit_signal == SIGKILL) ||
	    (ooms > 0 && !p->stopping)) {
		p->term = CLUSTER_TERM_OOMKILLED;
		snprintf(p->detail, sizeof p->detail, "killed at memory limit %lld MiB",
			 (long long)(p->limit_bytes >> 20));
	} else if (p->stopping) {
		p->term = CLUSTER_TERM_STOPPED;
		snprintf(p->detail, sizeof p->detail, "stopped");
	} else if (p->exit_signal) {
		p->term = CLUSTER_TERM_FAILED;
		snprintf(p->detail, sizeof p->detail, "killed by signal %d", p->exit_signal);
	} else if (p->exit_code == 0) {
		p->term = CLUSTER_TERM_COMPLETED;
		snprintf(p->detail, sizeof p->detail, "exited 0");
	} else {
		p->term = CLUSTER_TERM_FAILED;
		snprintf(p->detail, sizeof p->detail, "exited with code %d", p->exit_code);
	}
	/* stragglers of the group (a server's workers) go with the leader */
	kill(-p->pid, SIGKILL);
	cgroup_remove(p);
	log_info("local instance=%s pid=%d term=%s detail=\"%s\" msg=\"exited\"", p->name,
		 (int)p->pid, cluster_term_name(p->term), p->detail);
}

static void set_ready(struct lproc *p)
{
	p->state = CLUSTER_READY;
	p->ready_ms = mh_wall_ms();
	log_info("local instance=%s msg=\"ready\"", p->name);
}

static void poll_one(struct local *l, struct lproc *p, int probe)
{
	int st;
	pid_t r;

	if (p->state == CLUSTER_EXITED)
		return;
	r = waitpid(p->pid, &st, WNOHANG);
	if (r == p->pid) {
		on_exit_status(p, st);
		return;
	}
	if (r < 0 && errno == ECHILD) {
		/* not our child any more (should not happen): treat as lost */
		p->state = CLUSTER_EXITED;
		p->term = CLUSTER_TERM_FAILED;
		p->exited_ms = mh_mono_ms();
		snprintf(p->detail, sizeof p->detail, "process vanished");
		return;
	}
	p->mem_bytes = p->cgroup[0] ? cgroup_usage(p) : proc_rss(p->pid);
	if (!p->cgroup[0] && p->limit_bytes > 0 && p->mem_bytes > p->limit_bytes && !p->rss_killed) {
		log_warn_x("local instance=%s rss_mib=%lld limit_mib=%lld msg=\"over memory limit, killing\"",
			   p->name, (long long)(p->mem_bytes >> 20), (long long)(p->limit_bytes >> 20));
		p->rss_killed = 1;
		kill(-p->pid, SIGKILL);
		return;
	}
	if (probe && p->state == CLUSTER_STARTING && mc_healthz(l->mc, p->address, LOCAL_PROBE_MS))
		set_ready(p);
}

/* The caller's probe (cluster_set_probe) of a starting instance; other
 * work of the caller may run meanwhile, so p is looked up again after. */
static struct lproc *probe_outside(struct cluster *c, struct lproc *p, const char *name)
{
	char address[sizeof p->address];
	int ok;

	if (p->state != CLUSTER_STARTING)
		return p;
	snprintf(address, sizeof address, "%s", p->address);
	ok = c->probe(c->probe_ctx, address, LOCAL_PROBE_MS);
	p = find(c->priv, name);
	if (p && ok && p->state == CLUSTER_STARTING)
		set_ready(p);
	return p;
}

static int local_get(struct cluster *c, const char *name, struct cluster_instance *out)
{
	struct local *l = c->priv;
	struct lproc *p = find(l, name);

	if (!p)
		return 1;
	poll_one(l, p, !c->probe);
	if (c->probe && !(p = probe_outside(c, p, name)))
		return 1;
	fill(p, out);
	return 0;
}

#define LOCAL_STOP_POLL_MS 20 /* a stopping process is looked at this often */

/* SIGTERM, then wait for the exit (through the caller's loop when it set
 * one: cluster_set_io, so the wait holds up only the task that stops it),
 * SIGKILL after grace_ms. Another task of the caller may reap the process
 * meanwhile (local_get): it is looked up again after every wait. */
static int local_remove(struct cluster *c, const char *name_in, int grace_ms)
{
	struct local *l = c->priv;
	struct lproc *p = find(l, name_in);
	char name[sizeof p->name];
	int64_t until;
	int st;

	if (!p)
		return 1;
	poll_one(l, p, 0);
	if (p->state == CLUSTER_EXITED)
		return 0;
	snprintf(name, sizeof name, "%s", p->name);
	p->stopping = 1;
	kill(-p->pid, SIGTERM);
	until = mh_mono_ms() + grace_ms;
	while (mh_mono_ms() < until) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			on_exit_status(p, st);
			return 0;
		}
		cluster_sleep(c, LOCAL_STOP_POLL_MS);
		if (!(p = find(l, name)) || p->state == CLUSTER_EXITED)
			return 0;
	}
	log_warn_x("local instance=%s msg=\"did not stop in time, killing\"", p->name);
	kill(-p->pid, SIGKILL);
	if (waitpid(p->pid, &st, 0) == p->pid)
		on_exit_status(p, st);
	return 0;
}

static int local_logs(struct cluster *c, const char *name, struct buf *out, size_t max_bytes,
		      int tail_lines)
{
	size_t from = out->len;
	struct local *l = c->priv;
	struct lproc *p = find(l, name);
	char path[700], chunk[8192];
	const char *var_dir = cfg_str("hub.var_dir", "var");
	struct stat st;
	ssize_t n;
	int fd;

	if (p) {
		snprintf(path, sizeof path, "%s", p->log_path);
	} else if (strncmp(name, "mh-", 3) == 0) {
		/* another process's instance: the file name is all we need */
		snprintf(path, sizeof path, "%s/instances/%s.log", var_dir, name + 3);
	} else {
		return 1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size > max_bytes)
		lseek(fd, st.st_size - (off_t)max_bytes, SEEK_SET);
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		buf_add(out, chunk, (size_t)n);
	close(fd);
	if (tail_lines > 0 && !out->oom)
		buf_keep_tail_lines(out, from, tail_lines);
	return out->oom ? -1 : 0;
}

static void local_free(struct cluster *c)
{
	struct local *l = c->priv;

	for (int i = 0; i < LOCAL_MAX; i++)
		if (l->p[i].used && l->p[i].state != CLUSTER_EXITED)
			local_remove(c, l->p[i].name, 2000);
	mc_free(l->mc);
	free(l);
	free(c);
}

static const struct cluster_ops local_ops = {
	.name = "local",
	.create = local_create,
	.get = local_get,
	.remove = local_remove,
	.logs = local_logs,
	.events = NULL,
	.free = local_free,
};

/* Remove memory cgroups left by owners that died (SIGKILL gives them no
 * chance to rmdir): names end in -<owner pid>; rmdir fails harmlessly on a
 * group that still has members. */
static void cgroup_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char path[700];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *dash = strrchr(e->d_name, '-');
		int pid = dash ? atoi(dash + 1) : 0;
		if (strncmp(e->d_name, "mh-", 3) != 0 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof path, "%s/%s", base, e->d_name);
		rmdir(path);
	}
	closedir(d);
}

struct cluster *cluster_local_new(void)
{
	struct cluster *c = calloc(1, sizeof *c);
	struct local *l = calloc(1, sizeof *l);

	if (!c || !l || !(l->mc = mc_new())) {
		free(c);
		free(l);
		return NULL;
	}
	c->ops = &local_ops;
	c->priv = l;
	cgroup_sweep("/sys/fs/cgroup/memory/modelhub");
	cgroup_sweep("/sys/fs/cgroup/modelhub");
	return c;
}
