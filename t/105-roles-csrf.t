#!/usr/bin/python3
# 105-roles-csrf.t — admin-only routes as nobody/anon/user/admin, role and disable changes, the CSRF rule for cookie sessions.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
from flows import error_code as code  # noqa: E402

t = TAP()
s = Stack(config={"auth.pwhash_fast": "1"})
PW = "correct horse battery"


admin = s.admin_token
anon = s.anon()
user = s.user("alice", password=PW)
uid = s.api("GET", "/api/auth/session", token=user).json["user"]["id"]

# ---- admin-only routes
for path in ("/api/admin/users", "/api/admin/requests"):
    r = s.api("GET", path)
    t.status(r, 401, "%s without credentials: 401" % path)
    t.is_(code(r), "unauthorized", "%s without credentials: unauthorized" % path)
    r = s.api("GET", path, token=anon)
    t.status(r, 403, "%s as anonymous: 403" % path)
    r = s.api("GET", path, token=user)
    t.status(r, 403, "%s as user: 403" % path)
    t.is_(code(r), "forbidden", "%s as user: forbidden" % path)
    r = s.api("GET", path, token=admin)
    t.status(r, 200, "%s as admin: 200" % path)

r = s.api("GET", "/api/admin/users", token=admin)
names = [u["username"] for u in (r.json or {}).get("items", [])]
t.ok("t_admin" in names and "alice" in names, "admin sees the accounts")
t.ok(all("password_hash" not in u for u in r.json["items"]), "no hashes in the list")
adm = [u for u in r.json["items"] if u["username"] == "t_admin"]
t.ok(adm and "ADMIN" in adm[0]["roles"], "t_admin has the ADMIN role")
for i in range(3):
    r = s.api("POST", "/api/auth/signup", json={"username": "user%d" % i,
                                                "email": "u%d@example.org" % i, "password": PW})
    t.status(r, 201, "signup user%d" % i)
r = s.api("GET", "/api/admin/users?limit=2", token=admin)
t.is_(len(r.json["items"]), 2, "limit=2 gives two accounts")
cur = r.json.get("next_cursor")
t.ok(cur, "next_cursor when more accounts follow")
r2 = s.api("GET", "/api/admin/users?limit=2&after=%s" % cur, token=admin)
t.ok(r2.json["items"][0]["id"] > r.json["items"][-1]["id"], "the next page follows the first")
r = s.api("GET", "/api/admin/users?limit=1000", token=admin)
t.status(r, 400, "limit out of range: 400")
r = s.api("GET", "/api/admin/users?after=x", token=admin)
t.status(r, 400, "bad cursor: 400")
r = s.api("GET", "/api/auth/session", token=admin)
t.is_((r.json or {}).get("roles"), ["ADMIN", "USER"], "admin session shows both roles")

# ---- role change and disable, seen at once by cached sessions
r = s.api("PATCH", "/api/admin/users/%d" % uid, json={"roles": ["ADMIN", "USER"]}, token=user)
t.status(r, 403, "a user cannot change roles")
s.api("GET", "/api/auth/session", token=user)     # warm the cache
r = s.api("PATCH", "/api/admin/users/%d" % uid, json={"roles": ["ADMIN", "USER"]}, token=admin)
t.status(r, 200, "admin grants ADMIN")
t.is_((r.json or {}).get("roles"), ["ADMIN", "USER"], "roles updated")
t.status(s.api("GET", "/api/admin/users", token=user), 200, "the user's session is admin at once")
r = s.api("PATCH", "/api/admin/users/%d" % uid, json={"roles": ["USER"]}, token=admin)
t.status(s.api("GET", "/api/admin/users", token=user), 403, "and loses it at once")
for name, body in (("bad role", {"roles": ["ROOT"]}), ("empty roles", {"roles": []}),
                   ("roles not a list", {"roles": "ADMIN"}), ("disabled not bool", {"disabled": 1}),
                   ("unknown field", {"password": "x"})):
    r = s.api("PATCH", "/api/admin/users/%d" % uid, json=body, token=admin)
    t.status(r, 422, "PATCH %s: 422" % name)
    t.ok((r.json or {}).get("error", {}).get("fields"), "PATCH %s: fields named" % name)
t.status(s.api("PATCH", "/api/admin/users/999999", json={"disabled": True}, token=admin), 404,
         "PATCH unknown user: 404")
t.status(s.api("PATCH", "/api/admin/users/abc", json={"disabled": True}, token=admin), 404,
         "PATCH non-numeric id: 404")

r = s.api("PATCH", "/api/admin/users/%d" % uid, json={"disabled": True}, token=admin)
t.status(r, 200, "admin disables alice")
r = s.api("GET", "/api/auth/session", token=user)
t.status(r, 401, "disabled user's session ends at once")
t.is_(code(r), "session_expired", "disabled: session_expired")
r = s.api("POST", "/api/auth/login", json={"username": "alice", "password": PW})
t.is_(code(r), "account_disabled", "disabled user cannot log in")
s.api("PATCH", "/api/admin/users/%d" % uid, json={"disabled": False}, token=admin)
r = s.api("POST", "/api/auth/login", json={"username": "alice", "password": PW})
t.status(r, 200, "re-enabled user logs in")
cookie = r.json["token"]

# ---- CSRF: cookie-authenticated state changes need X-Requested-With or same Origin
host = "127.0.0.1:%d" % s.port
ck = {"modelhub_session": cookie}
r = s.api("GET", "/api/auth/session", cookies=ck)
t.status(r, 200, "cookie GET needs no CSRF header")
r = s.api("POST", "/api/auth/refresh", cookies=ck)
t.status(r, 403, "cookie POST without header or Origin: 403")
t.is_(code(r), "csrf", "code csrf")
r = s.api("POST", "/api/auth/logout", cookies=ck)
t.status(r, 403, "cookie logout without header: 403")
t.status(s.api("GET", "/api/auth/session", cookies=ck), 200, "the rejected logout did nothing")
r = s.api("POST", "/api/auth/refresh", cookies=ck, headers={"Origin": "http://evil.example"})
t.status(r, 403, "cookie POST from another Origin: 403")
r = s.api("POST", "/api/auth/refresh", cookies=ck, headers={"Origin": "http://127.0.0.1:1"})
t.status(r, 403, "cookie POST from another port: 403")
r = s.api("POST", "/api/auth/refresh", cookies=ck, headers={"Origin": "null"})
t.status(r, 403, "cookie POST with Origin null: 403")
r = s.api("POST", "/api/auth/refresh", cookies=ck, headers={"X-Requested-With": "fetch"})
t.status(r, 200, "cookie POST with X-Requested-With: 200")
r = s.api("POST", "/api/auth/refresh", cookies=ck, headers={"Origin": "http://" + host})
t.status(r, 200, "cookie POST with the same Origin: 200")
r = s.api("POST", "/api/auth/refresh", token=cookie)
t.status(r, 200, "Bearer POST needs no CSRF header")
r = s.api("PATCH", "/api/admin/users/%d" % uid, json={"disabled": True},
          cookies={"modelhub_session": s.login("t_admin", s.admin_password)})
t.status(r, 403, "admin PATCH by cookie without header: 403")
r = s.api("POST", "/api/auth/logout", cookies=ck, headers={"X-Requested-With": "XMLHttpRequest"})
t.status(r, 200, "cookie logout with the header: 200")
t.status(s.api("GET", "/api/auth/session", cookies=ck), 401, "cookie session ended")

s.stop()
t.done()
