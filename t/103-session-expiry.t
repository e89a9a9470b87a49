#!/usr/bin/python3
# 103-session-expiry.t — idle and absolute expiry with short lifetimes: session_expired, refresh never passes the absolute expiry, API tokens do not idle.
import os
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
from flows import error_code as code  # noqa: E402

IDLE, ABS, ANON = 3, 7, 3
t = TAP()
s = Stack(config={"auth.pwhash_fast": "1", "session.idle_seconds": str(IDLE),
                  "session.absolute_seconds": str(ABS), "anon.max_age_seconds": str(ANON)})


def ts(x):
    return datetime.strptime(x, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def session(tok):
    return s.api("GET", "/api/auth/session", token=tok)


s.user("alice", password="correct horse battery")

# ---- idle expiry
r = s.api("POST", "/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
j = r.json
t.ok(abs(ts(j["expires_at"]) - ts(j["absolute_expires_at"]) + (ABS - IDLE)) < 1.5,
     "idle expiry %d s, absolute %d s after login" % (IDLE, ABS))
tok = j["token"]
t.status(session(tok), 200, "fresh session works")
t.status(session(tok), 200, "second request works (cached)")
time.sleep(IDLE + 1)
r = session(tok)
t.status(r, 401, "after the idle time: 401")
t.is_(code(r), "session_expired", "code session_expired")
r = s.api("POST", "/api/auth/refresh", token=tok)
t.status(r, 401, "refresh after the idle expiry: 401")
t.is_(code(r), "session_expired", "refresh cannot revive an expired session")
r = s.api("GET", "/api/auth/session", cookies={"modelhub_session": tok})
t.is_(code(r), "session_expired", "expired cookie: session_expired too")

# ---- refresh keeps it alive, but never past the absolute expiry
t0 = time.time()
j = s.api("POST", "/api/auth/login",
          json={"username": "alice", "password": "correct horse battery"}).json
tok, absolute = j["token"], j["absolute_expires_at"]
alive = True
last = None
refreshes = 0
while time.time() - t0 < ABS - 1.5:
    time.sleep(1.5)
    r = s.api("POST", "/api/auth/refresh", token=tok)
    if r.status != 200:
        alive = False
        break
    refreshes += 1
    last = r.json
    if ts(last["expires_at"]) > ts(absolute) + 0.001:
        alive = False
        break
t.ok(alive and refreshes >= 2, "refreshed %d times past the idle time" % refreshes)
t.ok(time.time() - t0 > IDLE + 1, "the session outlived its idle time by refreshing")
t.status(session(tok), 200, "still valid after %.1f s" % (time.time() - t0))
t.is_(last and last["absolute_expires_at"], absolute, "absolute expiry never moves")
r = s.api("POST", "/api/auth/refresh", token=tok)
t.ok(r.status == 200 and ts(r.json["expires_at"]) <= ts(absolute) + 0.001,
     "refresh near the end is capped at the absolute expiry")
while time.time() - t0 < ABS + 0.5:
    time.sleep(0.5)
r = session(tok)
t.status(r, 401, "after the absolute expiry: 401 even though refreshed")
t.is_(code(r), "session_expired", "absolute expiry: session_expired")

# ---- anonymous sessions have an absolute lifetime
r = s.api("POST", "/api/auth/anon")
atok = r.json["token"]
t.ok(abs(ts(r.json["expires_at"]) - time.time() - ANON) < 2, "anon expires after anon.max_age_seconds")
t.status(session(atok), 200, "anon session works")
time.sleep(ANON + 1)
r = session(atok)
t.status(r, 401, "anon session after its lifetime: 401")
t.is_(code(r), "session_expired", "anon: session_expired")

# ---- API tokens do not idle-expire
admin = s.admin_token
t.status(session(admin), 200, "API token works")
k = s.api("GET", "/api/auth/session", token=admin).json
t.is_(k.get("kind"), "API", "API token kind")
time.sleep(IDLE + 1)
t.status(session(admin), 200, "API token still works after the idle time")
r = s.api("POST", "/api/auth/refresh", token=admin)
t.status(r, 200, "refresh of an API token answers 200")
t.is_((r.json or {}).get("expires_at"), k.get("expires_at"), "and changes nothing")

s.stop()
t.done()
