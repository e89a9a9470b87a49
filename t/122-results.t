#!/usr/bin/python3
# 122-results.t — GET /api/requests/{id}/result: CSV (RFC 4180 quoting, column
# order, null records, shortest floats, header handling) and JSON (full
# precision, per-input errors, cached flags), paging over large results, and
# the 409/404/422 answers, first with result rows written by SQL as a runner
# would, then end to end with modelhubd and the demo models (SYNC, ASYNC,
# strict: per-input errors).
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.max_inputs": "3000"})
s.sql("INSERT INTO model (id, details) VALUES "
      "('rm', '{\"columns\":[\"zeta\",\"alpha\",\"label\",\"flag\",\"count\"]}'), ('rn', '{}')")
alice = s.user("alice")
bob = s.user("bob")
anon = s.anon()


def submit(tok, model, inputs, **kw):
    body = {"model_id": model, "inputs": inputs}
    body.update(kw)
    r = s.api("POST", "/api/requests", token=tok, json=body)
    if r.status != 201:
        t.diag("submit failed: %s %s" % (r.status, r.text))
    return r.json["id"]


def result(rid, ordinal, record, error=None, cached=False):
    s.sql("INSERT INTO work_request_result (request_id, ordinal, record, error, cached) "
          "VALUES ($1, $2, $3::jsonb, $4, $5)", rid, ordinal,
          None if record is None else json.dumps(record) if not isinstance(record, str) else record,
          error, cached)


def complete(rid):
    s.sql("UPDATE work_request SET status = 'COMPLETED', started_at = now(), finished_at = now(), "
          "done_count = input_count WHERE id = $1", rid)


def get(rid, fmt=None, tok=None):
    return s.api("GET", "/api/requests/%s/result%s" % (rid, "?format=" + fmt if fmt else ""),
                 token=tok or alice)


# ---- the main fixture
rid = submit(alice, "rm", ["CCO", "a,b", 'say "hi"', "two\nlines", "plain"])
result(rid, 1, '{"alpha": 46.07, "zeta": 78.11399999999999, "label": "x,y", "flag": true, "count": 3}')
result(rid, 2, None, error="model failed on this input")
result(rid, 3, '{"alpha": 0.30000000000000004, "zeta": 1e-7, "label": "q\\"t", "flag": false, '
               '"count": -1}', cached=True)
result(rid, 4, '{"alpha": null, "zeta": null, "label": null, "flag": null, "count": null}')
result(rid, 5, '{"alpha": 1.5, "zeta": 100000000000000000000, "label": "", "flag": true, '
               '"count": 0, "extra": [1, 2]}')

# not ready yet
r = get(rid, "csv")
t.status(r, 409, "QUEUED: 409")
t.is_(((r.json or {}).get("error") or {}).get("code"), "not_ready", "  code not_ready")
t.is_((((r.json or {}).get("error") or {}).get("fields") or {}).get("status"), "QUEUED",
      "  fields.status")
s.sql("UPDATE work_request SET status = 'RUNNING' WHERE id = $1", rid)
t.status(get(rid, "json"), 409, "RUNNING: 409")
complete(rid)

r = get(rid, "csv")
t.status(r, 200, "COMPLETED: CSV 200")
t.like(r.headers.get("content-type"), r"^text/csv", "  text/csv")
t.like(r.headers.get("content-disposition"), r'attachment; filename="request-%d\.csv"' % rid,
       "  Content-Disposition attachment")
want = ('input,zeta,alpha,label,flag,count,extra\r\n'
        'CCO,78.11399999999999,46.07,"x,y",true,3,\r\n'
        '"a,b",,,,,,\r\n'
        '"say ""hi""",1e-07,0.30000000000000004,"q""t",false,-1,\r\n'
        '"two\nlines",,,,,,\r\n'
        'plain,100000000000000000000,1.5,,true,0,"[1, 2]"\r\n')
t.is_(r.text, want, "CSV: model column order, keys of later records appended, quoting, "
                    "empty cells, shortest floats, big integers exact")

r = get(rid, "json")
t.status(r, 200, "JSON 200")
t.like(r.headers.get("content-type"), r"^application/json", "  application/json")
j = r.json or {}
t.is_(j.get("columns"), ["zeta", "alpha", "label", "flag", "count", "extra"], "JSON columns")
t.is_(j.get("id"), rid, "JSON id")
t.is_(j.get("status"), "COMPLETED", "JSON status")
res = j.get("results") or []
t.is_(len(res), 5, "one result per input")
t.is_([x.get("input") for x in res], ["CCO", "a,b", 'say "hi"', "two\nlines", "plain"],
      "inputs in input order")
t.is_(res[0].get("record", {}).get("zeta"), 78.11399999999999, "full precision kept")
t.ok("78.11399999999999" in r.text, "  digits verbatim in the body")
t.ok("error" not in res[0], "no error key when the input succeeded")
t.is_(res[1].get("record"), None, "failed input: null record")
t.is_(res[1].get("error"), "model failed on this input", "failed input: per-input error")
t.is_([x.get("cached") for x in res], [False, False, True, False, False], "cached flags")
t.is_(res[3].get("record"), {"alpha": None, "zeta": None, "label": None, "flag": None,
                             "count": None}, "all-null record kept as stored")
t.is_(res[4]["record"]["extra"], [1, 2], "nested values kept")
t.is_(get(rid).json, j, "format defaults to json")

# ---- access and parameters
t.status(get(rid, "csv", tok=bob), 404, "other user: 404")
t.status(get(rid, "csv", tok=anon), 404, "anon token on a user request: 404")
r = get(rid, "xml")
t.status(r, 422, "format=xml: 422")
t.is_(((r.json or {}).get("error") or {}).get("code"), "invalid_parameter", "  invalid_parameter")
t.status(get(987654, "csv"), 404, "unknown request: 404")
t.status(s.api("GET", "/api/requests/x/result", token=alice), 404, "bad id: 404")
t.status(s.api("GET", "/api/requests/%d/result" % rid), 401, "no session: 401")

# ---- failed and cancelled requests
rf = submit(alice, "rm", ["C"])
s.sql("UPDATE work_request SET status = 'FAILED', failure_reason = 'MODEL_ERROR', "
      "failure_detail = 'every input failed', finished_at = now() WHERE id = $1", rf)
r = get(rf, "csv")
t.status(r, 409, "FAILED: 409")
e = (r.json or {}).get("error") or {}
t.is_(e.get("code"), "request_failed", "  code request_failed")
t.is_((e.get("fields") or {}).get("failure_reason"), "MODEL_ERROR", "  failure_reason given")
t.like(e.get("message"), "MODEL_ERROR", "  reason in the message")
s.api("DELETE", "/api/requests/%d" % submit(alice, "rm", ["C"]), token=alice)
rcx = s.sql("SELECT max(id) FROM work_request WHERE status = 'CANCELLED'")[0][0]
r = get(rcx, "json")
t.status(r, 409, "CANCELLED: 409")
t.is_(((r.json or {}).get("error") or {}).get("code"), "request_cancelled", "  request_cancelled")

# ---- anonymous owner
ra = submit(anon, "rm", ["CCO"])
result(ra, 1, {"zeta": 1, "alpha": 2})
complete(ra)
r = get(ra, "csv", tok=anon)
t.status(r, 200, "anon downloads its own result")
t.is_(r.text, "input,zeta,alpha,label,flag,count\r\nCCO,1,2,,,\r\n", "  declared columns even if absent")

# ---- columns without a declaration: first non-null record, jsonb key order
rn = submit(alice, "rn", ["A", "B"])
result(rn, 1, None, error="bad")
result(rn, 2, '{"bb": 1, "a": 2}')
complete(rn)
r = get(rn, "csv")
t.is_(r.text, "input,a,bb\r\nA,,\r\nB,2,1\r\n",
      "no declared columns: keys of the first non-null record")
s.sql("UPDATE work_request SET metadata = metadata || '{\"columns\":[\"bb\",\"a\"]}' WHERE id = $1",
      rn)
r = get(rn, "csv")
t.is_(r.text, "input,bb,a\r\nA,,\r\nB,1,2\r\n", "columns recorded on the request win")
t.is_((get(rn, "json").json or {}).get("columns"), ["bb", "a"], "  JSON columns too")
rz = submit(alice, "rn", ["A"])
result(rz, 1, None, error="bad")
complete(rz)
r = get(rz, "csv")
t.is_(r.text, "input\r\nA\r\n", "no record at all: only the input column")
t.is_((get(rz, "json").json or {}).get("columns"), [], "  JSON columns empty")
rmiss = submit(alice, "rn", ["A", "B"])
result(rmiss, 2, {"a": 1})
complete(rmiss)
res = (get(rmiss, "json").json or {}).get("results") or [{}]
t.like(res[0].get("error"), "no result", "missing result row: error says so")

# ---- header handling both ways
rh = s.api("POST", "/api/models/rm/requests?has_header=true", token=alice,
           data="smiles,x\nCCO,1\nO,2\n", headers={"Content-Type": "text/csv"}).json["id"]
result(rh, 1, {"zeta": 1})
result(rh, 2, {"zeta": 2})
complete(rh)
# the file's other column (x) rides along before the outputs (t/151)
t.is_(get(rh, "csv").text, "input,x,zeta,alpha,label,flag,count\r\nCCO,1,1,,,,\r\nO,2,2,,,,\r\n",
      "has_header=true: header line not a result row")
rnh = s.api("POST", "/api/models/rm/requests?has_header=false&column=1", token=alice,
            data="smiles,x\nCCO,1\n", headers={"Content-Type": "text/csv"}).json["id"]
result(rnh, 1, None, error="invalid SMILES")
result(rnh, 2, {"zeta": 2})
complete(rnh)
t.is_(get(rnh, "csv").text,
      "input,column_2,zeta,alpha,label,flag,count\r\nsmiles,x,,,,,\r\nCCO,1,2,,,,\r\n",
      "has_header=false: first line is an input, nothing shifted")

# ---- large results: read in pages of 1000 rows; bodies over 256 KiB are
# streamed (no Content-Length), smaller ones sent whole
for n, pad in ((1000, 0), (2500, 0), (2500, 300)):
    body = "".join("C%d\n" % i for i in range(1, n + 1))
    rl = s.api("POST", "/api/models/rm/requests", token=alice, data=body,
               headers={"Content-Type": "text/plain"}).json["id"]
    s.sql("INSERT INTO work_request_result (request_id, ordinal, record) "
          "SELECT request_id, ordinal, jsonb_build_object('zeta', ordinal, 'label', "
          " repeat('x', $2::int)) FROM work_request_input WHERE request_id = $1", rl, pad)
    complete(rl)
    name = "%d inputs, %s" % (n, "streamed" if pad else "whole")
    label = "x" * pad
    r = get(rl, "csv")
    lines = r.text.split("\r\n")
    t.is_(len(lines), n + 2, "%s: header + %d rows + final CRLF" % (name, n))
    t.ok(all(lines[i] == "C%d,%d,,%s,," % (i, i, label) for i in range(1, n + 1)),
         "%s: every row present once, in order" % name)
    t.is_("content-length" in r.headers, not pad, "%s: Content-Length %s" %
          (name, "absent" if pad else "present"))
    res = (get(rl, "json").json or {}).get("results") or []
    t.is_([x["record"]["zeta"] for x in res], list(range(1, n + 1)),
          "%s: JSON pages joined in order" % name)

# ---- end to end: modelhubd runs the demo models (SYNC, ASYNC, strict)
s.start_hubd()
s.add_demo_models()
s.sql("INSERT INTO model (id, local_command, details, max_instances, idle_seconds) VALUES "
      "('strict', ARRAY['/usr/bin/python3', '{models_dir}/serve.py', '--model', 'eos3b5e', "
      "'--strict', '--host', '{host}', '--port', '{port}'], '{\"columns\":[\"mol_weight\"]}', 1, 5)")


def wait_done(rid, timeout=180):
    import time
    end = time.time() + timeout
    j = {}
    while time.time() < end:
        j = s.api("GET", "/api/requests/%d" % rid, token=alice).json or {}
        if j.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
            return j
        time.sleep(0.3)
    return j


for model in ("eos3b5e", "eos3b5e-async"):
    for hh in (True, False):
        body = ("smiles\n" if hh else "") + 'CCO\n"C,C"\nnot_a_smiles\nc1ccccc1\n'
        rid = s.api("POST", "/api/models/%s/requests?has_header=%s" % (model, str(hh).lower()),
                    token=alice, data=body, headers={"Content-Type": "text/csv"}).json["id"]
        j = wait_done(rid)
        name = "%s has_header=%s" % (model, hh)
        t.is_(j.get("status"), "COMPLETED", name + ": COMPLETED")
        t.is_(j.get("progress", {}).get("done"), 4, name + ": 4 inputs done")
        r = get(rid, "csv")
        lines = r.text.split("\r\n")
        t.is_(lines[0], "input,mol_weight", name + ": header")
        t.ok(lines[1].startswith("CCO,") and abs(float(lines[1].split(",")[1]) - 46.07) < 0.01,
             name + ": CCO -> 46.07")
        t.is_(lines[2], '"C,C",', name + ": input with a comma quoted, invalid -> empty cell")
        t.is_(lines[3], "not_a_smiles,", name + ": invalid SMILES -> empty cell")
        t.ok(lines[4].startswith("c1ccccc1,") and abs(float(lines[4].split(",")[1]) - 78.11) < 0.01,
             name + ": benzene -> 78.11")
        t.is_(len(lines), 6, name + ": one row per input, header line never a row")

# strict model: one bad molecule fails the whole batch at the model; the
# runner isolates it and the result shows a per-input error (issue 8)
rid = s.api("POST", "/api/requests", token=alice,
            json={"model_id": "strict", "inputs": ["CCO", "not_a_smiles", "c1ccccc1"]}).json["id"]
j = wait_done(rid)
t.is_(j.get("status"), "COMPLETED", "strict model: COMPLETED despite a bad input")
t.is_(j.get("error_count"), 1, "  error_count 1")
res = (get(rid, "json").json or {}).get("results") or [{}, {}, {}]
t.ok(abs(((res[0].get("record") or {}).get("mol_weight") or 0) - 46.07) < 0.01, "  CCO computed")
t.is_(res[1].get("record"), None, "  bad input: null record")
t.ok(bool(res[1].get("error")), "  bad input: per-input error in JSON")
t.ok("error" not in res[0] and "error" not in res[2], "  good inputs carry no error")
t.is_(get(rid, "csv").text.split("\r\n")[2], "not_a_smiles,", "  CSV leaves its cell empty")

# cancel while RUNNING: the runner stops and stores nothing afterwards
import time
rid = s.api("POST", "/api/requests", token=alice,
            json={"model_id": "load", "inputs": ["C" * (1 + i % 20) for i in range(400)]}).json["id"]
end = time.time() + 120
j = {}
while time.time() < end:
    j = s.api("GET", "/api/requests/%d" % rid, token=alice).json or {}
    if j.get("status") == "RUNNING" and j.get("progress", {}).get("done", 0) > 0 or \
            j.get("status") in ("COMPLETED", "FAILED"):
        break
    time.sleep(0.1)
t.is_(j.get("status"), "RUNNING", "load request is RUNNING with progress")
r = s.api("DELETE", "/api/requests/%d" % rid, token=alice)
t.status(r, 200, "cancel it")
done_at_cancel = (r.json or {}).get("progress", {}).get("done")
time.sleep(4)
j = s.api("GET", "/api/requests/%d" % rid, token=alice).json or {}
t.is_(j.get("status"), "CANCELLED", "  still CANCELLED after the runner noticed")
n = int(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1", rid)[0][0])
time.sleep(2)
n2 = int(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1", rid)[0][0])
t.ok(done_at_cancel <= n == n2 < 400,
     "  the runner stopped: results frozen (%s at cancel, %d, %d later, of 400)"
     % (done_at_cancel, n, n2))
t.is_(((get(rid, "csv").json or {}).get("error") or {}).get("code"), "request_cancelled",
      "  result: 409 request_cancelled")

t.done()
