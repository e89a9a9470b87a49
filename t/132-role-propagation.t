#!/usr/bin/python3
# 132-role-propagation.t — a role change (demotion and promotion) made on one API replica reaches another replica's session caches at once, like a disable (issue 17, finding 6); the session itself stays valid.
import atexit
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, fcgi_request   # noqa: E402

t = TAP()
s = Stack(config={"auth.pwhash_fast": "1", "fcgi.workers": "2", "auth.debug_headers": "1",
                  "session.cache_seconds": "120"})
sock2 = os.path.join(s.tmp, "run", "fcgi2.sock")
log2 = open(os.path.join(s.tmp, "log", "fcgi2.log"), "ab")
other = subprocess.Popen([s.bin("modelhub-fcgi"), "-c", s.config_path], stdin=subprocess.DEVNULL,
                         stdout=log2, stderr=log2, env=s.env({"MODELHUB_FCGI_SOCKET": sock2}),
                         cwd=s.tmp, start_new_session=True)
atexit.register(lambda: other.poll() is None and other.kill())
for _ in range(200):
    if os.path.exists(sock2):
        break
    time.sleep(0.05)
t.ok(os.path.exists(sock2), "a second API replica (modelhub-fcgi) on the same database")


def on_other(tok, n=12):
    """n requests to an admin route on the other replica: [(status, cache)]."""
    out = []
    for _ in range(n):
        r = fcgi_request(sock2, "GET", "/api/admin/users", b"",
                         {"Authorization": "Bearer " + tok})
        out.append((r.status, r.headers.get("x-session-cache")))
    return out


admin = s.admin_token
tok = s.user("bob")
bob_id = s.sql("SELECT id FROM app_user WHERE username = 'bob'")[0][0]
r = s.api("PATCH", "/api/admin/users/%s" % bob_id, json={"roles": ["USER", "ADMIN"]}, token=admin)
t.status(r, 200, "bob promoted to ADMIN on replica 1")
res = on_other(tok)
t.ok(all(st == 200 for st, _c in res), "bob uses an admin route on replica 2 (%s)" % res[:3])
t.ok(any(c == "hit" for _s, c in res), "... served from replica 2's session cache")

def settle(want, path="/api/admin/users", limit=2.0):
    """Seconds until replica 2 answers tok with want (NOTIFY delivery is
    asynchronous: milliseconds, not session.cache_seconds = 120), or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        r = fcgi_request(sock2, "GET", path, b"", {"Authorization": "Bearer " + tok})
        if r.status == want:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


r = s.api("PATCH", "/api/admin/users/%s" % bob_id, json={"roles": ["USER"]}, token=admin)
t.status(r, 200, "bob demoted on replica 1")
d = settle(403)
t.ok(d is not None, "replica 2 refuses the admin route within 2 s, not 120 s (%s s)"
     % (None if d is None else round(d, 3)))
res = on_other(tok)
t.ok(all(st == 403 for st, _c in res), "... and from then on (%s)" % res[:3])
r = fcgi_request(sock2, "GET", "/api/auth/session", b"", {"Authorization": "Bearer " + tok})
t.status(r, 200, "bob's session itself stays valid on replica 2")
t.is_((r.json or {}).get("roles"), ["USER"], "... with the new roles")

# the disable path, for comparison: immediate too (and the session ends)
r = s.api("PATCH", "/api/admin/users/%s" % bob_id, json={"disabled": True}, token=admin)
t.status(r, 200, "bob disabled on replica 1")
d = settle(401, "/api/auth/session")
t.ok(d is not None, "replica 2 refuses bob's session within 2 s (%s s)"
     % (None if d is None else round(d, 3)))

other.terminate()
other.wait(10)
s.stop()
t.done()
