/*
 * clientaddr.c — the client's address of an HTTP request, through trusted
 * proxies only (pure: no I/O, no configuration reads).
 *
 * Runs in: modelhub-fcgi workers. Called by: api_auth.c (client_ip: rate
 * limits, login throttling, the session's address), t/130-clientaddr.c.
 * Owns: nothing. Shared state: none.
 *
 * DESIGN
 * - The peer address (REMOTE_ADDR, what nginx saw) is the client unless it
 *   is in http.trusted_proxies. Only then are the forwarding headers read,
 *   right to left: each proxy appends the address it received from, so the
 *   right-most entries are the ones our own proxies wrote; the first entry
 *   (from the right) that is not a trusted proxy is the client. Entries to
 *   its left were written by the client itself and are never believed.
 * - Forwarded (RFC 7239) wins over X-Forwarded-For when both are present
 *   and it names at least one for= address.
 * - A malformed or "unknown"/obfuscated hop stops the walk: the last
 *   address we could read (a trusted proxy) is used, so a client cannot
 *   escape its own bucket by writing garbage.
 * - IPv4-mapped IPv6 (::ffff:a.b.c.d) is compared and printed as IPv4.
 */
#include "fcgi/clientaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOPS_MAX 32 /* forwarding entries read; more is an attack or a loop */

struct addr {
	int family; /* 4 or 6 */
	unsigned char b[16];
};

/* Parse a bare address (no port, no brackets). 0 / -1. */
static int addr_parse(const char *s, struct addr *a)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, s, a->b) == 1) {
		a->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->b) != 1)
		return -1;
	a->family = 6;
	if (memcmp(a->b, mapped, sizeof mapped) == 0) {
		memmove(a->b, a->b + 12, 4);
		memset(a->b + 4, 0, 12);
		a->family = 4;
	}
	return 0;
}

static int prefix_match(const struct addr *net, const struct addr *a, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (net->family != a->family)
		return 0;
	if (memcmp(net->b, a->b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((net->b[full] ^ a->b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* One CIDR entry "addr[/bits]" of length n. 0 / -1; *net and *bits set. */
static int cidr_parse(const char *s, size_t n, struct addr *net, int *bits)
{
	char buf[CLIENTADDR_MAX];
	char *slash, *end;
	long b;

	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (addr_parse(buf, net) < 0)
		return -1;
	if (!slash) {
		*bits = net->family == 4 ? 32 : 128;
		return 0;
	}
	b = strtol(slash + 1, &end, 10);
	if (end == slash + 1 || *end || b < 0 || b > (net->family == 4 ? 32 : 128))
		return -1;
	*bits = (int)b;
	return 0;
}

/* Calls fn on each entry of a comma/space separated list; stops when fn
 * returns non-zero and returns that. */
static int each_entry(const char *list, int (*fn)(const char *, size_t, void *), void *arg)
{
	const char *p = list;
	int rc;

	while (p && *p) {
		size_t n;
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		n = strcspn(p, ", \t\r\n");
		if (n > 0 && (rc = fn(p, n, arg)) != 0)
			return rc;
		p += n;
	}
	return 0;
}

static int match_entry(const char *s, size_t n, void *arg)
{
	struct addr net;
	int bits;

	return cidr_parse(s, n, &net, &bits) == 0 && prefix_match(&net, arg, bits);
}

int clientaddr_trusted(const char *list, const char *addr)
{
	struct addr a;

	if (!list || !addr || addr_parse(addr, &a) < 0)
		return 0;
	return each_entry(list, match_entry, &a);
}

struct bad_ctx {
	char *bad;
	size_t len;
};

static int check_entry(const char *s, size_t n, void *arg)
{
	struct bad_ctx *c = arg;
	struct addr net;
	int bits;

	if (cidr_parse(s, n, &net, &bits) == 0)
		return 0;
	snprintf(c->bad, c->len, "%.*s", (int)(n > 60 ? 60 : n), s);
	return -1;
}

int clientaddr_list_check(const char *list, char *bad, size_t badlen)
{
	struct bad_ctx c = {bad, badlen};

	if (badlen)
		bad[0] = '\0';
	return list ? each_entry(list, check_entry, &c) : 0;
}

/* Normalise one hop (trimmed, quotes, [v6]:port, v4:port) into out as a
 * printable address. 0 / -1 (malformed, "unknown", obfuscated "_x"). */
static int hop_norm(const char *s, size_t n, char out[CLIENTADDR_MAX])
{
	char buf[CLIENTADDR_MAX];
	struct addr a;
	char *p = buf, *e;

	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
		s++, n -= 2;
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (*p == '[') {
		e = strchr(p, ']');
		if (!e || (e[1] && e[1] != ':'))
			return -1;
		*e = '\0';
		p++;
	} else if ((e = strchr(p, ':')) && !strchr(e + 1, ':')) {
		*e = '\0'; /* a.b.c.d:port (one colon: not IPv6) */
	}
	if (addr_parse(p, &a) < 0)
		return -1;
	inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.b, out, CLIENTADDR_MAX);
	return 0;
}

struct hops {
	const char *s[HOPS_MAX];
	size_t n[HOPS_MAX];
	int count;
};

/* Split a header on commas (quoted commas do not occur in for= values we
 * accept). Keeps the right-most HOPS_MAX entries. */
static void split_commas(const char *h, struct hops *hp)
{
	const char *p = h;

	hp->count = 0;
	while (p && *p) {
		size_t n = strcspn(p, ",");
		if (hp->count == HOPS_MAX) {
			memmove(hp->s, hp->s + 1, sizeof hp->s[0] * (HOPS_MAX - 1));
			memmove(hp->n, hp->n + 1, sizeof hp->n[0] * (HOPS_MAX - 1));
			hp->count--;
		}
		hp->s[hp->count] = p;
		hp->n[hp->count++] = n;
		p += n;
		if (*p == ',')
			p++;
	}
}

/* Forwarded: reduce each element to its for= value (or an empty hop). */
static int forwarded_hops(const char *h, struct hops *hp)
{
	int i, any = 0;

	split_commas(h, hp);
	for (i = 0; i < hp->count; i++) {
		const char *s = hp->s[i], *end = s + hp->n[i], *f = NULL;
		for (const char *q = s; q + 4 <= end; q++)
			if (strncasecmp(q, "for=", 4) == 0 &&
			    (q == s || q[-1] == ';' || isspace((unsigned char)q[-1]))) {
				f = q + 4;
				break;
			}
		hp->s[i] = f ? f : s;
		hp->n[i] = f ? strcspn(f, ";") : 0;
		if (hp->n[i] > (size_t)(end - hp->s[i]))
			hp->n[i] = (size_t)(end - hp->s[i]);
		any |= f != NULL;
	}
	return any;
}

void clientaddr_pick(const char *trusted, const char *remote, const char *forwarded,
		     const char *xff, char *out)
{
	struct hops hp;
	char hop[CLIENTADDR_MAX];

	if (!remote || !*remote || hop_norm(remote, strlen(remote), out) < 0) {
		snprintf(out, CLIENTADDR_MAX, "%s", remote && *remote ? "invalid" : "unknown");
		return;
	}
	if (!trusted || !*trusted || !clientaddr_trusted(trusted, out))
		return;
	if (!(forwarded && *forwarded && forwarded_hops(forwarded, &hp))) {
		if (!xff || !*xff)
			return;
		split_commas(xff, &hp);
	}
	for (int i = hp.count - 1; i >= 0; i--) {
		if (hop_norm(hp.s[i], hp.n[i], hop) < 0)
			return;
		memcpy(out, hop, CLIENTADDR_MAX);
		if (!clientaddr_trusted(trusted, out))
			return;
	}
}
