#!/usr/bin/python3
# 133-strict-input.t — strict RFC 8259 JSON numbers (NaN, Infinity, +1, 01, .5, 1., 1e999 are 400 bad_json), an overflowing after= is 422 naming it (not clamped), and the public model catalogue does not show local_command (issue 17, finding 7).
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(config={"auth.pwhash_fast": "1"})
adm = s.admin_token
JH = {"Content-Type": "application/json", "Authorization": "Bearer " + adm}


def code(r):
    return ((r.json or {}).get("error") or {}).get("code")


# ---- numbers: a PATCH of a model is a JSON body with numbers
M = {"id": "m133", "local_command": ["/usr/bin/python3", "/srv/serve.py", "--port", "{port}"],
     "description": "d", "details": {"title": "T"}}
t.status(s.api("POST", "/api/models", json=M, token=adm), 201, "model m133 created")
for bad in ("NaN", "-NaN", "Infinity", "-Infinity", "infinity", "nan", "+1", "01", "-01", ".5",
            "1.", "1e", "1e+", "0x10", "1e999", "-1e999", "1_000", "2..1"):
    body = '{"version": 1, "cpu_limit_m": %s}' % bad
    r = s.api("PATCH", "/api/models/m133", data=body, headers=JH)
    t.ok(r.status == 400 and code(r) == "bad_json",
         "number %s: 400 bad_json (got %s %s)" % (bad, r.status, code(r)))
for good, want in (("1000", 200), ("1e3", 200), ("1.0E+3", 200), ("-0", 422), ("0.5e1", 200)):
    r = s.api("PATCH", "/api/models/m133",
              data='{"version": %d, "cpu_limit_m": %s}' % (s.api("GET", "/api/models/m133",
                                                                  token=adm).json["version"], good),
              headers=JH)
    t.ok(r.status in (want, 422) and code(r) != "bad_json",
         "number %s is valid JSON (status %s, not bad_json)" % (good, r.status))
r = s.api("PATCH", "/api/models/m133", data='{"version": 1, "description": "NaN Infinity 01"}',
          headers=JH)
t.ok(code(r) != "bad_json", "the same words inside a string are fine (%s)" % r.status)
t.ok(s.sql("SELECT cpu_limit_m FROM model WHERE id = 'm133'")[0][0] != "0",
     "nothing non-finite was stored")

# ---- after= overflow: 422 naming it, not silently clamped
r = s.api("GET", "/api/admin/users?after=99999999999999999999", token=adm)
t.status(r, 422, "after= beyond int64: 422")
t.is_(code(r), "validation_failed", "code validation_failed")
t.ok("after" in ((r.json or {}).get("error", {}).get("fields") or {}), "error.fields names after")
r = s.api("GET", "/api/admin/users?after=9223372036854775807", token=adm)
t.status(r, 200, "after= at the int64 maximum is fine (an empty page)")
t.is_((r.json or {}).get("items"), [], "... with no users")
t.status(s.api("GET", "/api/admin/users?after=abc", token=adm), 400, "after=abc: 400 as before")

# ---- local_command: admins only
anon = s.anon()
for who, tok in (("no session", None), ("anonymous", anon), ("user", s.user("bob"))):
    r = s.api("GET", "/api/models", token=tok)
    items = (r.json or {}).get("items") or []
    m = [x for x in items if x.get("id") == "m133"]
    t.ok(r.status == 200 and m and "local_command" not in m[0] and m[0].get("details"),
         "GET /api/models (%s): listed with details, without local_command" % who)
    r = s.api("GET", "/api/models/m133", token=tok)
    t.ok(r.status == 200 and "local_command" not in (r.json or {}) and r.headers.get("etag"),
         "GET /api/models/m133 (%s): no local_command, ETag kept" % who)
    t.ok("/srv/serve.py" not in r.text, "... the command does not appear at all")
r = s.api("GET", "/api/models", token=adm)
m = [x for x in (r.json or {}).get("items", []) if x.get("id") == "m133"]
t.is_(m and m[0].get("local_command"), M["local_command"], "admins still see local_command")
r = s.api("GET", "/api/models/m133", token=adm)
t.is_((r.json or {}).get("local_command"), M["local_command"], "... in the single model too")

s.stop()
t.done()
