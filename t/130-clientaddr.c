/* 130-clientaddr.c — unit tests of clientaddr: CIDR matching and the client address through trusted proxies only (X-Forwarded-For, Forwarded). */
#include <string.h>

#include "fcgi/clientaddr.h"
#include "t/lib/tap.h"

static const char *pick(const char *trusted, const char *remote, const char *fwd, const char *xff)
{
	static char out[CLIENTADDR_MAX];

	clientaddr_pick(trusted, remote, fwd, xff, out);
	return out;
}

int main(void)
{
	const char *tp = "10.0.0.0/8, 192.168.1.7 ::1/128,fd00::/8";
	char bad[80];

	ok(clientaddr_trusted(tp, "10.200.3.4"), "inside 10.0.0.0/8");
	ok(!clientaddr_trusted(tp, "11.0.0.1"), "outside 10.0.0.0/8");
	ok(clientaddr_trusted(tp, "192.168.1.7"), "a bare address is a /32");
	ok(!clientaddr_trusted(tp, "192.168.1.8"), "the next address is not");
	ok(clientaddr_trusted(tp, "::1"), "::1/128");
	ok(clientaddr_trusted(tp, "fd12:3456::1"), "fd00::/8");
	ok(!clientaddr_trusted(tp, "fe80::1"), "outside fd00::/8");
	ok(clientaddr_trusted(tp, "::ffff:10.1.2.3"), "IPv4-mapped IPv6 compares as IPv4");
	ok(clientaddr_trusted("172.16.0.0/12", "172.31.255.255"), "/12 upper edge");
	ok(!clientaddr_trusted("172.16.0.0/12", "172.32.0.0"), "/12 just outside");
	ok(clientaddr_trusted("0.0.0.0/0", "8.8.8.8"), "/0 matches every IPv4");
	ok(!clientaddr_trusted("0.0.0.0/0", "::2"), "/0 of IPv4 does not match IPv6");
	ok(!clientaddr_trusted("10.0.0.0/33", "10.0.0.1"), "bad prefix length matches nothing");
	ok(!clientaddr_trusted("", "10.0.0.1"), "empty list trusts nothing");
	ok(!clientaddr_trusted(NULL, "10.0.0.1"), "no list trusts nothing");
	ok(!clientaddr_trusted(tp, "garbage"), "garbage address is not trusted");
	is_int(clientaddr_list_check(tp, bad, sizeof bad), 0, "valid list checks");
	is_int(clientaddr_list_check("10.0.0.0/8, 300.1.1.1", bad, sizeof bad), -1, "bad entry found");
	is_str(bad, "300.1.1.1", "bad entry named");
	is_int(clientaddr_list_check("10.0.0.0/8,fd00::/129", bad, sizeof bad), -1, "bad v6 prefix");

	/* off by default: the headers are never believed */
	is_str(pick("", "203.0.113.9", NULL, "1.1.1.1"), "203.0.113.9", "no trusted proxies: peer");
	is_str(pick(NULL, "203.0.113.9", "for=1.1.1.1", NULL), "203.0.113.9", "NULL list: peer");
	is_str(pick(tp, "203.0.113.9", NULL, "1.1.1.1"), "203.0.113.9",
	       "untrusted peer: its X-Forwarded-For is ignored");
	is_str(pick(tp, "10.0.0.5", NULL, "198.51.100.4"), "198.51.100.4", "trusted peer: XFF client");
	is_str(pick(tp, "10.0.0.5", NULL, "6.6.6.6, 198.51.100.4, 10.9.9.9"), "198.51.100.4",
	       "right to left: skip trusted hops, stop at the first untrusted (spoofed left part ignored)");
	is_str(pick(tp, "10.0.0.5", NULL, "10.1.1.1, 10.2.2.2"), "10.1.1.1",
	       "every hop trusted: the left-most");
	is_str(pick(tp, "10.0.0.5", NULL, "6.6.6.6, junk, 10.2.2.2"), "10.2.2.2",
	       "a malformed hop stops the walk at the last good one");
	is_str(pick(tp, "10.0.0.5", NULL, ""), "10.0.0.5", "trusted peer, no header: peer");
	is_str(pick(tp, "10.0.0.5", NULL, " 198.51.100.4:5555 "), "198.51.100.4", "v4 with port");
	is_str(pick(tp, "10.0.0.5", NULL, "[2001:db8::1]:443"), "2001:db8::1", "[v6]:port");
	is_str(pick(tp, "10.0.0.5", NULL, "2001:DB8::1"), "2001:db8::1", "v6 printed canonically");
	is_str(pick(tp, "::ffff:10.0.0.5", NULL, "198.51.100.4"), "198.51.100.4",
	       "mapped trusted peer");
	is_str(pick(tp, "10.0.0.5", "for=192.0.2.60;proto=http;by=10.0.0.5", "1.1.1.1"), "192.0.2.60",
	       "Forwarded wins over X-Forwarded-For");
	is_str(pick(tp, "10.0.0.5", "for=6.6.6.6, For=\"[2001:db8:cafe::17]:4711\"", NULL),
	       "2001:db8:cafe::17", "Forwarded: quoted [v6]:port, right-most");
	is_str(pick(tp, "10.0.0.5", "for=6.6.6.6, for=10.3.3.3", NULL), "6.6.6.6",
	       "Forwarded: trusted hop skipped");
	is_str(pick(tp, "10.0.0.5", "for=unknown", "1.1.1.1"), "10.0.0.5",
	       "Forwarded for=unknown stops at the proxy");
	is_str(pick(tp, "10.0.0.5", "proto=https", "198.51.100.4"), "198.51.100.4",
	       "Forwarded without for=: X-Forwarded-For");
	is_str(pick(tp, "", NULL, "1.1.1.1"), "unknown", "no peer: unknown");
	{
		char xff[4096] = "";
		for (int i = 0; i < 100; i++)
			strcat(xff, "10.4.4.4, ");
		strcat(xff, "10.5.5.5");
		is_str(pick(tp, "10.0.0.5", NULL, xff), "10.4.4.4",
		       "a long chain of trusted hops is bounded (32 read)");
	}
	return done_testing();
}
