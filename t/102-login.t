#!/usr/bin/python3
# 102-login.t — login/logout/refresh/session, cookie and Bearer auth, bad tokens, disabled accounts, login rate limit (429 + Retry-After; the fairness of the throttle is t/131).
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, fcgi_request   # noqa: E402

t = TAP()
MAX_FAIL = 3
s = Stack(config={"auth.pwhash_fast": "1", "login.max_failures": str(MAX_FAIL),
                  "login.max_failures_per_address": str(MAX_FAIL),
                  "login.delay_base_seconds": "60",
                  "session.idle_seconds": "600", "session.absolute_seconds": "3600"})
PW = "correct horse battery"


def login(body, ip=None, headers=None):
    if ip is None:
        return s.api("POST", "/api/auth/login", json=body, headers=headers)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return fcgi_request(s.fcgi_socket, "POST", "/api/auth/login", json.dumps(body).encode(), h,
                        remote_addr=ip)


def err(r):
    return ((r.json or {}).get("error") or {})


for name in ("alice", "bob", "carol", "dave", "erin"):
    r = s.api("POST", "/api/auth/signup", json={"username": name, "email": name + "@example.org",
                                                "password": PW})
    t.status(r, 201, "signup %s" % name)

# ---- login by username
r = login({"username": "alice", "password": PW})
t.status(r, 200, "login answers 200")
j = r.json or {}
tok = j.get("token", "")
t.like(tok, r"^[0-9a-f]{64}$", "token is 64 hex characters (32 random bytes)")
t.is_((j.get("user") or {}).get("username"), "alice", "user.username")
t.is_((j.get("user") or {}).get("email"), "alice@example.org", "user.email")
t.is_((j.get("user") or {}).get("roles"), ["USER"], "user.roles")
t.ok("password" not in r.text and "argon" not in r.text, "no password or hash in the answer")
t.like(j.get("expires_at"), r"^\d{4}-\d\d-\d\dT[\d:.]+Z$", "expires_at ISO")
t.like(j.get("absolute_expires_at"), r"^\d{4}-\d\d-\d\dT[\d:.]+Z$", "absolute_expires_at ISO")
t.ok(j.get("expires_at", "") < j.get("absolute_expires_at", ""), "idle expiry before absolute")
cookie = r.set_cookies[0] if r.set_cookies else ""
t.like(cookie, r"^modelhub_session=" + tok + ";", "Set-Cookie carries the token")
for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
    t.like(cookie, r";\s*" + attr + r"(;|$)", "cookie has " + attr)
t.ok("Secure" not in cookie, "no Secure flag over plain HTTP")

# only the SHA-256 of the token bytes is stored
h = hashlib.sha256(bytes.fromhex(tok)).hexdigest()
rows = s.sql("SELECT kind, encode(token_hash, 'hex'), ip FROM session WHERE user_id ="
             " (SELECT id FROM app_user WHERE username = 'alice')")
t.is_(len(rows), 1, "one session row")
t.is_(rows and rows[0][0], "USER", "session kind USER")
t.is_(rows and rows[0][1], h, "token_hash = sha256(token bytes)")
t.ok(not s.sql("SELECT 1 FROM session WHERE encode(token_hash, 'hex') = $1", tok),
     "the token itself is not stored")
t.is_(rows and rows[0][2], "127.0.0.1", "client address recorded")

# ---- session via Bearer and via cookie
r = s.api("GET", "/api/auth/session", token=tok)
t.status(r, 200, "GET /api/auth/session with Bearer")
j = r.json or {}
t.is_((j.get("user") or {}).get("username"), "alice", "session.user")
t.is_(j.get("roles"), ["USER"], "session.roles")
t.is_(j.get("kind"), "USER", "session.kind")
t.ok(j.get("expires_at") and j.get("absolute_expires_at"), "session expiries")
t.like(r.headers.get("x-session-cache"), r"^(hit|miss)$", "X-Session-Cache header")
r = s.api("GET", "/api/auth/session", cookies={"other": "x", "modelhub_session": tok})
t.status(r, 200, "GET /api/auth/session with the cookie (among others)")

# ---- other ways to log in
t.status(login({"username": "ALICE", "password": PW}), 200, "username is case-insensitive")
t.status(login({"username": "alice@example.org", "password": PW}), 200, "login by email in username")
t.status(login({"email": "Alice@Example.org", "password": PW}), 200, "login by email field")
r = login({"username": "alice", "password": PW}, headers={"X-Forwarded-Proto": "https"})
t.like(r.set_cookies[0] if r.set_cookies else "", r";\s*Secure(;|$)",
       "Secure cookie when the request came over HTTPS")

# ---- wrong credentials: same answer for unknown user and bad password
r1 = login({"username": "alice", "password": "wrong password!"}, ip="10.0.0.1")
r2 = login({"username": "nosuchuser", "password": "wrong password!"}, ip="10.0.0.2")
t.status(r1, 401, "bad password: 401")
t.status(r2, 401, "unknown user: 401")
t.is_(err(r1).get("code"), "invalid_credentials", "bad password: invalid_credentials")
t.is_((err(r1).get("code"), err(r1).get("message")), (err(r2).get("code"), err(r2).get("message")),
      "unknown user and bad password answer the same")
t.ok(not r1.set_cookies, "no cookie on failure")
# the unknown user costs a hash verification too (dummy hash): same order of time
t0 = time.time()
for i in range(3):
    login({"username": "alice", "password": "wrong password!"}, ip="10.0.9.%d" % i)
ta = time.time() - t0
t0 = time.time()
for i in range(3):
    login({"username": "ghost%d" % i, "password": "wrong password!"}, ip="10.0.8.%d" % i)
tb = time.time() - t0
t.ok(tb < ta * 5 + 0.5 and ta < tb * 5 + 0.5, "unknown user and bad password take similar time")
s.sql("DELETE FROM login_attempt")

# ---- input errors
r = login({"password": PW})
t.status(r, 422, "username missing: 422")
t.ok("username" in (err(r).get("fields") or {}), "fields names username")
r = login({"username": "alice"})
t.status(r, 422, "password missing: 422")
t.ok("password" in (err(r).get("fields") or {}), "fields names password")
r = login({"username": "alice", "password": PW, "remember": True})
t.status(r, 422, "unknown field: 422")
t.ok("remember" in (err(r).get("fields") or {}), "fields names the unknown field")
r = login({"username": 5, "password": PW})
t.status(r, 422, "username not a string: 422")
r = s.api("POST", "/api/auth/login", data="username=alice", headers={"Content-Type": "text/plain"})
t.status(r, 415, "form body: 415")

# ---- bad tokens
for name, kw in (("unknown token", {"token": "0" * 64}),
                 ("short token", {"token": "abc"}),
                 ("non-hex token", {"token": "z" * 64}),
                 ("Basic auth", {"headers": {"Authorization": "Basic YWxpY2U6eA=="}}),
                 ("unknown cookie", {"cookies": {"modelhub_session": "1" * 64}}),
                 ("bad cookie", {"cookies": {"modelhub_session": "nope"}})):
    r = s.api("GET", "/api/auth/session", **kw)
    t.status(r, 401, "%s: 401" % name)
    t.is_(err(r).get("code"), "session_expired", "%s: session_expired" % name)
r = s.api("GET", "/api/auth/session")
t.status(r, 401, "no credentials: 401")
t.is_(err(r).get("code"), "unauthorized", "no credentials: unauthorized")
t.status(s.api("POST", "/api/auth/logout"), 401, "logout without a session: 401")

# ---- refresh slides the idle expiry, not the absolute one
tok = login({"username": "bob", "password": PW}).json["token"]
r0 = s.api("GET", "/api/auth/session", token=tok).json
time.sleep(1.1)
r = s.api("POST", "/api/auth/refresh", token=tok)
t.status(r, 200, "refresh answers 200")
j = r.json or {}
t.ok(j.get("expires_at", "") > r0["expires_at"], "refresh moved expires_at later")
t.is_(j.get("absolute_expires_at"), r0["absolute_expires_at"], "absolute expiry unchanged")
r = s.api("GET", "/api/auth/session", token=tok)
t.is_((r.json or {}).get("expires_at"), j.get("expires_at"), "session shows the new expiry")

# ---- logout revokes the session and clears the cookie
r = s.api("POST", "/api/auth/logout", token=tok)
t.status(r, 200, "logout answers 200")
c = r.set_cookies[0] if r.set_cookies else ""
t.like(c, r"^modelhub_session=;", "logout clears the cookie")
t.like(c, r"Max-Age=0", "cleared cookie expires at once")
r = s.api("GET", "/api/auth/session", token=tok)
t.status(r, 401, "session after logout: 401")
t.is_(err(r).get("code"), "session_expired", "session after logout: session_expired")
t.status(s.api("POST", "/api/auth/refresh", token=tok), 401, "refresh after logout: 401")
t.ok(s.sql("SELECT revoked_at IS NOT NULL FROM session WHERE encode(token_hash, 'hex') = $1",
           hashlib.sha256(bytes.fromhex(tok)).hexdigest()) == [("t",)], "revoked_at set")
tok2 = login({"username": "bob", "password": PW}).json["token"]
t.status(s.api("GET", "/api/auth/session", token=tok2), 200, "a new login works after logout")

# ---- disabled accounts
s.sql("UPDATE app_user SET disabled = true WHERE username = 'carol'")
r = login({"username": "carol", "password": PW})
t.status(r, 403, "disabled account cannot log in")
t.is_(err(r).get("code"), "account_disabled", "code account_disabled")
r = login({"username": "carol", "password": "wrong password!"})
t.status(r, 401, "disabled account with a wrong password: plain 401")
s.sql("UPDATE app_user SET disabled = false WHERE username = 'carol'")
s.sql("DELETE FROM login_attempt")

# ---- login rate limit per account (failures from different addresses)
for i in range(MAX_FAIL):
    r = login({"username": "dave", "password": "wrong password!"}, ip="10.1.0.%d" % i)
    t.status(r, 401, "dave failure %d: 401" % (i + 1))
r = login({"username": "dave", "password": PW}, ip="10.1.0.99")
t.status(r, 429, "after %d failures the account's delay (60 s here) holds even the right password"
         % MAX_FAIL)
t.is_(err(r).get("code"), "rate_limited", "code rate_limited")
ra = r.headers.get("retry-after", "")
t.ok(re.match(r"^\d+$", ra) and 1 <= int(ra) <= 61, "Retry-After in seconds (got %r)" % ra)
r = login({"username": "DAVE@example.org", "password": PW}, ip="10.1.0.98")
t.status(r, 429, "the limit holds when the account is named by email")
t.status(login({"username": "erin", "password": PW}, ip="10.1.0.97"), 200,
         "another account is not affected")
n = s.sql("SELECT count(*) FROM login_attempt WHERE username = 'dave' AND NOT success")[0][0]
t.is_(n, str(MAX_FAIL), "rate-limited attempts are not counted as failures")
s.sql("UPDATE login_attempt SET at = at - interval '16 minutes' WHERE username = 'dave'")
t.status(login({"username": "dave", "password": PW}, ip="10.1.0.96"), 200,
         "failures older than 15 minutes no longer count")

# a success resets the account's count
for i in range(MAX_FAIL - 1):
    login({"username": "erin", "password": "wrong password!"}, ip="10.2.0.%d" % i)
t.status(login({"username": "erin", "password": PW}, ip="10.2.0.50"), 200, "erin logs in")
for i in range(MAX_FAIL - 1):
    login({"username": "erin", "password": "wrong password!"}, ip="10.2.1.%d" % i)
t.status(login({"username": "erin", "password": PW}, ip="10.2.1.50"), 200,
         "failures before a success do not add up with later ones")

# ---- login rate limit per address (failures on different accounts)
for i in range(MAX_FAIL):
    r = login({"username": "ghost%d" % i, "password": "wrong password!"}, ip="10.3.0.1")
    t.status(r, 401, "address failure %d: 401" % (i + 1))
r = login({"username": "alice", "password": PW}, ip="10.3.0.1")
t.status(r, 429, "that address is now limited, even for a good login")
t.ok(re.match(r"^\d+$", r.headers.get("retry-after", "")), "Retry-After on the address limit")
t.status(login({"username": "alice", "password": PW}, ip="10.3.0.2"), 200,
         "other addresses can still log in")

s.stop()
t.done()
