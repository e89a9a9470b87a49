#!/usr/bin/python3
# 123-admin-requests.t — GET /api/admin/requests: admin only, every user's and
# anonymous session's requests with only the listed fields (never inputs,
# results, header or metadata), filters, inclusive date range, paging, 422s.
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False)
s.sql("INSERT INTO model (id) VALUES ('ma'), ('mb')")
alice = s.user("alice")
bob = s.user("bob")
anon = s.anon()
admin = s.admin_token
alice_id = int(s.sql("SELECT id FROM app_user WHERE username = 'alice'")[0][0])

SECRET = "C1=CC=C(C=C1)N(Zz)SecretMolecule_7f3a"
HEADER = "my_private_header_b7"
FIELDS = {"id", "model_id", "user_id", "anon_session_id", "status", "failure_reason",
          "created_at", "finished_at", "result_status",
          # what invalid inputs cost (issue 20): counts only, no input
          "input_count", "error_count", "model_calls", "extra_calls", "isolation_ms",
          "screened_count", "known_bad_count"}


def submit(tok, model, inputs, **kw):
    body = {"model_id": model, "inputs": inputs}
    body.update(kw)
    r = s.api("POST", "/api/requests", token=tok, json=body)
    return (r.json or {}).get("id")


r1 = submit(alice, "ma", [HEADER, SECRET, "CCO"], has_header=True)
r2 = submit(bob, "mb", ["O"])
r3 = submit(anon, "ma", [SECRET])
r4 = submit(alice, "mb", ["N"])
anon_sid = int(s.sql("SELECT anon_session_id FROM work_request WHERE id = $1", r3)[0][0])
# results with the secret in them, a failure, a cancel
s.sql("INSERT INTO work_request_result (request_id, ordinal, record) VALUES "
      "($1, 1, '{\"value\": \"SecretResult_91c\"}'), ($1, 2, '{\"value\": 1}')", r1)
s.sql("UPDATE work_request SET status = 'COMPLETED', finished_at = now(), "
      "metadata = '{\"user_agent\": \"SecretAgent_55\"}' WHERE id = $1", r1)
s.sql("UPDATE work_request SET status = 'FAILED', failure_reason = 'MODEL_ERROR', "
      "failure_detail = 'SecretDetail_x', finished_at = now() WHERE id = $1", r2)
s.api("DELETE", "/api/requests/%d" % r4, token=alice)


def items(q=""):
    r = s.api("GET", "/api/admin/requests" + q, token=admin)
    return r, [i["id"] for i in (r.json or {}).get("items", [])]


# ---- access
t.status(s.api("GET", "/api/admin/requests"), 401, "no session: 401")
t.status(s.api("GET", "/api/admin/requests", token=alice), 403, "plain user: 403")
t.status(s.api("GET", "/api/admin/requests", token=anon), 403, "anonymous: 403")

# ---- content
r, ids = items()
t.status(r, 200, "admin: 200")
t.is_(ids, [r4, r3, r2, r1], "every owner's requests, newest first")
t.ok(all(set(i.keys()) == FIELDS for i in r.json["items"]), "items carry exactly the listed fields")
for k in (SECRET, HEADER, "SecretResult_91c", "SecretAgent_55", "SecretDetail_x", "CCO"):
    t.ok(k not in r.text, "payload never contains %s" % k)
by = {i["id"]: i for i in r.json["items"]}
t.is_((by[r1]["user_id"], by[r1]["anon_session_id"]), (alice_id, None), "user request: user_id")
t.is_((by[r3]["user_id"], by[r3]["anon_session_id"]), (None, anon_sid), "anon request: session id")
t.is_([by[x]["result_status"] for x in (r1, r2, r3, r4)], ["available", "failed", "pending", "none"],
      "result_status available / failed / pending / none")
t.is_(by[r2]["failure_reason"], "MODEL_ERROR", "failure_reason shown")
t.like(by[r1]["finished_at"], r"Z$", "finished_at ISO")
t.is_(by[r3]["finished_at"], None, "unfinished: finished_at null")
t.is_(r.json.get("next_cursor"), None, "one page: next_cursor null")

# ---- filters
t.is_(items("?user_id=%d" % alice_id)[1], [r4, r1], "filter user_id")
t.is_(items("?anon_session_id=%d" % anon_sid)[1], [r3], "filter anon_session_id")
t.is_(items("?model_id=mb")[1], [r4, r2], "filter model_id")
t.is_(items("?status=FAILED")[1], [r2], "filter status")
t.is_(items("?user_id=%d&model_id=ma" % alice_id)[1], [r1], "filters combine")
s.sql("UPDATE work_request SET created_at = '2026-03-01 00:00:00+00' WHERE id = $1", r1)
s.sql("UPDATE work_request SET created_at = '2026-03-02 23:59:59.9+00' WHERE id = $1", r2)
s.sql("UPDATE work_request SET created_at = '2026-03-03 00:00:00+00' WHERE id = $1", r3)
t.is_(items("?date_from=2026-03-01&date_to=2026-03-02")[1], [r2, r1],
      "date range inclusive at both ends (whole days, UTC)")
t.is_(items("?date_from=2026-03-03&date_to=2026-03-03")[1], [r3], "single day")
t.is_(items("?date_from=2026-03-02")[1], [r4, r3, r2], "date_from alone")
t.is_(items("?date_to=2026-02-28")[1], [], "nothing before")
for q, code in (("date_from=2026-3-1", "invalid_date"), ("date_to=2026-03-02T10:00", "invalid_date"),
                ("date_from=2026-13-01", "invalid_date"), ("date_to=2025-02-29", "invalid_date"),
                ("date_from=2026-03-05&date_to=2026-03-01", "invalid_date"),
                ("user_id=abc", "invalid_parameter"), ("user_id=0", "invalid_parameter"),
                ("anon_session_id=-3", "invalid_parameter"), ("status=queued", "invalid_parameter"),
                ("limit=1000", "invalid_parameter")):
    r = s.api("GET", "/api/admin/requests?" + q, token=admin)
    t.status(r, 422, "?%s: 422" % q)
    t.is_(((r.json or {}).get("error") or {}).get("code"), code, "  %s" % code)
t.status(s.api("GET", "/api/admin/requests?date_from=2024-02-29", token=admin), 200,
         "leap day accepted")

# ---- paging
more = [submit(bob, "ma", ["C%d" % i]) for i in range(7)]
_, all_ids = items("?limit=500")
seen, cur = [], None
for _ in range(20):
    r = s.api("GET", "/api/admin/requests?limit=4" + ("&cursor=" + cur if cur else ""), token=admin)
    seen += [i["id"] for i in (r.json or {}).get("items", [])]
    cur = (r.json or {}).get("next_cursor")
    if not cur:
        break
t.is_(seen, all_ids, "cursor pages cover all %d requests once" % len(all_ids))
t.is_(len(all_ids), 11, "11 requests in all")
t.is_(items("?limit=3&offset=3")[1], all_ids[3:6], "offset paging")
t.is_(items("?limit=2&user_id=%d" % alice_id)[0].json.get("next_cursor"), None,
      "filtered result of exactly one page: no cursor")

t.done()
