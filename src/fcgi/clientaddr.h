/*
 * clientaddr.h — the client's address of an HTTP request, through trusted
 * proxies only (pure: no I/O, no configuration reads).
 *
 * Runs in: modelhub-fcgi workers. Called by: api_auth.c (rate limits and
 * the session's recorded address), t/130-clientaddr.c.
 * Owns: nothing; the caller owns every buffer.
 */
#ifndef MH_CLIENTADDR_H
#define MH_CLIENTADDR_H

#include <stddef.h>

#define CLIENTADDR_MAX 64 /* longest address text kept (IPv6 is at most 45) */

/* Is addr inside one of the CIDRs of list (comma/space separated, e.g.
 * "10.0.0.0/8, ::1/128, 192.168.1.7")? A malformed entry matches
 * nothing. 1 yes, 0 no. */
int clientaddr_trusted(const char *list, const char *addr);

/* 0 when every entry of list parses, else -1 with the bad entry copied to
 * bad (for the start-up warning). */
int clientaddr_list_check(const char *list, char *bad, size_t badlen);

/* The client's address into out (CLIENTADDR_MAX bytes): remote (the
 * peer nginx saw) unless it is trusted; then the right-most address of
 * Forwarded (for=) or, without it, X-Forwarded-For that is not itself
 * trusted, walking right to left. Anything malformed on the way stops the
 * walk at the last good hop. remote NULL or empty gives "unknown". */
void clientaddr_pick(const char *trusted, const char *remote, const char *forwarded,
		     const char *xff, char *out);

#endif
