#!/usr/bin/python3
# 135-quotas.t — per-caller quotas (issue 17, finding 3): requests in flight, inputs per day, stored bytes, per role (anon, user, admin unlimited), 429 quota_exceeded naming the quota with Retry-After; concurrent submissions of one caller cannot overshoot; idempotent retries are not refused; other callers are unaffected.
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={
    "auth.pwhash_fast": "1", "anon.per_ip_per_hour": "100", "fcgi.workers": "4",
    "quota.anon.requests_in_flight": "3", "quota.anon.inputs_per_day": "1000",
    "quota.anon.stored_bytes": "2000",
    "quota.user.requests_in_flight": "0", "quota.user.inputs_per_day": "10",
    "quota.user.stored_bytes": "0"})
s.sql("INSERT INTO model (id, max_input_chars) VALUES ('q1', 4096)")


def submit(tok, inputs, headers=None):
    return s.api("POST", "/api/requests", token=tok, json={"model_id": "q1", "inputs": inputs},
                 headers=headers)


def err(r):
    return ((r.json or {}).get("error") or {})


def quota(r):
    return (err(r).get("fields") or {}).get("quota")


# ---- requests in flight (nothing runs here: every request stays QUEUED)
a = s.anon()
first = submit(a, ["CCO"], headers={"Idempotency-Key": "k1"})
t.status(first, 201, "anon A: request 1")
for i in (2, 3):
    t.status(submit(a, ["CCO"]), 201, "anon A: request %d" % i)
r = submit(a, ["CCO"])
t.status(r, 429, "anon A: a 4th request in flight is refused")
t.is_(err(r).get("code"), "quota_exceeded", "code quota_exceeded")
t.is_(quota(r), "requests_in_flight", "error.fields.quota names the quota")
t.is_(((err(r).get("fields") or {}).get("limit"), (err(r).get("fields") or {}).get("used")),
      (3, 3), "... with its limit and the usage")
t.like(err(r).get("message"), r"requests_in_flight", "the message names it too")
t.like(r.headers.get("retry-after", ""), r"^\d+$", "Retry-After present")
t.is_(int(s.sql("SELECT count(*) FROM work_request")[0][0]), 3, "nothing stored for the refusal")
r = submit(a, ["CCO"], headers={"Idempotency-Key": "k1"})
t.status(r, 200, "an idempotent retry of an accepted request is answered, not refused")
t.is_((r.json or {}).get("id"), (first.json or {}).get("id"), "... with the first request")
t.status(submit(s.anon(), ["CCO"]), 201, "anon B is not affected by A's quota")
rid = (first.json or {}).get("id")
t.status(s.api("DELETE", "/api/requests/%s" % rid, token=a), 200, "A cancels one request")
t.status(submit(a, ["CCO"]), 201, "... and may submit again")

# concurrent submissions of one caller cannot overshoot
c = s.anon()
with ThreadPoolExecutor(max_workers=12) as pool:
    res = list(pool.map(lambda _i: submit(c, ["CCO"]).status, range(24)))
t.is_((res.count(201), res.count(429), len(res)), (3, 21, 24),
      "24 concurrent submissions of one anonymous token: exactly 3 accepted, 21 refused")

# ---- stored bytes (anon: 2000)
e = s.anon()
t.status(submit(e, ["C" * 500] * 3), 201, "anon E: 1500 bytes stored")
r = submit(e, ["C" * 300, "C" * 300])
t.status(r, 429, "another 600 bytes would pass 2000: refused")
t.is_(quota(r), "stored_bytes", "... quota stored_bytes")
ra = int(r.headers.get("retry-after", "0") or 0)
t.ok(6 * 86400 < ra <= 7 * 86400, "... Retry-After: when the oldest request is deleted (7 days; %d)" % ra)
t.status(submit(e, ["C" * 500]), 201, "500 more fit (2000)")
t.is_(s.sql("SELECT sum(stored_bytes) FROM work_request WHERE anon_session_id ="
            " (SELECT anon_session_id FROM work_request WHERE input_count = 3 LIMIT 1)")[0][0],
      "2000", "stored_bytes recorded per request")

# ---- inputs per day (user: 10; in flight and bytes unlimited)
u = s.user("ursula")
t.status(submit(u, ["C"] * 6), 201, "user: 6 inputs")
r = submit(u, ["C"] * 5)
t.status(r, 429, "user: 5 more would make 11 > 10 a day")
t.is_(quota(r), "inputs_per_day", "... quota inputs_per_day")
ra = int(r.headers.get("retry-after", "0") or 0)
t.ok(86000 < ra <= 86400, "... Retry-After: when the oldest request leaves the day (%d)" % ra)
t.status(submit(u, ["C"] * 4), 201, "4 more fit (10)")
s.sql("UPDATE work_request SET created_at = created_at - interval '25 hours'"
      " WHERE user_id = (SELECT id FROM app_user WHERE username = 'ursula')")
t.status(submit(u, ["C"] * 10), 201, "a day later the quota is free again")

# ---- admins: unlimited by default
adm = s.admin_token
t.ok(all(submit(adm, ["C"] * 5).status == 201 for _ in range(5)),
     "an admin submits 5 requests of 5 inputs (no quota by default)")

s.stop()
t.done()
