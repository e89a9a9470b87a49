#!/usr/bin/python3
# 177-openapi.t — GET /api/openapi.json is OpenAPI 3.1 and describes exactly the routes of the router tables (src/fcgi/*.c) with their access level; a real answer of every route, made against the running stack, is a documented status and matches the documented schema (success bodies, and the Error schema for failures).
import glob
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, SRCDIR         # noqa: E402
from flows import wait_request          # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
r = s.api("GET", "/api/openapi.json")
t.status(r, 200, "GET /api/openapi.json without a session")
t.like(r.headers.get("content-type", ""), r"^application/json", "served as JSON")
spec = r.json or {}
t.is_(spec.get("openapi"), "3.1.0", "OpenAPI 3.1")
t.ok(spec == json.load(open(os.path.join(SRCDIR, "src", "fcgi", "openapi.json"))), "the compiled-in copy is the file")

# ---- every route of every table, and nothing else
ACC = {"ACCESS_PUBLIC": "public", "ACCESS_SESSION": "session", "ACCESS_USER": "user", "ACCESS_ADMIN": "admin"}
routes = {}
for f in sorted(glob.glob(os.path.join(SRCDIR, "src", "fcgi", "*.c"))):
    for m in re.finditer(r'\{"(GET|POST|PATCH|DELETE|PUT)", "([^"]*)", (ACCESS_[A-Z]+)', open(f).read()):
        routes[(m.group(1).lower(), m.group(2))] = ACC[m.group(3)]
t.ok(len(routes) >= 59, "found the router tables (%d routes)" % len(routes))
ops = {}
for p, item in spec.get("paths", {}).items():
    for meth, op in item.items():
        ops[(meth, re.sub(r"\{[^}]+\}", "{}", p))] = (p, op)
missing = sorted("%s %s" % k for k in routes if k not in ops)
extra = sorted("%s %s" % k for k in ops if k not in routes)
t.is_(missing, [], "every route of the router is described")
t.is_(extra, [], "the description names no route the router lacks")
wrong = sorted("%s %s" % k for k in routes if k in ops and ops[k][1].get("x-access") != routes[k])
t.is_(wrong, [], "x-access of each operation is the table's access level")
t.is_(sorted(k for k, (p, op) in ops.items() if routes.get(k) != "public" and not op.get("security")), [],
      "every non-public operation names its security")
params_ok = all(len(re.findall(r"\{[^}]+\}", p)) == len([x for x in op.get("parameters", []) if x["in"] == "path"])
                for p, op in ops.values())
t.ok(params_ok, "every path parameter is declared")


# ---- a small JSON Schema checker (the keywords the description uses)


def check(v, sch, where="$"):
    if "$ref" in sch:
        node = spec
        for part in sch["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return check(v, node, where)
    errs = []
    if "allOf" in sch:
        for sub in sch["allOf"]:
            errs += check(v, sub, where)
    if "oneOf" in sch:
        ok = [sub for sub in sch["oneOf"] if not check(v, sub, where)]
        if len(ok) != 1:
            errs.append("%s: matches %d of oneOf" % (where, len(ok)))
    if "enum" in sch and v not in sch["enum"]:
        errs.append("%s: %r not in %r" % (where, v, sch["enum"]))
    if "type" in sch:
        types = sch["type"] if isinstance(sch["type"], list) else [sch["type"]]
        pyt = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
        good = False
        for ty in types:
            if ty == "integer":
                good |= isinstance(v, int) and not isinstance(v, bool)
            elif ty == "number":
                good |= isinstance(v, (int, float)) and not isinstance(v, bool)
            else:
                good |= isinstance(v, pyt[ty])
        if not good:
            return errs + ["%s: %r is not %s" % (where, v if len(repr(v)) < 60 else type(v).__name__, types)]
    if isinstance(v, dict):
        for k in sch.get("required", []):
            if k not in v:
                errs.append("%s: missing %s" % (where, k))
        for k, sub in sch.get("properties", {}).items():
            if k in v:
                errs += check(v[k], sub, where + "." + k)
    if isinstance(v, list) and "items" in sch:
        for i, x in enumerate(v[:20]):
            errs += check(x, sch["items"], "%s[%d]" % (where, i))
    return errs


seen = set()


def call(method, path, expect=None, **kw):
    """Make the call, validate it against the operation; returns the response."""
    r = s.api(method, path, **kw)
    tmpl = re.sub(r"/\d+(?=/|$)", "/{}", path.split("?")[0])
    key = None
    for k in ((method.lower(), path.split("?")[0]), (method.lower(), tmpl)):
        if k in ops:
            key = k
    if key is None:  # a string id such as a model id
        for (m, p) in ops:
            if m == method.lower() and re.fullmatch(re.sub(r"\\\{\\\}", "[^/]+", re.escape(p)), path.split("?")[0]):
                key = (m, p)
    name = "%s %s -> %d" % (method, path, r.status)
    if key is None:
        t.fail(name + ": no operation")
        return r
    seen.add(key)
    op = ops[key][1]
    resp = op["responses"].get(str(r.status)) or (op["responses"].get("default") if r.status >= 400 else None)
    if resp is None:
        t.fail(name + ": status not documented")
        return r
    ctype = r.headers.get("content-type", "").split(";")[0]
    content = resp.get("content", {})
    if r.status == 204 and not content:
        t.pass_(name + " (no body, as documented)")
        return r
    if ctype not in content:
        t.fail(name + ": content type %s not documented (%s)" % (ctype, list(content)))
        return r
    body = r.json if ctype == "application/json" else r.text
    errs = check(body, content[ctype]["schema"])
    t.is_(errs, [], name + " matches its schema")
    if expect is not None and r.status != expect:
        t.diag("%s: wanted %d: %s" % (name, expect, r.text[:200]))
    return r


adm = s.admin_token
u = s.user("oa_user", "oa-user-password")
uid = int(s.sql("SELECT id FROM app_user WHERE username = 'oa_user'")[0][0])
anon = s.anon()
X = {"X-Requested-With": "t"}

call("GET", "/api/openapi.json", 200)
call("GET", "/api/health", 200)
call("GET", "/api/ping", 200)
call("GET", "/api/bands", 200)
call("GET", "/metrics", 200, token=adm)
call("GET", "/api/models", 200)
call("GET", "/api/models/eos3b5e", 200)
call("GET", "/api/models/nope", 404)
m = dict(s.api("GET", "/api/models/eos3b5e", token=adm).json)
newm = {"id": "oa_model", "local_command": m.get("local_command") or ["true"], "execution_mode": "SYNC"}
call("POST", "/api/models", 201, token=adm, json=newm)
call("POST", "/api/models/import-catalog", 200, token=adm, json=[{"Identifier": "oa_model", "Title": "OA model", "Task": ["Regression"]}, {"Identifier": "oa_absent"}])
ver = s.api("GET", "/api/models/oa_model", token=adm).json.get("version")
call("PATCH", "/api/models/oa_model", 200, token=adm, json={"max_instances": 1, "version": ver})
call("DELETE", "/api/models/oa_model/cache", 200, token=adm)
call("DELETE", "/api/models/oa_model", 200, token=adm)
call("POST", "/api/models/eos3b5e/apply-recommendation", None, token=adm, json={})
call("GET", "/api/recommendations", 200, token=adm)
call("GET", "/api/recommendations/history", 200, token=adm)
call("GET", "/api/autoscaler", 200, token=adm)
call("GET", "/api/nodes", 200, token=adm)

rq = call("POST", "/api/requests", 201, token=u, json={"model_id": "eos3b5e", "inputs": ["CCO", "C"]}).json
rid = rq["id"]
rid2 = call("POST", "/api/models/eos3b5e/requests?has_header=false", 201, token=u, data="CCO\n",
            headers={"Content-Type": "text/csv"}).json["id"]
call("GET", "/api/requests", 200, token=u)
call("GET", "/api/requests/%d" % rid, 200, token=u)
wait_request(s, str(rid), timeout=120)
call("GET", "/api/requests/%d/result?format=json" % rid, 200, token=u)
call("GET", "/api/requests/%d/result?format=csv" % rid, 200, token=u)
call("DELETE", "/api/requests/%d" % rid, 409, token=u)
call("POST", "/api/admin/requests/%d/cancel" % rid2, None, token=adm)
call("GET", "/api/admin/requests", 200, token=adm)
call("GET", "/api/stats", 200, token=adm)
call("GET", "/api/stats?format=csv", 200, token=adm)
call("GET", "/api/stats?from=2026-13-01", 422, token=adm)
call("GET", "/api/instances?state=finished", 200, token=adm)
iid = s.sql("SELECT id FROM model_instance ORDER BY id LIMIT 1")
iid = iid[0][0] if iid else "999999"
call("GET", "/api/instances/%s" % iid, None, token=adm)
call("GET", "/api/instances/%s/samples" % iid, None, token=adm)
call("GET", "/api/instances/%s/events" % iid, None, token=adm)
call("GET", "/api/instances/%s/logs" % iid, None, token=adm)
call("POST", "/api/instances/%s/stop" % iid, None, token=adm)

call("POST", "/api/auth/signup", 201, json={"username": "oa_two", "email": "oa2@example.com", "password": "oa-two-password"})
lg = call("POST", "/api/auth/login", 200, json={"username": "oa_two", "password": "oa-two-password"}).json
tok2 = lg["token"]
call("GET", "/api/auth/session", 200, token=tok2)
call("POST", "/api/auth/refresh", 200, token=tok2)
call("POST", "/api/auth/anon", 201)
call("GET", "/api/account/sessions", 200, token=tok2)
call("PATCH", "/api/account", 200, token=tok2, json={"email": "oa3@example.com", "current_password": "oa-two-password"})
call("POST", "/api/account/password", 200, token=tok2,
     json={"current_password": "oa-two-password", "new_password": "oa-two-password-2"})
other = s.login("oa_two", "oa-two-password-2")
osid = s.api("GET", "/api/account/sessions", token=other).json["items"][0]["id"]
call("DELETE", "/api/account/sessions/%d" % osid, 200, token=tok2)
call("POST", "/api/account/delete-data", 200, token=tok2, json={"current_password": "oa-two-password-2"})
call("POST", "/api/auth/password-reset", 202, json={"login": "oa_two"})
two_id = int(s.sql("SELECT id FROM app_user WHERE username = 'oa_two'")[0][0])
call("GET", "/api/admin/users?q=oa", 200, token=adm)
call("GET", "/api/admin/users/%d" % two_id, 200, token=adm)
call("PATCH", "/api/admin/users/%d" % two_id, 200, token=adm, json={"roles": ["USER"]})
link = call("POST", "/api/admin/users/%d/reset-link" % two_id, 201, token=adm).json
call("POST", "/api/auth/password-reset/confirm", 200, json={"token": link["token"], "new_password": "oa-two-password-3"})
call("POST", "/api/auth/password-reset/confirm", 422, json={"token": link["token"], "new_password": "oa-two-password-4"})
tok3 = s.login("oa_two", "oa-two-password-3")
call("POST", "/api/account/delete", 200, token=tok3, json={"current_password": "oa-two-password-3"})
call("DELETE", "/api/admin/users/%d?confirm=oa_user" % uid, 200, token=adm)

g = call("POST", "/api/auth/guest", 201)
jar = g.cookies
call("GET", "/api/auth/guest", 200, cookies=jar)
call("POST", "/api/auth/guest/refresh", 200, cookies=jar, headers=X)
gid = call("POST", "/api/auth/guest/new-id", 200, cookies=jar, headers=X).json["guest_id"]
jar = call("POST", "/api/auth/guest/resume", 200, json={"guest_id": gid}).cookies
call("POST", "/api/auth/guest/claim", 201, cookies=jar, headers=X,
     json={"username": "oa_guest", "email": "oag@example.com", "password": "oa-guest-password"})
call("POST", "/api/auth/logout", 200, token=anon)

sid = "9b2f0c4e-7d1a-4c55-9a57-0f3b8c1d2e6f"
ct = call("POST", "/api/auth/anonymous-login/%s" % sid, 200).json.get("token")
call("POST", "/api/work-requests", None, token=ct,
     json={"model_id": "eos3b5e", "request_payload": {"entries": ["CCO\n"]}})
call("GET", "/api/work-requests", 200, token=ct)
wr = s.sql("SELECT id FROM work_request ORDER BY id DESC LIMIT 1")[0][0]
call("GET", "/api/work-requests/%s" % wr, None, token=ct)

not_called = sorted("%s %s" % k for k in ops if k not in seen)
t.is_(not_called, [], "every route was called and its real answer checked")
t.done()
