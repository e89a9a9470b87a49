/* t/015-auth-cache.c — the per-worker session cache and its shared revocation counter (fcgi/auth_cache.c), and the token/CSRF rules of api_auth.c that need no database. */
#include "fcgi/auth_cache.h"
#include "db/db_session.h"
#include "lib/clock.h"
#include "../t/lib/tap.h"

#include <sodium.h>

#include <sys/wait.h>
#include <unistd.h>

static void key_of(unsigned char k[AUTH_CACHE_KEY_LEN], int n, int slot)
{
	memset(k, 0, AUTH_CACHE_KEY_LEN);
	/* the first three bytes choose the slot; the rest tell keys apart */
	k[0] = (unsigned char)(slot & 0xff);
	k[1] = (unsigned char)((slot >> 8) & 0xff);
	k[10] = (unsigned char)n;
	k[11] = (unsigned char)(n >> 8);
}

static struct api_auth auth_of(int64_t uid)
{
	struct api_auth a;

	memset(&a, 0, sizeof a);
	a.present = 1;
	a.user_id = uid;
	a.session_id = uid * 10;
	snprintf(a.username, sizeof a.username, "user%lld", (long long)uid);
	return a;
}

/* A request with the given CGI variables (NULL-terminated "K=V" list). */
static void req_with(struct api_req *r, char *const *env, const char *method)
{
	api_req_init(r);
	r->env = env;
	r->method = method;
	r->path = "/api/x";
}

#define TOK "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void request_rules(void)
{
	unsigned char h[DB_SESSION_HASH_LEN];
	struct api_auth a = auth_of(42);
	struct api_req r;

	ok(api_auth_global_init() == 0, "api_auth_global_init");
	ok(db_token_hash(TOK, h) == 0, "hash a well-formed token");
	ok(db_token_hash("abc", h) < 0, "short token not hashed");
	ok(db_token_hash(TOK "00", h) < 0, "long token not hashed");
	ok(db_token_hash("zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", h) < 0,
	   "non-hex token not hashed");
	auth_cache_clear();
	db_token_hash(TOK, h);
	auth_cache_put(h, &a, mh_mono_ms() + 60000, auth_cache_generation());

	{
		char *env[] = {"HTTP_AUTHORIZATION=Bearer " TOK, NULL};
		req_with(&r, env, "POST");
		api_auth_resolve(&r);
		ok(r.auth.present && r.auth.user_id == 42, "Bearer token resolved from the cache");
		ok(!r.auth.via_cookie, "Bearer is not a cookie session");
		is_int(api_auth_csrf_ok(&r), 0, "Bearer POST passes the CSRF rule");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_AUTHORIZATION=bearer   " TOK "  ", NULL};
		req_with(&r, env, "GET");
		api_auth_resolve(&r);
		ok(r.auth.present, "scheme is case-insensitive, spaces tolerated");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_AUTHORIZATION=Bearer " TOK " x", NULL};
		req_with(&r, env, "GET");
		api_auth_resolve(&r);
		ok(!r.auth.present && r.auth_error, "trailing junk after the token: auth_error");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_AUTHORIZATION=Basic YWJjOmRlZg==", "HTTP_COOKIE=modelhub_session=" TOK,
			       NULL};
		req_with(&r, env, "GET");
		api_auth_resolve(&r);
		ok(!r.auth.present && r.auth_error, "Authorization wins over the cookie; Basic rejected");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=a=1; modelhub_session=" TOK "; b=2", NULL};
		req_with(&r, env, "POST");
		api_auth_resolve(&r);
		ok(r.auth.present && r.auth.via_cookie, "cookie among others resolved, via_cookie");
		is_int(api_auth_csrf_ok(&r), -1, "cookie POST without header or Origin rejected");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=xmodelhub_session=" TOK, NULL};
		req_with(&r, env, "GET");
		api_auth_resolve(&r);
		ok(!r.auth.present && !r.auth_error, "a cookie with a longer name is not ours");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=", NULL};
		req_with(&r, env, "GET");
		api_auth_resolve(&r);
		ok(!r.auth.present && !r.auth_error, "empty cookie value (a cleared cookie): no session, no error");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_AUTHORIZATION=Bearer ffffffffffffffffffffffffffffffff"
			       "ffffffffffffffffffffffffffffffff", NULL};
		req_with(&r, env, "GET");
		api_auth_resolve(&r);
		ok(!r.auth.present && r.auth_error, "unknown token with no database: auth_error");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=" TOK, "HTTP_X_REQUESTED_WITH=fetch", NULL};
		req_with(&r, env, "POST");
		api_auth_resolve(&r);
		is_int(api_auth_csrf_ok(&r), 0, "X-Requested-With passes");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=" TOK, "HTTP_X_REQUESTED_WITH=", NULL};
		req_with(&r, env, "POST");
		api_auth_resolve(&r);
		is_int(api_auth_csrf_ok(&r), -1, "empty X-Requested-With does not pass");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=" TOK, "HTTP_ORIGIN=HTTPS://Hub.Example:8443",
			       "HTTP_HOST=hub.example:8443", NULL};
		req_with(&r, env, "DELETE");
		api_auth_resolve(&r);
		is_int(api_auth_csrf_ok(&r), 0, "same Origin (https, any case) passes");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=" TOK, "HTTP_ORIGIN=https://hub.example",
			       "HTTP_HOST=hub.example:8443", NULL};
		req_with(&r, env, "PATCH");
		api_auth_resolve(&r);
		is_int(api_auth_csrf_ok(&r), -1, "Origin without the port does not match");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=" TOK, "HTTP_ORIGIN=ftp://hub.example",
			       "HTTP_HOST=hub.example", NULL};
		req_with(&r, env, "PUT");
		api_auth_resolve(&r);
		is_int(api_auth_csrf_ok(&r), -1, "Origin with another scheme rejected");
		api_req_end(&r);
	}
	{
		char *env[] = {"HTTP_COOKIE=modelhub_session=" TOK, "HTTP_ORIGIN=http://hub.example",
			       NULL};
		req_with(&r, env, "POST");
		api_auth_resolve(&r);
		is_int(api_auth_csrf_ok(&r), -1, "Origin without a Host header rejected");
		api_req_end(&r);
	}
	auth_cache_clear();
}

int main(void)
{
	unsigned char k1[AUTH_CACHE_KEY_LEN], k2[AUTH_CACHE_KEY_LEN], kk[AUTH_CACHE_KEY_LEN];
	struct api_auth a = auth_of(7), got;
	struct auth_cache_stats st;
	uint64_t g0;
	int hits = 0;

	ok(auth_cache_shared_init() == 0, "shared page mapped");
	ok(auth_cache_shared_init() == 0, "second init is a no-op");
	g0 = auth_cache_generation();
	key_of(k1, 1, 5);
	key_of(k2, 2, 5);

	ok(!auth_cache_get(k1, 1000, &got), "empty cache misses");
	auth_cache_put(k1, &a, 2000, g0);
	memset(&got, 0, sizeof got);
	ok(auth_cache_get(k1, 1000, &got), "hit after put");
	is_int(got.user_id, 7, "cached user id");
	is_str(got.username, "user7", "cached username");
	is_int(got.session_id, 70, "cached session id");
	ok(!auth_cache_get(k2, 1000, &got), "other key with same slot misses");

	/* deadline */
	ok(auth_cache_get(k1, 1999, &got), "hit just before the deadline");
	ok(!auth_cache_get(k1, 2000, &got), "miss at the deadline");
	ok(!auth_cache_get(k1, 1000, &got), "expired entry was dropped");

	/* revocation counter */
	auth_cache_put(k1, &a, 5000, auth_cache_generation());
	ok(auth_cache_get(k1, 1000, &got), "hit before a revocation");
	auth_cache_bump();
	is_int((long long)(auth_cache_generation() - g0), 1, "bump increments the generation");
	ok(!auth_cache_get(k1, 1000, &got), "any revocation makes the entry stale");

	/* a revocation racing with the DB lookup: the generation read before it is stored */
	g0 = auth_cache_generation();
	auth_cache_bump();
	auth_cache_put(k1, &a, 5000, g0);
	ok(!auth_cache_get(k1, 1000, &got), "entry looked up before a revocation is never served");

	/* drop and clear */
	auth_cache_put(k1, &a, 5000, auth_cache_generation());
	auth_cache_drop(k1);
	ok(!auth_cache_get(k1, 1000, &got), "dropped entry misses");
	auth_cache_put(k1, &a, 5000, auth_cache_generation());
	auth_cache_put(k2, &a, 5000, auth_cache_generation());
	auth_cache_clear();
	ok(!auth_cache_get(k1, 1000, &got) && !auth_cache_get(k2, 1000, &got), "clear empties");

	/* put on an existing key replaces it */
	struct api_auth b = auth_of(8);
	auth_cache_put(k1, &a, 5000, auth_cache_generation());
	auth_cache_put(k1, &b, 5000, auth_cache_generation());
	ok(auth_cache_get(k1, 1000, &got) && got.user_id == 8, "re-put replaces the value");
	auth_cache_drop(k1);
	ok(!auth_cache_get(k1, 1000, &got), "no duplicate left behind after re-put");

	/* a full probe evicts the entry with the earliest deadline */
	auth_cache_clear();
	for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
		struct api_auth x = auth_of(100 + i);
		key_of(kk, 100 + i, 9);
		auth_cache_put(kk, &x, 10000 + (i == 2 ? -5000 : i), auth_cache_generation());
	}
	key_of(kk, 999, 9);
	auth_cache_put(kk, &a, 10000, auth_cache_generation());
	ok(auth_cache_get(kk, 1000, &got), "new entry stored in a full probe");
	for (int i = 0; i < AUTH_CACHE_WAYS; i++) {
		key_of(kk, 100 + i, 9);
		int h = auth_cache_get(kk, 1000, &got);
		if (i == 2)
			ok(!h, "earliest-deadline entry was evicted");
		else
			hits += h;
	}
	is_int(hits, AUTH_CACHE_WAYS - 1, "the other entries survive the eviction");
	auth_cache_stats(&st);
	ok(st.evictions >= 1, "eviction counted");
	ok(st.hits > 0 && st.misses > 0 && st.stale > 0, "hit/miss/stale counted");

	/* slots wrap around the end of the table */
	key_of(kk, 1, AUTH_CACHE_SLOTS - 1);
	auth_cache_put(kk, &a, 5000, auth_cache_generation());
	key_of(k2, 2, AUTH_CACHE_SLOTS - 1);
	auth_cache_put(k2, &b, 5000, auth_cache_generation());
	ok(auth_cache_get(kk, 1000, &got) && got.user_id == 7, "last slot entry");
	ok(auth_cache_get(k2, 1000, &got) && got.user_id == 8, "wrapped entry");

	/* across fork: tables are private, the counter is shared */
	auth_cache_clear();
	auth_cache_put(k1, &a, 5000, auth_cache_generation());
	g0 = auth_cache_generation();
	int pipefd[2];
	ok(pipe(pipefd) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		struct api_auth x;
		/* child: its copy of the table still holds k1 ... */
		int child_hit = auth_cache_get(k1, 1000, &x);
		auth_cache_put(k2, &b, 5000, auth_cache_generation());
		/* ... a logout here must reach the parent */
		auth_cache_bump();
		c = (char)child_hit;
		if (write(pipefd[1], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	char c = 0;
	int status = 0;
	ok(read(pipefd[0], &c, 1) == 1, "child reported");
	waitpid(pid, &status, 0);
	ok(c == 1, "child inherited the cached entry");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited cleanly");
	is_int((long long)(auth_cache_generation() - g0), 1, "parent sees the child's bump");
	ok(!auth_cache_get(k1, 1000, &got), "parent's entry is stale after the child's logout");
	ok(!auth_cache_get(k2, 1000, &got), "child's entries never appear in the parent");
	request_rules();
	return done_testing();
}
