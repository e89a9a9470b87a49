#!/usr/bin/python3
# 131-login-throttle.t — the login throttle cannot be turned against others (issue 17, finding 1 and 7): per (account, address) limit, per-account exponential delay, loose failures-only per-address limit, success and password reset reset; successful logins throttled per (account, address); trusted proxies for X-Forwarded-For/Forwarded (off by default) for logins, anonymous tokens and signups; signup rate limit before the "taken" lookup (finding 5).
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, fcgi_request   # noqa: E402

t = TAP()
PER_ADDR = 12
s = Stack(config={"auth.pwhash_fast": "1", "login.max_failures": "5",
                  "login.max_failures_per_address": str(PER_ADDR),
                  "login.per_account_address_per_minute": "10",
                  "anon.per_ip_per_hour": "3", "signup.per_ip_per_hour": "3"})
PW = "correct horse battery"
BAD = "wrong password!"


def login(user, pw, ip):
    return fcgi_request(s.fcgi_socket, "POST", "/api/auth/login",
                        json.dumps({"username": user, "password": pw}).encode(),
                        {"Content-Type": "application/json"}, remote_addr=ip)


def code(r):
    return ((r.json or {}).get("error") or {}).get("code")


def retry_after(r):
    try:
        return int(r.headers.get("retry-after", ""))
    except ValueError:
        return -1


for i, name in enumerate(("alice", "bob", "carol", "dave", "erin", "frank")):
    t.status(fcgi_request(s.fcgi_socket, "POST", "/api/auth/signup",
                          json.dumps({"username": name, "password": PW,
                                      "email": name + "@example.org"}).encode(),
                          {"Content-Type": "application/json"}, remote_addr="10.8.0.%d" % i),
             201, "signup %s" % name)
s.sql("DELETE FROM rate_limit")

# ---- finding 1: five failures for alice from one address
for i in range(5):
    t.status(login("alice", BAD, "10.9.0.1"), 401, "alice failure %d from 10.9.0.1" % (i + 1))
r = login("bob", PW, "10.9.0.1")
t.status(r, 200, "bob's correct login from the same address still works")
r = login("alice", PW, "10.9.0.1")
t.status(r, 429, "alice from the attacking address: 429 (the pair is limited)")
t.ok(700 <= retry_after(r) <= 901, "... Retry-After until the failures leave the 15 min window (%s)"
     % r.headers.get("retry-after"))
t.like((r.json or {}).get("error", {}).get("message", ""), r"this account from this address",
       "... the message names the limit")
r = login("alice", PW, "10.9.0.2")
if r.status == 429:  # within the account's 1 s delay: a delay, not a lock
    t.ok(1 <= retry_after(r) <= 2, "owner from a new address: at most the 1 s delay (%s)"
         % r.headers.get("retry-after"))
    time.sleep(retry_after(r) + 0.1)
    r = login("alice", PW, "10.9.0.2")
else:
    t.ok(True, "owner from a new address: the 1 s delay had passed already")
t.status(r, 200, "alice's correct password from another address works")
t.status(login("alice", PW, "10.9.0.1"), 200,
         "the success reset the account's count: the attacking address may log in as alice again")

# ---- the account's delay is exponential and capped
s.sql("INSERT INTO login_attempt (username, ip, success)"
      " SELECT 'carol', '10.9.3.' || g, false FROM generate_series(1, 9) g")
r = login("carol", PW, "10.9.4.1")
t.status(r, 429, "9 failures of carol (from 9 addresses): a 16 s delay")
t.ok(14 <= retry_after(r) <= 17, "... Retry-After about 16 (%s)" % r.headers.get("retry-after"))
s.sql("INSERT INTO login_attempt (username, ip, success)"
      " SELECT 'carol', '10.9.5.' || g, false FROM generate_series(1, 30) g")
r = login("carol", PW, "10.9.4.1")
t.ok(r.status == 429 and 57 <= retry_after(r) <= 61,
     "39 failures: the delay is capped at login.delay_max_seconds (60; got %s %s)"
     % (r.status, r.headers.get("retry-after")))
s.sql("UPDATE login_attempt SET at = at - interval '61 seconds' WHERE username = 'carol'")
t.status(login("carol", PW, "10.9.4.1"), 200, "after the delay carol gets in: never a lock")

# ---- a password reset counts as a success
for i in range(5):
    login("dave", BAD, "10.9.6.%d" % i)
s.sql("UPDATE login_attempt SET at = now() WHERE username = 'dave'")
t.status(login("dave", PW, "10.9.6.50"), 429, "dave: 5 failures, a correct login at once is delayed")
r = s.ctl("reset-password", "dave", "--password-env", "MH_T_PW", env={"MH_T_PW": PW + " 2"})
t.is_(r.returncode, 0, "modelhubctl reset-password dave")
t.status(login("dave", PW + " 2", "10.9.6.51"), 200,
         "after the reset dave logs in at once from another address")

# ---- per address: much looser, failures only, any account; a success resets it
for i in range(PER_ADDR - 1):
    login("ghost%d" % i, BAD, "10.9.7.1")
t.status(login("erin", PW, "10.9.7.1"), 200,
         "%d failures on other accounts: a correct login from the address still works" % (PER_ADDR - 1))
for i in range(PER_ADDR - 1):
    t.status(login("ghost%d" % i, BAD, "10.9.7.1"), 401,
             "the success reset the address count (failure %d: 401)" % (i + 1))
t.status(login("ghostx", BAD, "10.9.7.1"), 401, "failure %d: 401" % PER_ADDR)
r = login("erin", PW, "10.9.7.1")
t.status(r, 429, "%d failures from one address: that address is limited" % PER_ADDR)
t.like((r.json or {}).get("error", {}).get("message", ""), r"from this address",
       "... the message names the address limit")
t.status(login("erin", PW, "10.9.7.2"), 200, "erin from another address is not affected")

# ---- successful logins are throttled per (account, address) (finding 7)
for i in range(10):
    r = login("frank", PW, "10.9.8.1")
t.status(r, 200, "10 successful logins within a minute")
r = login("frank", PW, "10.9.8.1")
t.status(r, 429, "the 11th from the same address within the minute: 429")
t.ok(1 <= retry_after(r) <= 60, "... Retry-After within the minute")
t.status(login("frank", PW, "10.9.8.2"), 200, "frank from another address: 200")
t.status(login("bob", PW, "10.9.8.1"), 200, "bob from that address: 200")

# ---- trusted proxies: off by default, the headers are not believed
xff = {"X-Forwarded-For": "198.51.100.7"}
r = s.api("POST", "/api/auth/login", json={"username": "bob", "password": PW}, headers=xff)
t.status(r, 200, "login through nginx with a spoofed X-Forwarded-For")
rows = s.sql("SELECT ip FROM session WHERE user_id = (SELECT id FROM app_user WHERE"
             " username = 'bob') ORDER BY id DESC LIMIT 1")
t.is_(rows and rows[0][0], "127.0.0.1", "no trusted proxies: the peer's address is used")

s.set_config(**{"http.trusted_proxies": "127.0.0.1/32, ::1"})
s.reload_fcgi()
time.sleep(1)
r = s.api("POST", "/api/auth/login", json={"username": "bob", "password": PW},
          headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
t.status(r, 200, "login through a trusted proxy")
rows = s.sql("SELECT ip FROM session WHERE user_id = (SELECT id FROM app_user WHERE"
             " username = 'bob') ORDER BY id DESC LIMIT 1")
t.is_(rows and rows[0][0], "198.51.100.7",
      "trusted proxy: the right-most untrusted X-Forwarded-For entry is the client")
r = s.api("POST", "/api/auth/login", json={"username": "bob", "password": PW},
          headers={"Forwarded": "for=\"[2001:db8::5]:1234\";proto=https"})
rows = s.sql("SELECT ip FROM session WHERE user_id = (SELECT id FROM app_user WHERE"
             " username = 'bob') ORDER BY id DESC LIMIT 1")
t.is_(rows and rows[0][0], "2001:db8::5", "Forwarded: for= is read too")

# behind one proxy, one client's failures do not stop the others
for i in range(5):
    s.api("POST", "/api/auth/login", json={"username": "erin", "password": BAD},
          headers={"X-Forwarded-For": "198.51.100.66"})
r = s.api("POST", "/api/auth/login", json={"username": "erin", "password": PW},
          headers={"X-Forwarded-For": "198.51.100.66"})
t.status(r, 429, "the failing client (by X-Forwarded-For) is limited for erin")
time.sleep(1.2)
t.status(s.api("POST", "/api/auth/login", json={"username": "erin", "password": PW},
               headers={"X-Forwarded-For": "198.51.100.67"}), 200,
         "erin from another client of the same proxy logs in (after the 1 s delay)")

# anonymous tokens per client address behind the proxy
for i in range(3):
    r = s.api("POST", "/api/auth/anon", headers={"X-Forwarded-For": "198.51.100.20"})
t.status(r, 201, "3 anonymous tokens for one client")
r = s.api("POST", "/api/auth/anon", headers={"X-Forwarded-For": "198.51.100.20"})
t.status(r, 429, "the 4th for that client: 429")
r = s.api("POST", "/api/auth/anon", headers={"X-Forwarded-For": "198.51.100.21"})
t.status(r, 201, "another client of the same proxy still gets one")

# ---- signup: the rate limit comes before the lookup (finding 5)
sx = {"X-Forwarded-For": "198.51.100.30"}
for i in range(3):
    r = s.api("POST", "/api/auth/signup", headers=sx,
              json={"username": "taken%d" % i, "email": "alice@example.org", "password": PW})
    t.status(r, 409, "taken email %d within the limit: 409" % (i + 1))
r1 = s.api("POST", "/api/auth/signup", headers=sx,
           json={"username": "newname", "email": "alice@example.org", "password": PW})
r2 = s.api("POST", "/api/auth/signup", headers=sx,
           json={"username": "newname", "email": "free@example.org", "password": PW})
t.status(r1, 429, "past the limit a taken email gets 429, not 409")
t.status(r2, 429, "... and so does a free one")
t.is_((r1.json or {}).get("error"), (r2.json or {}).get("error"),
      "taken and free answer the same body past the limit")
t.ok(not s.sql("SELECT 1 FROM app_user WHERE username = 'newname'"), "no account created")
t.status(s.api("POST", "/api/auth/signup", headers={"X-Forwarded-For": "198.51.100.31"},
               json={"username": "newname", "email": "free@example.org", "password": PW}),
         201, "another client of the proxy may sign up")

s.stop()
t.done()
