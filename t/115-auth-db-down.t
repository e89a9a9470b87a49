#!/usr/bin/python3
# 115-auth-db-down.t — with Postgres down, a token that is not in the
# session cache cannot be checked: the answer is 503 "unavailable" (retry),
# never a 401 that would log a browser out; all is well after the restart.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(config={"auth.pwhash_fast": "1"})
tok = s.user("dbdown")         # never used on a model route: not cached there
s.stop_postgres()
r = s.api("GET", "/api/requests", token=tok)
t.status(r, 503, "uncached session with the database down: 503")
t.is_((r.json or {}).get("error", {}).get("code"), "unavailable", "code unavailable")
r = s.api("GET", "/api/health")
t.status(r, 503, "health says 503 too")
s.start_postgres()
r = s.api("GET", "/api/requests", token=tok)
t.status(r, 200, "after the restart the same token works")
r = s.api("GET", "/api/requests", token="0" * 64)
t.status(r, 401, "an unknown token is still 401")
t.is_((r.json or {}).get("error", {}).get("code"), "session_expired", "code session_expired")
t.done()
