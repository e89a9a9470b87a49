/*
 * sleep-model.c — a model server for bench/concurrency whose POST /run
 * sleeps and uses no CPU: the hub's concurrency is measured, not Python's
 * start-up (500 instances of the rdkit demo server would cost minutes of
 * CPU and gigabytes before the first call).
 *
 * Runs in: one process per model instance, started by the local backend
 * (local_command: t/230, bench/concurrency) or, through a one-line
 * serve.py shim, by the kubernetes simulator (bench/concurrency writes it).
 * Called by: the hub's runners over HTTP: GET /healthz, POST /run (the
 * ersilia-pack shape: a JSON array of inputs in, a JSON array of records
 * out, one {"mol_weight": 1.0} per input).
 * Owns: one listening socket, one thread per connection (detached).
 *
 * Usage: sleep-model-bench --host H --port P [--call-cost SECONDS]
 *        [other serve.py options, ignored]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX (4 << 20) /* a request's head and body */

static double call_cost = 5.0;

/* Inputs in a JSON array of strings: the strings at depth 1. */
static int count_inputs(const char *p, size_t n)
{
	int depth = 0, in_str = 0, count = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
			count += depth == 1;
		} else if (c == '[' || c == '{') {
			depth++;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return count;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int reply(int fd, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			 status, status == 200 ? "OK" : "Not Found", strlen(body));

	return send_all(fd, head, (size_t)n) < 0 ? -1 : send_all(fd, body, strlen(body));
}

/* The records of n inputs; malloc()ed. */
static char *records(int n)
{
	static const char rec[] = "{\"mol_weight\":1.0}";
	char *s = malloc((size_t)n * sizeof rec + 3), *p = s;

	if (!s)
		return NULL;
	*p++ = '[';
	for (int k = 0; k < n; k++)
		p += sprintf(p, "%s%s", k ? "," : "", rec);
	strcpy(p, "]");
	return s;
}

static int answer(int fd, const char *head, const char *body, size_t blen)
{
	struct timespec ts = {(time_t)call_cost, (long)((call_cost - (double)(time_t)call_cost) * 1e9)};
	char *out;
	int rc;

	if (strncmp(head, "GET /healthz", 12) == 0)
		return reply(fd, 200, "{\"status\":\"ok\"}");
	if (strncmp(head, "POST /run", 9) != 0)
		return reply(fd, 404, "{\"detail\":\"Not Found\"}");
	nanosleep(&ts, NULL);
	out = records(count_inputs(body, blen));
	rc = out ? reply(fd, 200, out) : -1;
	free(out);
	return rc;
}

/* One HTTP/1.1 request (keep-alive) from buf; 1 when one was answered,
 * 0 when more bytes are needed, -1 to close. *used: bytes consumed. */
static int one_request(int fd, char *buf, size_t len, size_t *used)
{
	char *end = memmem(buf, len, "\r\n\r\n", 4), *cl;
	size_t hlen, blen = 0;

	if (!end)
		return len >= REQ_MAX ? -1 : 0;
	hlen = (size_t)(end - buf) + 4;
	end[2] = '\0';
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl)
		blen = strtoul(cl + 17, NULL, 10);
	end[2] = '\r';
	if (hlen + blen > REQ_MAX)
		return -1;
	if (len < hlen + blen)
		return 0;
	*used = hlen + blen;
	return answer(fd, buf, buf + hlen, blen) < 0 ? -1 : 1;
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(REQ_MAX);
	size_t len = 0, used;
	ssize_t r;

	while (buf && (r = recv(fd, buf + len, REQ_MAX - len, 0)) > 0) {
		int rc;
		len += (size_t)r;
		while ((rc = one_request(fd, buf, len, &used)) == 1) {
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		if (rc < 0)
			break;
	}
	free(buf);
	close(fd);
	return NULL;
}

static int listen_on(const char *host, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0, lfd;

	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--host") == 0)
			host = argv[++i];
		else if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--call-cost") == 0)
			call_cost = atof(argv[++i]);
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(host, port);
	if (lfd < 0) {
		perror("sleep-model: listen");
		return 1;
	}
	fprintf(stderr, "sleep-model: listening on %s:%d, /run sleeps %.1f s\n", host, port, call_cost);
	for (;;) {
		pthread_t th;
		pthread_attr_t at;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 64 * 1024);
		if (pthread_create(&th, &at, serve_conn, (void *)(intptr_t)fd) != 0)
			close(fd);
		pthread_attr_destroy(&at);
	}
}
