#!/usr/bin/python3
# 120-requests.t — work request submit (JSON, CSV, text, multipart), detail,
# own list with filters and paging, ownership (users, anonymous sessions),
# cancel, Idempotency-Key and the work_queued notification.
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
from flows import Listener      # noqa: E402

t = TAP()
s = Stack(hubd=False)

s.sql("INSERT INTO model (id, details) VALUES ('m1', '{\"columns\":[\"mol_weight\"]}'), "
      "('m2', '{}')")

alice = s.user("alice")
bob = s.user("bob")
anon = s.anon()
anon2 = s.anon()
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def inputs_of(rid):
    return [r[0] for r in s.sql("SELECT input FROM work_request_input WHERE request_id = $1 "
                                "ORDER BY ordinal", rid)]


# ---- auth
r = s.api("POST", "/api/requests", json={"model_id": "m1", "inputs": ["CCO"]})
t.status(r, 401, "submit without a session: 401")
r = s.api("GET", "/api/requests")
t.status(r, 401, "list without a session: 401")

# ---- JSON submit
lis = Listener(s)
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["CCO", "  c1ccccc1 ", "", "   "]})
t.status(r, 201, "JSON submit: 201")
j = r.json or {}
rid = j.get("id")
t.ok(isinstance(rid, int) and rid > 0, "id is a positive integer")
t.is_(r.headers.get("location"), "/api/requests/%s" % rid, "Location header")
t.is_(j.get("status"), "QUEUED", "status QUEUED")
t.is_(j.get("model_id"), "m1", "model_id echoed")
t.is_(j.get("progress"), {"done": 0, "total": 2, "cached": 0}, "progress: blank inputs skipped")
t.is_(j.get("has_header"), False, "has_header defaults to false")
t.is_(j.get("cache_opt_in"), False, "cache_opt_in defaults to false")
t.like(j.get("created_at"), ISO, "created_at is ISO 8601 UTC")
t.is_(j.get("started_at"), None, "not started")
t.is_(j.get("timings", {}).get("queued"), j.get("created_at"), "timings.queued")
t.is_(inputs_of(rid), ["CCO", "c1ccccc1"], "inputs stored trimmed, in order")
t.is_(s.sql("SELECT min(ordinal), max(ordinal) FROM work_request_input WHERE request_id = $1",
            rid), [("1", "2")], "ordinals 1..n")
t.is_(lis.drain(), ["m1"], "NOTIFY work_queued with the model id")
t.is_(s.sql("SELECT user_id IS NOT NULL, anon_session_id IS NULL, header IS NULL, "
            "metadata->>'source' FROM work_request WHERE id = $1", rid),
      [("t", "t", "t", "json")], "owner, no header, metadata source")

# header in JSON: first non-blank entry, never an input
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["", "smiles", "CCO", "O"], "has_header": True})
t.status(r, 201, "JSON submit with header")
rh = (r.json or {}).get("id")
t.is_((r.json or {}).get("progress", {}).get("total"), 2, "header not counted")
t.is_((r.json or {}).get("header"), "smiles", "header returned")
t.is_(inputs_of(rh), ["CCO", "O"], "header never stored as an input")
t.is_(s.sql("SELECT header, has_header FROM work_request WHERE id = $1", rh), [("smiles", "t")],
      "header stored in work_request.header")

# query options apply to JSON bodies too; body fields win
r = s.api("POST", "/api/models/m1/requests?has_header=true", token=alice,
          json={"inputs": ["smiles", "CCO"]})
t.is_(((r.json or {}).get("header"), (r.json or {}).get("progress", {}).get("total")),
      ("smiles", 1), "JSON on the model path: ?has_header=true applies")
r = s.api("POST", "/api/models/m1/requests?has_header=true", token=alice,
          json={"inputs": ["smiles", "CCO"], "has_header": False})
t.is_((r.json or {}).get("progress", {}).get("total"), 2, "  the body's has_header wins")

# ---- CSV body on the model path
lis.drain()
csv = 'smiles,name\r\nCCO,ethanol\r\n"C(=O)O","formic, acid"\r\n"a,b",x\r\n\r\n'
r = s.api("POST", "/api/models/m1/requests?has_header=true", token=alice, data=csv,
          headers={"Content-Type": "text/csv"})
t.status(r, 201, "CSV submit: 201")
rc = (r.json or {}).get("id")
t.is_(inputs_of(rc), ["CCO", "C(=O)O", "a,b"], "CSV: first column, RFC 4180 quoting")
t.is_((r.json or {}).get("header"), "smiles,name", "CSV header kept apart")
t.is_(lis.drain(), ["m1"], "CSV submit notifies")

r = s.api("POST", "/api/models/m1/requests", token=alice, data="smiles\nCCO\n",
          headers={"Content-Type": "text/csv; charset=utf-8"})
t.status(r, 201, "CSV without has_header")
t.is_(inputs_of((r.json or {}).get("id")), ["smiles", "CCO"],
      "has_header defaults to false on the CSV path too")

r = s.api("POST", "/api/requests?model_id=m1&has_header=false", token=alice,
          data="CCO,x\nO\n", headers={"Content-Type": "text/csv"})
t.status(r, 201, "CSV on /api/requests with ?model_id")
t.is_(inputs_of((r.json or {}).get("id")), ["CCO", "O"], "  inputs")

# ---- plain text
r = s.api("POST", "/api/models/m1/requests", token=alice, data="CCO\n\"q\",x\n  N  \n",
          headers={"Content-Type": "text/plain"})
t.status(r, 201, "text/plain submit")
t.is_(inputs_of((r.json or {}).get("id")), ["CCO", '"q",x', "N"],
      "text/plain: one input per line, no CSV processing")
t.is_(s.sql("SELECT metadata->>'source' FROM work_request WHERE id = $1", (r.json or {}).get("id")),
      [("text",)], "  metadata source text")

# ---- multipart upload (as a browser form or curl -F sends it)
bnd = "----mhTestBoundary7"
mp = ("--%s\r\nContent-Disposition: form-data; name=\"has_header\"\r\n\r\ntrue\r\n"
      "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"mols.csv\"\r\n"
      "Content-Type: text/csv\r\n\r\nsmiles\r\nCCO\r\n\"N,1\"\r\n--%s--\r\n") % (bnd, bnd, bnd)
r = s.api("POST", "/api/models/m1/requests", token=alice, data=mp,
          headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
t.status(r, 201, "multipart submit")
rm = (r.json or {}).get("id")
t.is_(inputs_of(rm), ["CCO", "N,1"], "multipart: file parsed as CSV, has_header form field")
t.is_(s.sql("SELECT metadata->>'filename', metadata->>'source' FROM work_request WHERE id = $1",
            rm), [("mols.csv", "multipart")], "multipart: filename kept in metadata")
r = s.api("POST", "/api/models/m1/requests?has_header=false", token=alice, data=mp,
          headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
t.is_(inputs_of((r.json or {}).get("id")), ["smiles", "CCO", "N,1"],
      "multipart: query string wins over the form field")
lis.drain()

# ---- anonymous
r = s.api("POST", "/api/requests", token=anon,
          json={"model_id": "m1", "inputs": ["CCO"], "cache_opt_in": True})
t.status(r, 201, "anonymous submit")
ra = (r.json or {}).get("id")
t.is_((r.json or {}).get("cache_opt_in"), False, "anonymous: cache_opt_in forced false")
t.is_(s.sql("SELECT user_id IS NULL, anon_session_id IS NOT NULL FROM work_request WHERE id = $1",
            ra), [("t", "t")], "anonymous request keyed by the anon session")
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["CCO"], "cache_opt_in": True})
t.is_((r.json or {}).get("cache_opt_in"), True, "registered user may opt in")


# ---- detail and ownership
r = s.api("GET", "/api/requests/%s" % rid, token=alice)
t.status(r, 200, "owner GET detail")
for k in ("id", "model_id", "status", "failure_reason", "failure_detail", "progress",
          "error_count", "attempts", "model_calls", "extra_calls", "created_at", "started_at",
          "finished_at", "has_header", "timings"):
    t.ok(k in (r.json or {}), "detail has %s" % k)
t.status(s.api("GET", "/api/requests/%s" % rid, token=bob), 404, "other user: 404")
t.status(s.api("GET", "/api/requests/%s" % rid, token=anon), 404, "anon token on a user request: 404")
t.status(s.api("GET", "/api/requests/%s" % ra, token=anon), 200, "anon sees its own request")
t.status(s.api("GET", "/api/requests/%s" % ra, token=anon2), 404, "another anon session: 404")
t.status(s.api("GET", "/api/requests/%s" % ra, token=alice), 404, "user cannot see anon request")
t.status(s.api("GET", "/api/requests/999999", token=alice), 404, "unknown id: 404")
t.status(s.api("GET", "/api/requests/abc", token=alice), 404, "non-numeric id: 404")
t.status(s.api("GET", "/api/requests/-1", token=alice), 404, "negative id: 404")
r = s.api("GET", "/api/requests/%s" % rid, token=s.admin_token)
t.status(r, 404, "admin uses the admin list, not other users' details")

# ---- list
r = s.api("GET", "/api/requests", token=alice)
t.status(r, 200, "list own requests")
items = (r.json or {}).get("items", [])
ids = [i["id"] for i in items]
t.ok(rid in ids and rh in ids and ra not in ids, "own requests only")
t.is_(ids, sorted(ids, reverse=True), "newest first")
t.is_((r.json or {}).get("next_cursor"), None, "single page: next_cursor null")

r = s.api("GET", "/api/requests", token=anon)
t.is_([i["id"] for i in (r.json or {}).get("items", [])], [ra], "anon lists only its session's")
r = s.api("GET", "/api/requests", token=bob)
t.is_((r.json or {}).get("items"), [], "bob has none")

# paging with cursor
seen, cur, pages = [], None, 0
while pages < 20:
    r = s.api("GET", "/api/requests?limit=3" + ("&cursor=" + cur if cur else ""), token=alice)
    if r.status != 200:
        break
    pages += 1
    seen += [i["id"] for i in r.json["items"]]
    t.ok(len(r.json["items"]) <= 3, "page %d has at most 3 items" % pages)
    cur = r.json.get("next_cursor")
    if not cur:
        break
t.is_(seen, ids, "cursor paging returns every request once, in order")
r = s.api("GET", "/api/requests?limit=2&offset=2", token=alice)
t.is_([i["id"] for i in (r.json or {}).get("items", [])], ids[2:4], "offset paging")

# filters
s.sql("UPDATE work_request SET status = 'COMPLETED', finished_at = now() WHERE id = $1", rc)
r = s.api("GET", "/api/requests?status=COMPLETED", token=alice)
t.is_([i["id"] for i in (r.json or {}).get("items", [])], [rc], "status filter")
s.sql("INSERT INTO model (id) VALUES ('m3')")
r3 = s.api("POST", "/api/requests", token=alice, json={"model_id": "m3", "inputs": ["C"]})
r = s.api("GET", "/api/requests?model_id=m3", token=alice)
t.is_([i["id"] for i in (r.json or {}).get("items", [])], [(r3.json or {}).get("id")],
      "model_id filter")
s.sql("UPDATE work_request SET created_at = '2026-01-15 23:30:00+00' WHERE id = $1", rid)
s.sql("UPDATE work_request SET created_at = '2026-01-16 00:10:00+00' WHERE id = $1", rh)
r = s.api("GET", "/api/requests?date_from=2026-01-15&date_to=2026-01-15", token=alice)
t.is_([i["id"] for i in (r.json or {}).get("items", [])], [rid], "date range (one day, inclusive)")
r = s.api("GET", "/api/requests?date_from=2026-01-15&date_to=2026-01-16", token=alice)
t.is_(sorted(i["id"] for i in (r.json or {}).get("items", [])), sorted([rid, rh]),
      "date_to inclusive of the whole day")
r = s.api("GET", "/api/requests?date_to=2026-01-15", token=alice)
t.is_([i["id"] for i in (r.json or {}).get("items", [])], [rid], "date_to alone")
for q, code in (("status=DONE", "invalid_parameter"), ("limit=0", "invalid_parameter"),
                ("limit=501", "invalid_parameter"), ("limit=x", "invalid_parameter"),
                ("cursor=abc", "invalid_parameter"), ("offset=-1", "invalid_parameter"),
                ("date_from=2026-02-30", "invalid_date"), ("date_to=15-01-2026", "invalid_date"),
                ("date_from=2026-01-16&date_to=2026-01-15", "invalid_date")):
    r = s.api("GET", "/api/requests?" + q, token=alice)
    t.status(r, 422, "list ?%s: 422" % q)
    t.is_(((r.json or {}).get("error") or {}).get("code"), code, "  code %s" % code)
r = s.api("GET", "/api/requests?limit=500", token=alice)
t.status(r, 200, "limit=500 accepted")

# ---- cancel
r = s.api("DELETE", "/api/requests/%s" % rh, token=bob)
t.status(r, 404, "cancel someone else's request: 404")
t.is_(s.sql("SELECT status FROM work_request WHERE id = $1", rh), [("QUEUED",)], "  untouched")
r = s.api("DELETE", "/api/requests/%s" % rh, token=alice)
t.status(r, 200, "cancel a QUEUED request")
t.is_((r.json or {}).get("status"), "CANCELLED", "  status CANCELLED")
t.is_((r.json or {}).get("failure_reason"), "CANCELLED", "  failure_reason CANCELLED")
t.like((r.json or {}).get("finished_at"), ISO, "  finished_at set")
r = s.api("DELETE", "/api/requests/%s" % rh, token=alice)
t.status(r, 409, "cancel twice: 409")
t.is_(((r.json or {}).get("error") or {}).get("code"), "already_finished", "  already_finished")
s.sql("UPDATE work_request SET status = 'RUNNING', started_at = now(), runner_id = 'x', "
      "lease_expires_at = now() + interval '30 s' WHERE id = $1", rm)
r = s.api("DELETE", "/api/requests/%s" % rm, token=alice)
t.status(r, 200, "cancel a RUNNING request")
t.is_(s.sql("SELECT status, lease_expires_at IS NULL FROM work_request WHERE id = $1", rm),
      [("CANCELLED", "t")], "  RUNNING -> CANCELLED, lease dropped")
r = s.api("DELETE", "/api/requests/%s" % rc, token=alice)
t.status(r, 409, "cancel a COMPLETED request: 409")
t.is_(s.sql("SELECT status FROM work_request WHERE id = $1", rc), [("COMPLETED",)], "  stays COMPLETED")
t.status(s.api("DELETE", "/api/requests/%s" % ra, token=anon2), 404, "other anon cannot cancel")
t.status(s.api("DELETE", "/api/requests/%s" % ra, token=anon), 200, "anon cancels its own")

# ---- Idempotency-Key
body = {"model_id": "m1", "inputs": ["CCO", "O"]}
r1 = s.api("POST", "/api/requests", token=alice, json=body, headers={"Idempotency-Key": "k-1"})
r2 = s.api("POST", "/api/requests", token=alice, json=body, headers={"Idempotency-Key": "k-1"})
t.status(r1, 201, "first submit with a key: 201")
t.status(r2, 200, "retry with the same key: 200")
t.is_((r2.json or {}).get("id"), (r1.json or {}).get("id"), "  same request returned")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE idempotency_key = 'k-1'"), [("1",)],
      "  only one row")
r3 = s.api("POST", "/api/requests", token=bob, json=body, headers={"Idempotency-Key": "k-1"})
t.status(r3, 201, "same key, other user: a new request")
r4 = s.api("POST", "/api/requests", token=anon, json=body, headers={"Idempotency-Key": "k-1"})
r5 = s.api("POST", "/api/requests", token=anon, json=body, headers={"Idempotency-Key": "k-1"})
t.status(r4, 201, "anon with the key: new")
t.is_((r5.json or {}).get("id"), (r4.json or {}).get("id"), "anon retry: same request")
r6 = s.api("POST", "/api/requests", token=anon2, json=body, headers={"Idempotency-Key": "k-1"})
t.ok((r6.json or {}).get("id") not in ((r4.json or {}).get("id"), None),
     "another anon session with the same key: new request")
t.is_(len(set(x.json["id"] for x in (r1, r3, r4, r6))), 4, "four distinct requests")
lis.drain()
r7 = s.api("POST", "/api/requests", token=alice, json=body, headers={"Idempotency-Key": "k-1"})
t.is_(lis.drain(), [], "idempotent retry sends no NOTIFY")
t.is_((r7.json or {}).get("id"), (r1.json or {}).get("id"), "third retry still the first")
lis.close()

# concurrent retries with one key: exactly one request, everyone gets it
import threading
answers = []


def race():
    answers.append(s.api("POST", "/api/requests", token=bob, json=body,
                         headers={"Idempotency-Key": "race-1"}))


ths = [threading.Thread(target=race) for _ in range(8)]
for th in ths:
    th.start()
for th in ths:
    th.join()
t.is_(sorted(a.status for a in answers), [200] * 7 + [201], "8 concurrent submits, one key: one 201")
t.is_(len(set((a.json or {}).get("id") for a in answers)), 1, "  all answers name the same request")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE idempotency_key = 'race-1'"), [("1",)],
      "  one row")

t.done()
