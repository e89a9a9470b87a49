#!/usr/bin/python3
# 140-compat-api.t — the old Ersilia hub's client API (api_compat.c): anonymous
# login bound to a client-made session id (create, resume, revive, revoked,
# rate limit), the ErsiliaAnonymous scheme, POST/GET /api/work-requests and
# GET /api/work-requests/{id} with include_result/csv_result, mapped onto
# modelhub's requests; every failure path with the JSON error shape.
import base64
import hashlib
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"anon.per_ip_per_hour": "6"})
s.sql("INSERT INTO model (id, details) VALUES ('m1', '{\"columns\":[\"mol_weight\",\"label\"]}'),"
      " ('m2', '{}')")
s.sql("INSERT INTO model (id, enabled) VALUES ('off', false)")


def err_is(r, status, code, name):
    e = (r.json or {}).get("error") if isinstance(r.json, dict) else None
    ok = r.status == status and isinstance(e, dict) and e.get("code") == code and \
        isinstance(e.get("message"), str) and e.get("message") != ""
    if not t.ok(ok, "%s: %d %s with the JSON error shape" % (name, status, code)):
        t.diag("got %s %s" % (r.status, r.text[:300]))


def login(sid):
    return s.api("POST", "/api/auth/anonymous-login/" + sid)


def header_of(session):
    return {"Authorization": "ErsiliaAnonymous " +
            base64.b64encode(json.dumps(session).encode()).decode()}


def call(method, path, hdr, **kw):
    h = dict(hdr)
    h.update(kw.pop("headers", {}))
    return s.api(method, path, headers=h, **kw)


# ---- anonymous login
sid = str(uuid.uuid4())
r = login(sid)
t.status(r, 200, "anonymous-login: 200 (the old client wants exactly 200)")
j = r.json or {}
ses = j.get("session") or {}
t.is_(sorted(ses), sorted(["userid", "session_id", "session_token", "auth_type",
                           "session_max_age_seconds", "session_start_time"]),
      "session has the old members")
t.is_([ses.get("session_id"), ses.get("auth_type"), len(ses.get("session_token") or "")],
      [sid, "ErsiliaAnonymous", 64], "  bound to the client's id, 64-hex token")
t.ok(len(ses.get("userid") or "") >= 36 and len(ses.get("session_start_time") or "") >= 20,
     "  userid and start time as long as the old hub's checks want")
t.ok(isinstance(j.get("user"), dict) and j.get("permissions") == [] and j.get("resumed") is False,
     "  user object, no permissions, not resumed")
H = header_of(ses)
t.is_(s.sql("SELECT count(*) FROM session WHERE kind = 'ANON' "
            "AND token_hash = sha256(decode($1, 'hex'))", ses.get("session_token")),
      [("1",)], "  stored as one ANON session, keyed by the hash of its token only")
t.is_(s.sql("SELECT count(*) FROM session s WHERE s::text LIKE '%' || $1 || '%'", sid), [("0",)],
      "  the session id itself is not stored")

r2 = login(sid)
t.status(r2, 200, "same id again: 200")
t.ok((r2.json or {}).get("resumed") is True and
     (r2.json or {}).get("session", {}).get("session_token") == ses.get("session_token"),
     "  resumed: the same session and token")
r = s.api("GET", "/api/requests", token=ses.get("session_token"))
t.status(r, 200, "the session token also works as a modelhub Bearer token")

for bad, what in (("not-a-uuid", "not a UUID"), (sid.upper(), "upper case"),
                  (sid[:-1], "35 characters"), (sid + "0", "37 characters"),
                  (sid[:8] + "x" + sid[9:], "a dash where a digit belongs"),
                  ("g" * 8 + sid[8:], "not hexadecimal")):
    err_is(login(bad), 400, "invalid_session_id", "anonymous-login with an id " + what)

# rate limit (anon.per_ip_per_hour = 6): new ids count, resuming does not
codes = [login(str(uuid.uuid4())).status for _ in range(5)]
t.is_(codes, [200] * 5, "5 more new sessions (6 of 6 this hour)")
r = login(str(uuid.uuid4()))
err_is(r, 429, "rate_limited", "a 7th new session")
t.ok(r.headers.get("retry-after", "").isdigit(), "  with Retry-After")
t.status(login(sid), 200, "resuming a live session is not rate limited")
s.sql("DELETE FROM rate_limit")

# revoked: stays revoked; expired: revived with the same row
sid_r = str(uuid.uuid4())
rr = login(sid_r).json or {}
s.sql("UPDATE session SET revoked_at = now() WHERE token_hash = sha256(decode($1, 'hex'))",
      rr.get("session", {}).get("session_token"))
err_is(login(sid_r), 403, "session_revoked", "login with a revoked session's id")
r = call("GET", "/api/work-requests", header_of(rr.get("session")))
err_is(r, 401, "session_expired", "the revoked session's header")

# ---- the ErsiliaAnonymous header
for hdr, what in (({"Authorization": "ErsiliaAnonymous %%%"}, "not base64"),
                  ({"Authorization": "ErsiliaAnonymous " + base64.b64encode(b"[1,2]").decode()},
                   "not a session object"),
                  (header_of({"session_token": ses.get("session_token")}), "no session_id"),
                  (header_of(dict(ses, session_token="0" * 64)), "a wrong session_token"),
                  (header_of({k: v for k, v in ses.items() if k != "session_token"}),
                   "no session_token"),
                  (header_of(dict(ses, session_id=str(uuid.uuid4()))),
                   "another id with this token")):
    err_is(call("GET", "/api/work-requests", hdr), 401, "session_expired", "header with " + what)
sid_new = str(uuid.uuid4())  # its token as docs/api.md says it is derived
tok_new = hashlib.sha256(("modelhub-ersilia-anonymous:" + sid_new).encode()).hexdigest()
t.is_(hashlib.sha256(("modelhub-ersilia-anonymous:" + sid).encode()).hexdigest(),
      ses.get("session_token"), "the token is derived from the id as documented")
err_is(call("GET", "/api/work-requests", header_of(dict(ses, session_id=sid_new,
                                                        session_token=tok_new))),
       401, "session_expired", "header for an id that never logged in")
err_is(call("GET", "/api/requests", H), 401, "session_expired",
       "ErsiliaAnonymous on a modelhub route (not a compatibility route)")
err_is(s.api("GET", "/api/work-requests"), 401, "unauthorized", "no credentials")
r = call("GET", "/api/models", H)
t.status(r, 200, "GET /api/models with the header")
t.ok(all("id" in m and "enabled" in m for m in (r.json or {}).get("items", [{}])),
     "  {items: [{id, enabled}]}")

# ---- submit
BODY = {"model_id": "m1", "request_payload": {"entries": ["CCO\n", "c1ccccc1\n", "CC(=O)O\n"]}}
r = call("POST", "/api/work-requests", H, json=BODY)
t.status(r, 200, "POST /api/work-requests: 200")
w = r.json or {}
for k in ("id", "model_id", "user_id", "request_payload", "request_date", "request_status",
          "request_status_reason", "result", "input_size", "processed_timestamp"):
    t.ok(k in w, "  old member %s" % k)
t.is_([w.get("request_status"), w.get("request_payload", {}).get("has_header"),
       w.get("request_payload", {}).get("entries"), w.get("input_size")],
      ["QUEUED", False, ["CCO", "c1ccccc1", "CC(=O)O"], 3],
      "  header-less lines: has_header omitted keeps the first molecule")
rid = w.get("id")
t.is_(s.sql("SELECT metadata->>'source', anon_session_id IS NOT NULL FROM work_request "
            "WHERE id = $1", rid), [("ersilia", "t")], "  a modelhub request of the session")

r = call("POST", "/api/work-requests", H,
         json={"model_id": "m1", "request_payload": {"entries": ["smiles", "CCO"]}})
t.is_([(r.json or {}).get("request_payload", {}).get("has_header"),
       (r.json or {}).get("request_payload", {}).get("entries")], [True, ["smiles", "CCO"]],
      "a first line that is not a molecule is the header (the old default)")
r = call("POST", "/api/work-requests", H,
         json={"model_id": "m1", "request_payload": {"entries": ["CCO", "CCN"],
                                                     "has_header": True, "cache_opt_in": True}})
t.is_([(r.json or {}).get("input_size"), (r.json or {}).get("request_payload", {})],
      [2, {"entries": ["CCO", "CCN"], "has_header": True, "cache_opt_in": False}],
      "explicit has_header true: first line is the header; cache_opt_in forced off (anonymous)")
r = call("POST", "/api/work-requests", H,
         json={"model_id": "m1", "request_payload": {
             "entries": ["inchikey,smiles\n", "KEY-1,CCO\n", "KEY-2,O\n"]}})
rc = (r.json or {}).get("id")
t.is_(s.sql("SELECT input, key FROM work_request_input WHERE request_id = $1 ORDER BY ordinal", rc),
      [("CCO", "KEY-1"), ("O", "KEY-2")], "inchikey,smiles lines: smiles is the input, key kept")

for body, status, code, what in (
        ({"request_payload": {"entries": ["CCO"]}}, 422, "validation_failed", "no model_id"),
        ({"model_id": 5, "request_payload": {"entries": ["CCO"]}}, 422, "validation_failed",
         "model_id not a string"),
        ({"model_id": "m1"}, 422, "validation_failed", "no request_payload"),
        ({"model_id": "m1", "request_payload": {"entries": []}}, 422, "validation_failed",
         "empty entries"),
        ({"model_id": "m1", "request_payload": {"entries": "CCO"}}, 422, "validation_failed",
         "entries not a list"),
        ({"model_id": "m1", "request_payload": {"entries": ["CCO", 3]}}, 422, "invalid_input",
         "an entry not a string"),
        ({"model_id": "m1", "request_payload": {"entries": ["CCO"], "has_header": "yes"}}, 422,
         "invalid_parameter", "has_header not a boolean"),
        ({"model_id": "m1", "request_payload": {"entries": ["CCO"], "cache_opt_in": 1}}, 422,
         "invalid_parameter", "cache_opt_in not a boolean"),
        ({"model_id": "m1", "request_payload": {"entries": ["smiles", " "]}}, 422, "no_inputs",
         "only a header"),
        ({"model_id": "nope", "request_payload": {"entries": ["CCO"]}}, 404, "model_not_found",
         "unknown model"),
        ({"model_id": "off", "request_payload": {"entries": ["CCO"]}}, 422, "model_disabled",
         "disabled model"),
        ({"model_id": "m1", "request_payload": {"entries": ["CCO,CCN", "CCC,O"],
                                                "has_header": False}},
         422, "ambiguous_column", "two SMILES-like columns")):
    err_is(call("POST", "/api/work-requests", H, json=body), status, code, "submit with " + what)
err_is(call("POST", "/api/work-requests", H, data="CCO", headers={"Content-Type": "text/csv"}),
       415, "unsupported_media_type", "submit as text/csv")
err_is(call("POST", "/api/work-requests", H, data="{", headers={"Content-Type": "application/json"}),
       400, "bad_json", "submit with broken JSON")
err_is(call("POST", "/api/work-requests", H, json={"model_id": "m1", "request_payload": {
    "entries": ["C" * 5000]}}), 422, "input_too_long", "an entry over 4096 bytes")

# ---- list
other = header_of((login(str(uuid.uuid4())).json or {}).get("session"))
call("POST", "/api/work-requests", other,
     json={"model_id": "m2", "request_payload": {"entries": ["CCO"]}})
items = (call("GET", "/api/work-requests", H).json or {}).get("items") or []
t.ok(len(items) == 4 and all(i.get("model_id") == "m1" for i in items),
     "list: only this session's requests (4)")
t.ok("entries" not in (items[0].get("request_payload") or {}), "  list items carry no entries")
t.is_([i.get("id") for i in items], sorted([i.get("id") for i in items], reverse=True),
      "  newest first")
s.sql("UPDATE work_request SET status = 'RUNNING', started_at = now() WHERE id = $1", rc)
q = (call("GET", "/api/work-requests?request_statuses=PROCESSING", H).json or {}).get("items", [])
t.is_([i.get("id") for i in q], [rc], "request_statuses=PROCESSING finds the RUNNING one")
t.is_([i.get("request_status") for i in q], ["PROCESSING"], "  shown as PROCESSING")
q = (call("GET", "/api/work-requests?request_statuses=QUEUED&request_statuses=PROCESSING&limit=2",
          H).json or {}).get("items", [])
t.is_(len(q), 2, "two statuses and limit=2")
q = (call("GET", "/api/work-requests?model_ids=m2", other).json or {}).get("items", [])
t.is_(len(q), 1, "model_ids filter (the other session's m2 request)")
q = (call("GET", "/api/work-requests?model_ids=m2", H).json or {}).get("items", [])
t.is_(q, [], "  model_ids=m2 in this session: none")
q = (call("GET", "/api/work-requests?id=%s" % rid, H).json or {}).get("items", [])
t.is_([i.get("id") for i in q], [rid], "id filter")
today = s.sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")[0][0]
q = (call("GET", "/api/work-requests?request_date_from=%s&request_date_to=%s" % (today, today),
          H).json or {}).get("items", [])
t.is_(len(q), 4, "request_date_from/to = today (dates, to inclusive)")
q = (call("GET", "/api/work-requests?request_date_to=2000-01-01T00:00:00Z", H).json or {})
t.is_(q.get("items"), [], "request_date_to in 2000: none")
for qs, code, what in (("limit=0", "invalid_parameter", "limit 0"),
                       ("limit=501", "invalid_parameter", "limit 501"),
                       ("id=abc", "invalid_parameter", "id not a number"),
                       ("request_statuses=DONE", "invalid_parameter", "an unknown status"),
                       ("request_date_from=yesterday", "invalid_date", "a bad date"),
                       ("request_date_to=2026-13-01", "invalid_date", "month 13")):
    err_is(call("GET", "/api/work-requests?" + qs, H), 422, code, "list with " + what)

# ---- one request and its result
r = call("GET", "/api/work-requests/%s?include_result=True&csv_result=True" % rid, H)
t.status(r, 200, "GET one (Python's True): 200")
t.is_([(r.json or {}).get("request_status"), (r.json or {}).get("result")], ["QUEUED", None],
      "  QUEUED, no result yet")
for rec, i in (('{"mol_weight": 46.07, "label": "a,b"}', 1), (None, 2),
               ('{"mol_weight": 60.052, "label": "say \\"x\\""}', 3)):
    s.sql("INSERT INTO work_request_result (request_id, ordinal, record) VALUES ($1, $2, $3)",
          rid, i, rec)
s.sql("UPDATE work_request SET status = 'COMPLETED', done_count = 3, started_at = now(), "
      "finished_at = now() WHERE id = $1", rid)
r = call("GET", "/api/work-requests/%s?include_result=true&csv_result=true" % rid, H)
j = r.json or {}
t.is_(j.get("request_status"), "COMPLETED", "COMPLETED")
t.is_(j.get("result"), ["input,label,mol_weight", 'CCO,"a,b",46.07', "c1ccccc1,,",
                        'CC(=O)O,"say ""x""",60.052'],
      "result: CSV lines, header input,<sorted keys>, proper quoting, empty cells for no record")
t.ok(j.get("processed_timestamp") and j.get("job_submission_timestamp"), "  timestamps filled")
r = call("GET", "/api/work-requests/%s?include_result=true" % rid, H)
t.is_((r.json or {}).get("result", [None])[0], "input,label,mol_weight",
      "non-admin without csv_result: still CSV lines (as the old hub)")
t.is_((call("GET", "/api/work-requests/%s" % rid, H).json or {}).get("result"), None,
      "without include_result: no result")
admin = s.admin_token
ra = s.api("POST", "/api/work-requests", token=admin,
           json={"model_id": "m1", "request_payload": {"entries": ["CCO"], "has_header": False}})
arid = (ra.json or {}).get("id")
s.sql("INSERT INTO work_request_result (request_id, ordinal, record) VALUES ($1, 1, "
      "'{\"mol_weight\": 46.07}')", arid)
s.sql("UPDATE work_request SET status = 'COMPLETED', done_count = 1, finished_at = now() "
      "WHERE id = $1", arid)
r = s.api("GET", "/api/work-requests/%s?include_result=true&csv_result=false" % arid, token=admin)
t.is_((r.json or {}).get("result"), [{"mol_weight": 46.07}],
      "admin (Bearer) with csv_result=false: the list of records")

s.sql("UPDATE work_request SET status = 'FAILED', failure_reason = 'MODEL_ERROR', "
      "failure_detail = 'every input failed', finished_at = now() WHERE id = $1", rc)
j = call("GET", "/api/work-requests/%s?include_result=true&csv_result=true" % rc, H).json or {}
t.is_([j.get("request_status"), j.get("request_status_reason"), j.get("result")],
      ["FAILED", "MODEL_ERROR: every input failed", None], "FAILED with its reason, no result")
rx = (call("POST", "/api/work-requests", H, json=BODY).json or {}).get("id")
s.api("DELETE", "/api/requests/%s" % rx, token=ses.get("session_token"))
j = call("GET", "/api/work-requests/%s" % rx, H).json or {}
t.is_([j.get("request_status"), (j.get("request_status_reason") or "").split(":")[0],
       j.get("status")], ["FAILED", "CANCELLED", "CANCELLED"],
      "a cancelled request reads as FAILED, reason CANCELLED (status says CANCELLED)")

err_is(call("GET", "/api/work-requests/999999", H), 404, "request_not_found", "unknown id")
err_is(call("GET", "/api/work-requests/abc", H), 404, "request_not_found", "id not a number")
err_is(call("GET", "/api/work-requests/%s" % rid, other), 404, "request_not_found",
       "another session's request")
err_is(call("GET", "/api/work-requests/%s?include_result=maybe" % rid, H), 422,
       "invalid_parameter", "include_result=maybe")
err_is(call("GET", "/api/work-requests/%s?csv_result=2" % rid, H), 422, "invalid_parameter",
       "csv_result=2")
err_is(call("DELETE", "/api/work-requests/%s" % rid, H), 405, "method_not_allowed",
       "DELETE /api/work-requests/{id}")

# expired: a new login with the same id revives the session, its requests come back
s.sql("UPDATE session SET expires_at = now() - interval '1 second', absolute_expires_at = "
      "now() - interval '1 second' WHERE token_hash = sha256(decode($1, 'hex'))",
      ses.get("session_token"))
# (its header may still be honoured from a worker's session cache for up to
# session.cache_seconds, as any token: not checked here)
r = login(sid)
t.ok(r.status == 200 and (r.json or {}).get("resumed") is False,
     "login with the expired session's id: 200, a fresh start")
t.is_(len((call("GET", "/api/work-requests", H).json or {}).get("items") or []), 5,
      "  the same session: its requests are listed again")
t.done()
