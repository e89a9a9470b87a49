#!/usr/bin/python3
# 170-account.t — /api/account: change password (current password required, other sessions revoked, checks rate-limited), change email, list and revoke own sessions, delete my data, delete my account; every refusal path.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack                 # noqa: E402
from flows import error_code as code    # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1", "account.password_checks": "4",
                              "session.cache_seconds": "30"})
s.add_demo_models()

PW = "first-password-1"
a1 = s.user("carol", PW)
a2 = s.login("carol")
other = s.user("dave")

# ---- who may call
t.is_(s.api("GET", "/api/account/sessions").status, 401, "no session: 401")
anon = s.anon()
t.is_(s.api("GET", "/api/account/sessions", token=anon).status, 403, "anonymous: 403")

# ---- sessions
r = s.api("GET", "/api/account/sessions", token=a1)
t.status(r, 200, "list own sessions")
items = (r.json or {}).get("items", [])
t.is_(len(items), 2, "two live sessions (two logins)")
cur = [x for x in items if x["current"]]
t.is_(len(cur), 1, "exactly one marked current")
t.ok(all(set(x) >= {"id", "kind", "created_at", "last_seen", "expires_at", "user_agent", "ip"}
         for x in items), "each with id, kind, times, user agent, ip")
other_sid = [x["id"] for x in items if not x["current"]][0]
dave_sid = s.api("GET", "/api/account/sessions", token=other).json["items"][0]["id"]
r = s.api("DELETE", "/api/account/sessions/%d" % dave_sid, token=a1)
t.is_((r.status, code(r)), (404, "not_found"), "cannot revoke someone else's session")
t.is_(s.api("GET", "/api/auth/session", token=other).status, 200, "dave's session still alive")
r = s.api("DELETE", "/api/account/sessions/x1", token=a1)
t.is_(r.status, 404, "bad session id: 404")
r = s.api("DELETE", "/api/account/sessions/%d" % other_sid, token=a1)
t.status(r, 200, "revoke my other session")
r = s.api("GET", "/api/auth/session", token=a2)
t.is_((r.status, code(r)), (401, "session_expired"), "revoked session is dead at once")
r = s.api("DELETE", "/api/account/sessions/%d" % other_sid, token=a1)
t.is_(r.status, 404, "revoking it again: 404")

# ---- change password
a2 = s.login("carol")
NEW = "second-password-2"
r = s.api("POST", "/api/account/password", token=a1, json={"new_password": NEW})
t.is_((r.status, code(r)), (422, "validation_failed"), "no current password: 422")
t.ok("current_password" in (r.json or {}).get("error", {}).get("fields", {}), "names current_password")
r = s.api("POST", "/api/account/password", token=a1,
          json={"current_password": "wrong-password-x", "new_password": NEW})
t.is_((r.status, code(r)), (403, "wrong_password"), "wrong current password: 403 wrong_password")
r = s.api("POST", "/api/account/password", token=a1,
          json={"current_password": PW, "new_password": "short"})
t.is_((r.status, code(r)), (422, "validation_failed"), "too short new password: 422")
t.ok("new_password" in r.json["error"]["fields"], "names new_password")
r = s.api("POST", "/api/account/password", token=a1,
          json={"current_password": PW, "new_password": "carol"})
t.is_(r.status, 422, "new password equal to the username: 422")
r = s.api("POST", "/api/account/password", token=a1,
          json={"current_password": PW, "new_password": NEW, "x": 1})
t.is_(r.status, 422, "unknown member: 422")
r = s.api("POST", "/api/account/password", token=a1,
          json={"current_password": PW, "new_password": NEW})
t.status(r, 200, "password changed")
t.is_(s.api("GET", "/api/auth/session", token=a1).status, 200, "current session kept")
t.is_(s.api("GET", "/api/auth/session", token=a2).status, 401, "other session revoked")
r = s.api("POST", "/api/auth/login", json={"username": "carol", "password": PW})
t.is_(r.status, 401, "old password no longer logs in")
a2 = s.login("carol", NEW)
t.ok(a2, "new password logs in")

# ---- current password checks are limited (4 per 15 min in this config)
s.sql("DELETE FROM rate_limit WHERE bucket LIKE 'pwcheck:%'")
seen = []
for i in range(4):
    r = s.api("POST", "/api/account/delete-data", token=a1, json={"current_password": "nope-nope-%d" % i})
    seen.append(r.status)
t.is_(seen[:3], [403, 403, 403], "wrong passwords: 403 each")
r = s.api("POST", "/api/account/delete-data", token=a1, json={"current_password": NEW})
t.is_((r.status, code(r)), (429, "rate_limited"), "after 4 checks: 429 even with the right one")
t.like(r.headers.get("retry-after", ""), r"^\d+$", "with Retry-After")
s.sql("DELETE FROM rate_limit WHERE bucket LIKE 'pwcheck:%'")

# ---- change email
r = s.api("PATCH", "/api/account", token=a1, json={"email": "carol2@example.com"})
t.is_(r.status, 422, "email change without current password: 422")
r = s.api("PATCH", "/api/account", token=a1, json={"email": "not-an-email", "current_password": NEW})
t.is_((r.status, code(r)), (422, "validation_failed"), "invalid email: 422")
r = s.api("PATCH", "/api/account", token=a1, json={"email": "dave@example.com", "current_password": NEW})
t.is_((r.status, code(r)), (409, "conflict"), "someone else's email: 409")
t.ok("email" in r.json["error"].get("fields", {}), "names email")
r = s.api("PATCH", "/api/account", token=a1, json={"email": "Carol2@Example.com", "current_password": NEW})
t.status(r, 200, "email changed")
t.is_((r.json or {}).get("email"), "carol2@example.com", "stored lower-cased")
r = s.api("POST", "/api/auth/login", json={"email": "carol2@example.com", "password": NEW})
t.status(r, 200, "login by the new email")

# ---- delete my data
for tok in (a1, other):
    t.status(s.api("POST", "/api/requests", token=tok, json={"model_id": "eos3b5e", "inputs": ["CCO", "C"]}),
             201, "a request")
uid = int(s.sql("SELECT id FROM app_user WHERE username = 'carol'")[0][0])
s.sql("INSERT INTO input_cache (model_id, model_version, input_key, input, record, user_id)"
      " VALUES ('eos3b5e', '1', '\\x01', 'CCO', '{}', $1), ('eos3b5e', '1', '\\x02', 'C', '{}', NULL)", str(uid))
r = s.api("POST", "/api/account/delete-data", token=a1, json={})
t.is_(r.status, 422, "delete data without password: 422")
r = s.api("POST", "/api/account/delete-data", token=a1, json={"current_password": NEW})
t.status(r, 200, "delete my data")
t.is_((r.json or {}).get("deleted_requests"), 1, "one request deleted")
t.is_((r.json or {}).get("deleted_cache_entries"), 1, "one cache contribution deleted")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE user_id = $1", str(uid))[0][0], "0", "no request left")
t.is_(s.sql("SELECT count(*) FROM work_request_input i WHERE NOT EXISTS"
            " (SELECT 1 FROM work_request w WHERE w.id = i.request_id)")[0][0], "0", "inputs went too")
t.is_(s.sql("SELECT count(*) FROM input_cache")[0][0], "1", "others' cache entries kept")
t.is_(len(s.api("GET", "/api/requests", token=other).json["items"]), 1, "dave's request kept")
t.is_(s.api("GET", "/api/auth/session", token=a1).status, 200, "account still there")

# ---- delete my account
s.sql("DELETE FROM rate_limit WHERE bucket LIKE 'pwcheck:%'")
r = s.api("POST", "/api/account/delete", token=a1, json={"current_password": "wrong-password-x"})
t.is_(r.status, 403, "delete account with a wrong password: 403")
r = s.api("POST", "/api/account/delete", token=a1, json={"current_password": NEW})
t.status(r, 200, "delete my account")
t.ok(any(c.startswith("modelhub_session=;") for c in r.set_cookies), "cookie cleared")
t.is_(s.api("GET", "/api/auth/session", token=a1).status, 401, "its sessions are gone")
t.is_(s.api("GET", "/api/auth/session", token=a2).status, 401, "all of them")
t.is_(s.sql("SELECT count(*) FROM app_user WHERE username = 'carol'")[0][0], "0", "user row gone")
r = s.api("POST", "/api/auth/login", json={"username": "carol", "password": NEW})
t.is_(r.status, 401, "cannot log in any more")
t.done()
