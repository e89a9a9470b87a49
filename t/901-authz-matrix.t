#!/usr/bin/python3
# 901-authz-matrix.t — the authorization matrix (issue 17): every route of the router tables (src/fcgi/api_*.c) called by {none, anon, owner, other, admin} with an empty JSON body; the statuses must equal t/authz-matrix.txt, whose entries must be exactly the router's routes (a new route without an entry fails), and every row must obey its access level (no token 401; ACCESS_USER refuses anonymous; ACCESS_ADMIN refuses everyone else with 403) and never show the owner's resource to another caller (no 2xx for "other" or "anon" where the path names the owner's request, session or user).
# To add a route: run this test, read the "observed" diagnostics for it, check them by hand, and add the line to t/authz-matrix.txt.
import glob
import os
import re
import sys
import uuid

top = os.environ.get("top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(top, "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
CALLERS = ("none", "anon", "owner", "other", "admin")
ACC = {"ACCESS_PUBLIC": "public", "ACCESS_SESSION": "session", "ACCESS_USER": "user",
       "ACCESS_ADMIN": "admin"}
routes = {}
for f in sorted(glob.glob(os.path.join(top, "src", "fcgi", "api_*.c"))):
    for m in re.finditer(r'\{"(GET|POST|PATCH|DELETE|PUT)", "([^"]*)", (ACCESS_[A-Z]+)', open(f).read()):
        routes["%s %s" % (m.group(1), m.group(2))] = ACC[m.group(3)]
t.ok(len(routes) >= 60, "found the router tables (%d routes)" % len(routes))

want = {}
with open(os.path.join(top, "t", "authz-matrix.txt")) as f:
    for ln in f:
        ln = ln.split("#", 1)[0].split()
        if ln:
            want["%s %s" % (ln[0], ln[1])] = [int(x) for x in ln[2:]]
t.is_(sorted(r for r in routes if r not in want), [],
      "every route has a line in t/authz-matrix.txt (add new routes there)")
t.is_(sorted(r for r in want if r not in routes), [], "t/authz-matrix.txt names no route the router lacks")
t.ok(all(len(v) == len(CALLERS) for v in want.values()), "each line has a status for each of %s"
     % ", ".join(CALLERS))

s = Stack(config={"auth.pwhash_fast": "1", "anon.per_ip_per_hour": "100000",
                  "signup.per_ip_per_hour": "100000", "login.per_account_address_per_minute": "0",
                  "reset.per_ip_per_hour": "100000", "fcgi.workers": "2"})
admin_pw = s.admin_password
s.sql("INSERT INTO model (id) VALUES ('m901')")
owner_tok = s.user("owner901")
s.user("other901")
s.user("victim901")
r = s.api("POST", "/api/requests", token=owner_tok, json={"model_id": "m901", "inputs": ["CCO"]})
req_id = (r.json or {}).get("id")
r = s.api("POST", "/api/requests", token=owner_tok, json={"model_id": "m901", "inputs": ["CCN"]})
req2_id = (r.json or {}).get("id")
t.ok(req_id and req2_id, "fixture: the owner's requests %s and %s" % (req_id, req2_id))
sess_id = s.sql("SELECT max(id) FROM session WHERE user_id = (SELECT id FROM app_user"
                " WHERE username = 'owner901')")[0][0]
victim_id = s.sql("SELECT id FROM app_user WHERE username = 'victim901'")[0][0]


def path_of(route):
    """The route's path with its {} filled: the owner's resource where it
    has one (request, session), the model m901, a user (victim901)."""
    p = route.split(" ", 1)[1]
    if p.startswith("/api/admin/requests/"):
        return p.replace("{}", str(req2_id))  # the admin's cancel: another request
    if "/requests/{}" in p or "/work-requests/{}" in p:
        return p.replace("{}", str(req_id))
    if p.startswith("/api/account/sessions/"):
        return p.replace("{}", str(sess_id))
    if p.startswith("/api/admin/users/"):
        return p.replace("{}", str(victim_id))
    if p.startswith("/api/models/"):
        return p.replace("{}", "m901")
    if p.startswith("/api/auth/anonymous-login/"):
        return p.replace("{}", str(uuid.UUID(int=901)))
    return p.replace("{}", "901")


def token_of(caller):
    """A fresh token per call: routes like logout or account deletion end
    the caller's session and must not spoil the next call."""
    if caller == "none":
        return None
    if caller == "anon":
        return s.anon()
    if caller == "admin":
        return s.login("t_admin", admin_pw)
    return s.login(caller + "901")


# destructive calls last: the admin's DELETE of a model or user comes after
# everything that uses them
order = sorted(routes, key=lambda r: (r.startswith("DELETE"), r))
observed = {}
for route in order:
    meth = route.split(" ", 1)[0]
    row = []
    for caller in CALLERS:
        tok = token_of(caller)
        r = s.api(meth, path_of(route), json={} if meth in ("POST", "PATCH", "PUT") else None,
                  token=tok)
        row.append(r.status)
    observed[route] = row
    if route in want and row != want[route]:
        t.diag("observed: %-45s %s" % (route, " ".join(str(x) for x in row)))
    elif route not in want:
        t.diag("observed (no entry yet): %s %s" % (route, " ".join(str(x) for x in row)))

bad = sorted(r for r in routes if r in want and observed[r] != want[r])
t.is_(bad, [], "every route answers each caller as t/authz-matrix.txt says")

# invariants, whatever the file says
rules = []
for route, acc in sorted(routes.items()):
    o = dict(zip(CALLERS, observed[route]))
    if acc != "public" and o["none"] != 401:
        rules.append("%s: no token %d, not 401" % (route, o["none"]))
    if acc == "user" and o["anon"] not in (401, 403):
        rules.append("%s: anonymous %d on a user route" % (route, o["anon"]))
    if acc == "admin" and any(o[c] != 403 for c in ("anon", "owner", "other")):
        rules.append("%s: a non-admin got %s" % (route, [o[c] for c in ("anon", "owner", "other")]))
    owned = route.split(" ", 1)[1].startswith(("/api/requests/{}", "/api/work-requests/{}")) or \
        route.endswith("/api/account/sessions/{}")
    if owned and any(200 <= o[c] < 300 for c in ("anon", "other")):
        rules.append("%s: another caller reached the owner's resource %s" % (route, o))
t.is_(rules, [], "access levels hold and no caller reaches another's resource")
s.stop()
t.done()
