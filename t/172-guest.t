#!/usr/bin/python3
# 172-guest.t — guest sessions: an HttpOnly cookie without password that can submit, list and fetch its requests, lives hub.retention_days and slides on refresh, comes back in another browser with its guest id, becomes an account keeping its requests; curl tokens are not guests; guests count against anon.per_ip_per_hour.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack                 # noqa: E402
from flows import error_code as code    # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1", "hub.retention_days": "3",
                              "anon.per_ip_per_hour": "6"})
s.add_demo_models()
XRW = {"X-Requested-With": "fetch"}

r = s.api("POST", "/api/auth/guest")
t.status(r, 201, "POST /api/auth/guest: 201")
j = r.json or {}
gid = j.get("guest_id", "")
t.like(gid, r"^[0-9a-f]{64}$", "a server-made guest id (64 hex)")
t.is_(j.get("guest"), True, "guest: true")
ck = [c for c in r.set_cookies if c.startswith("modelhub_session=")]
t.ok(ck and "HttpOnly" in ck[0] and "SameSite=Strict" in ck[0], "HttpOnly, SameSite cookie")
t.like(ck[0] if ck else "", r"Max-Age=259200\b", "cookie lives hub.retention_days (3 d)")
jar = {"modelhub_session": r.cookies.get("modelhub_session")}
t.is_(jar["modelhub_session"], gid, "the guest id is the cookie's secret")
row = s.sql("SELECT kind, guest, user_id, absolute_expires_at - created_at FROM session ORDER BY id DESC LIMIT 1")
t.is_(row, [("ANON", "t", None, "3 days")], "stored as a guest ANON session for 3 days")

r = s.api("GET", "/api/auth/guest", cookies=jar)
t.status(r, 200, "GET /api/auth/guest")
t.is_(((r.json or {}).get("guest"), r.json.get("requests")), (True, 0), "guest with no request yet")

# submit, watch, download with the cookie
r = s.api("POST", "/api/requests", cookies=jar, json={"model_id": "eos3b5e", "inputs": ["CCO"]})
t.is_((r.status, code(r)), (403, "csrf"), "cookie POST without X-Requested-With: csrf")
r = s.api("POST", "/api/requests", cookies=jar, headers=XRW, json={"model_id": "eos3b5e", "inputs": ["CCO", "C"]})
t.status(r, 201, "guest submits a request")
rid = (r.json or {}).get("id")
t.is_([x["id"] for x in s.api("GET", "/api/requests", cookies=jar).json["items"]], [rid], "guest lists it")
t.status(s.api("GET", "/api/requests/%s" % rid, cookies=jar), 200, "guest reads it")
t.is_(s.api("GET", "/api/auth/guest", cookies=jar).json.get("requests"), 1, "one request counted")

# curl tokens are not guests
anon = s.anon()
t.is_(s.api("GET", "/api/auth/guest", token=anon).json, {"guest": False}, "a curl token is not a guest")
r = s.api("POST", "/api/auth/guest/refresh", token=anon)
t.is_((r.status, code(r)), (403, "not_guest"), "curl token cannot refresh as a guest")
r = s.api("POST", "/api/auth/guest/claim", token=anon,
          json={"username": "nope_user", "email": "n@example.com", "password": "long-enough-pw"})
t.is_((r.status, code(r)), (403, "not_guest"), "nor claim")
t.is_(s.api("GET", "/api/auth/guest").status, 401, "no session: 401")

# sliding lifetime
s.sql("UPDATE session SET expires_at = now() + interval '1 hour', absolute_expires_at = now() + interval '1 hour'"
      " WHERE guest")
r = s.api("POST", "/api/auth/guest/refresh", cookies=jar, headers=XRW)
t.status(r, 200, "refresh")
left = s.sql("SELECT round(extract(epoch FROM absolute_expires_at - now()) / 3600) FROM session WHERE guest")
t.is_(left, [("72",)], "refresh slides the expiry back to 3 days")

# another browser
r = s.api("POST", "/api/auth/guest/resume", json={"guest_id": "00" * 32})
t.is_((r.status, code(r)), (422, "unknown_guest"), "unknown guest id: 422")
r = s.api("POST", "/api/auth/guest/resume", json={"guest_id": anon})
t.is_((r.status, code(r)), (422, "unknown_guest"), "a curl token is not a guest id")
r = s.api("POST", "/api/auth/guest/resume", json={"guest_id": gid})
t.status(r, 200, "resume with the guest id")
jar2 = r.cookies
t.is_(jar2.get("modelhub_session"), gid, "cookie set in the other browser")
t.is_([x["id"] for x in s.api("GET", "/api/requests", cookies=jar2).json["items"]], [rid],
      "the other browser sees the guest's requests")

# a new guest id: the old one stops working, the requests stay
r = s.api("POST", "/api/auth/guest/new-id", token=anon)
t.is_((r.status, code(r)), (403, "not_guest"), "a curl token has no guest id")
r = s.api("POST", "/api/auth/guest/new-id", cookies=jar, headers=XRW)
t.status(r, 200, "new guest id")
gid2 = (r.json or {}).get("guest_id", "")
t.ok(len(gid2) == 64 and gid2 != gid, "a different id")
t.is_(r.cookies.get("modelhub_session"), gid2, "the cookie follows")
t.is_(s.api("GET", "/api/requests", cookies=jar).status, 401, "the old id is dead")
t.is_(s.api("GET", "/api/requests", cookies=jar2).status, 401, "in the other browser too")
t.is_(s.api("POST", "/api/auth/guest/resume", json={"guest_id": gid}).status, 422, "and cannot be resumed")
jar = r.cookies
jar2 = s.api("POST", "/api/auth/guest/resume", json={"guest_id": gid2}).cookies
t.is_([x["id"] for x in s.api("GET", "/api/requests", cookies=jar).json["items"]], [rid], "same requests")

# becoming an account
r = s.api("POST", "/api/auth/guest/claim", cookies=jar, headers=XRW,
          json={"username": "g", "email": "bad", "password": "x"})
t.is_((r.status, code(r)), (422, "validation_failed"), "bad signup fields: 422")
t.ok(set(r.json["error"]["fields"]) >= {"username", "email", "password"}, "each named")
s.user("taken_name")
r = s.api("POST", "/api/auth/guest/claim", cookies=jar, headers=XRW,
          json={"username": "taken_name", "email": "new@example.com", "password": "long-enough-pw"})
t.is_((r.status, code(r)), (409, "conflict"), "taken username: 409")
r = s.api("POST", "/api/auth/guest/claim", cookies=jar, headers=XRW,
          json={"username": "gina", "email": "gina@example.com", "password": "gina-password-1"})
t.status(r, 201, "guest becomes an account")
t.is_((r.json or {}).get("moved_requests"), 1, "its request moved")
t.is_((r.json or {}).get("user", {}).get("username"), "gina", "the new user")
ujar = r.cookies
t.ok(ujar.get("modelhub_session") not in (None, "", gid), "a new (user) session cookie")
t.is_(s.api("GET", "/api/auth/session", cookies=jar).status, 401, "the guest session is over")
t.is_(s.api("GET", "/api/auth/session", cookies=jar2).status, 401, "in every browser")
r = s.api("GET", "/api/requests", cookies=ujar)
t.is_([x["id"] for x in r.json["items"]], [rid], "the account has the guest's request")
t.is_(s.api("GET", "/api/auth/session", cookies=ujar).json["user"]["username"], "gina", "logged in as gina")
t.is_(s.api("POST", "/api/auth/login", json={"username": "gina", "password": "gina-password-1"}).status, 200,
      "the password works")

# guests share the anonymous per-address limit (6 an hour here; 2 used)
sts = [s.api("POST", "/api/auth/guest").status for _ in range(5)]
t.is_(sts, [201, 201, 201, 201, 429], "guest sessions count against anon.per_ip_per_hour")
t.is_(s.api("POST", "/api/auth/anon").status, 429, "and so do curl tokens, on the same counter")
t.done()
