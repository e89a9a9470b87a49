#!/usr/bin/python3
# 104-anon.t — POST /api/auth/anon: anonymous tokens, what they may do, per-address rate limit (429 + Retry-After).
import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, fcgi_request   # noqa: E402
from flows import error_code as code  # noqa: E402

PER_HOUR = 3
t = TAP()
s = Stack(config={"auth.pwhash_fast": "1", "anon.per_ip_per_hour": str(PER_HOUR)})


r = s.api("POST", "/api/auth/anon")
t.status(r, 201, "POST /api/auth/anon answers 201")
j = r.json or {}
tok = j.get("token", "")
t.like(tok, r"^[0-9a-f]{64}$", "anonymous token is 64 hex characters")
t.like(j.get("expires_at"), r"^\d{4}-\d\d-\d\dT[\d:.]+Z$", "expires_at")
t.is_(j.get("kind"), "ANON", "kind ANON")
t.ok(not r.set_cookies, "no cookie for anonymous (curl) sessions")
row = s.sql("SELECT kind, user_id, expires_at = absolute_expires_at FROM session"
            " WHERE token_hash = decode($1, 'hex')", hashlib.sha256(bytes.fromhex(tok)).hexdigest())
t.is_(row, [("ANON", None, "t")], "stored as ANON without user, no idle expiry")

r = s.api("GET", "/api/auth/session", token=tok)
t.status(r, 200, "anonymous token is a session")
t.is_((r.json or {}).get("user", "x"), None, "no user")
t.is_((r.json or {}).get("roles"), [], "no roles")
t.is_((r.json or {}).get("kind"), "ANON", "session kind ANON")

# ACCESS_SESSION yes, ACCESS_USER / ACCESS_ADMIN no
r = s.api("GET", "/api/requests", token=tok)
t.ok(r.status != 401 and r.status != 403, "anonymous token may use a session route (%d)" % r.status)
r = s.api("POST", "/api/auth/refresh", token=tok)
t.status(r, 403, "anonymous token may not use a user-only route")
t.is_(code(r), "forbidden", "user-only route: forbidden")
r = s.api("GET", "/api/admin/users", token=tok)
t.status(r, 403, "anonymous token may not use an admin route")

# ---- rate limit per address: PER_HOUR per hour (one used above)
for i in range(PER_HOUR - 1):
    t.status(s.api("POST", "/api/auth/anon"), 201, "anon token %d of %d" % (i + 2, PER_HOUR))
r = s.api("POST", "/api/auth/anon")
t.status(r, 429, "token %d within the hour: 429" % (PER_HOUR + 1))
t.is_(code(r), "rate_limited", "code rate_limited")
ra = r.headers.get("retry-after", "")
t.ok(re.match(r"^\d+$", ra) and 1 <= int(ra) <= 3600, "Retry-After in seconds (got %r)" % ra)
t.ok(not (r.json or {}).get("token"), "no token in the 429")
n = s.sql("SELECT count(*) FROM session WHERE kind = 'ANON'")[0][0]
t.is_(n, str(PER_HOUR), "no session created past the limit")
r = fcgi_request(s.fcgi_socket, "POST", "/api/auth/anon", remote_addr="10.9.9.9")
t.status(r, 201, "another address still gets a token")
s.sql("UPDATE rate_limit SET window_start = window_start - interval '1 hour'")
t.status(s.api("POST", "/api/auth/anon"), 201, "a new hour gives new tokens")

# ---- the token still works, logout revokes it
t.status(s.api("GET", "/api/auth/session", token=tok), 200, "first token still valid")
r = s.api("POST", "/api/auth/logout", token=tok)
t.status(r, 200, "anonymous logout")
r = s.api("GET", "/api/auth/session", token=tok)
t.is_(code(r), "session_expired", "revoked anonymous token: session_expired")

s.stop()
t.done()
