#!/usr/bin/python3
# 173-admin-users.t — user admin: prefix search on username, name or email; one user with request counts and live sessions; role and disabled changes reach every replica's session cache (NOTIFY session_revoked); delete a user with their data only with confirm=<username>, never oneself; a USER is refused everything.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack                 # noqa: E402
from flows import error_code as code, Listener  # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
s.add_demo_models()
adm = s.admin_token
for name, email, first, last in (("hannah", "h.smith@example.com", "Hannah", "Smith"),
                                  ("harold", "hal@corp.example", "Harold", "Jones"),
                                  ("ivy", "ivy@example.com", "Ivy", "Hanley"),
                                  ("under_score", "us@example.com", None, None)):
    body = {"username": name, "email": email, "password": "pw-%s-long-enough" % name}
    if first:
        body.update(first_name=first, last_name=last)
    t.status(s.api("POST", "/api/auth/signup", json=body), 201, "signup %s" % name)
    s.passwords[name] = body["password"]
ivy = s.login("ivy")


def names(q, **kw):
    r = s.api("GET", "/api/admin/users?" + "&".join("%s=%s" % kv for kv in dict(q=q, **kw).items()), token=adm)
    return sorted(u["username"] for u in (r.json or {}).get("items", [])) if r.status == 200 else r.status


t.is_(names("har"), ["harold"], "username prefix")
t.is_(names("HAR"), ["harold"], "any case")
t.is_(names("ha"), ["hannah", "harold", "ivy"], "username or name prefix")
t.is_(names("han"), ["hannah", "ivy"], "username or last name prefix (Hanley)")
t.is_(names("smi"), ["hannah"], "last name")
t.is_(names("hal%40corp"), ["harold"], "email prefix")
t.is_(names("%25"), [], "a % is a literal, not a wildcard")
t.is_(names("under_"), ["under_score"], "an _ is a literal")
t.is_(names("u_der"), [], "an _ matches only itself")
t.is_(names("zzz"), [], "no match: empty list")
t.is_(names("x" * 129), 400, "an over-long q: 400")
t.is_(names("h", limit="1").__len__(), 1, "search pages with limit")

# ---- one user
uid = s.sql("SELECT id FROM app_user WHERE username = 'ivy'")[0][0]
for inputs in (["CCO"], ["C", "CC"]):
    t.status(s.api("POST", "/api/requests", token=ivy, json={"model_id": "eos3b5e", "inputs": inputs}), 201, "ivy submits")
s.api("DELETE", "/api/requests/%s" % s.api("GET", "/api/requests", token=ivy).json["items"][0]["id"], token=ivy)
r = s.api("GET", "/api/admin/users/%s" % uid, token=adm)
t.status(r, 200, "GET /api/admin/users/{id}")
j = r.json or {}
t.is_((j.get("username"), j.get("email"), j.get("last_name")), ("ivy", "ivy@example.com", "Hanley"), "who")
t.is_(j.get("requests"), {"total": 2, "queued": 1, "running": 0, "completed": 0, "failed": 0, "cancelled": 1},
      "request counts by status")
t.is_(j.get("live_sessions"), 1, "live sessions")
t.like(j.get("last_request_at") or "", r"^\d{4}-", "last request time")
t.ok("password_hash" not in r.text and "$argon2" not in r.text, "never the hash")
t.is_(s.api("GET", "/api/admin/users/999999", token=adm).status, 404, "unknown user: 404")
t.is_(s.api("GET", "/api/admin/users/abc", token=adm).status, 404, "bad id: 404")
for m, p in (("GET", "/api/admin/users/%s" % uid), ("DELETE", "/api/admin/users/%s?confirm=ivy" % uid),
             ("GET", "/api/admin/users?q=h")):
    t.is_(s.api(m, p, token=ivy).status, 403, "a USER gets 403: %s %s" % (m, p.split("?")[0]))

# ---- changes reach every replica: NOTIFY session_revoked
lst = Listener(s, "session_revoked")
t.is_(s.api("GET", "/api/admin/requests", token=ivy).status, 403, "ivy is not admin (session now cached)")
r = s.api("PATCH", "/api/admin/users/%s" % uid, token=adm, json={"roles": ["ADMIN", "USER"]})
t.status(r, 200, "grant ADMIN")
t.is_(lst.drain(), ["changed:%s" % uid], "role change notifies session_revoked (other replicas drop their cache)")
t.is_(s.api("GET", "/api/admin/requests", token=ivy).status, 200, "ivy is admin at once")
r = s.api("PATCH", "/api/admin/users/%s" % uid, token=adm, json={"roles": ["USER"]})
t.is_(lst.drain(), ["changed:%s" % uid], "revoking ADMIN notifies too")
t.is_(s.api("GET", "/api/admin/requests", token=ivy).status, 403, "and takes effect at once")
lst.close()

# ---- delete with data
r = s.api("DELETE", "/api/admin/users/%s" % uid, token=adm)
t.is_((r.status, code(r)), (422, "confirmation_required"), "no confirm: 422")
r = s.api("DELETE", "/api/admin/users/%s?confirm=hannah" % uid, token=adm)
t.is_(r.status, 422, "wrong confirm: 422")
t.is_(s.api("DELETE", "/api/admin/users/999999?confirm=x", token=adm).status, 404, "unknown: 404")
admin_id = s.sql("SELECT id FROM app_user WHERE 'ADMIN' = ANY(roles) ORDER BY id LIMIT 1")[0][0]
r = s.api("DELETE", "/api/admin/users/%s?confirm=t_admin" % admin_id, token=adm)
t.is_((r.status, code(r)), (409, "own_account"), "an admin cannot delete themselves here")
r = s.api("DELETE", "/api/admin/users/%s?confirm=ivy" % uid, token=adm)
t.status(r, 200, "delete ivy")
t.is_(s.api("GET", "/api/auth/session", token=ivy).status, 401, "her session is gone")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE user_id = $1", uid)[0][0], "0", "her requests are gone")
t.is_(s.api("GET", "/api/admin/users/%s" % uid, token=adm).status, 404, "and so is she")
t.done()
