#!/usr/bin/python3
# 179-stats.t — GET /api/stats (admins): finished requests by day, model, outcome, failure reason and input-size bucket, queue-wait and run percentiles (within the 19 % buckets), cache hit rate, open requests, date range and model filter, CSV export; the rollups are kept by a trigger and folded by the janitor without changing the answer, and survive the requests' deletion; every bad parameter is a 422 naming the field.
import csv
import io
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                          # noqa: E402
from stack import Stack                      # noqa: E402
from flows import error_code, submit, wait_request, wait_for  # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
adm = s.admin_token
u = s.user("st_user")
uid = s.sql("SELECT id FROM app_user WHERE username = 'st_user'")[0][0]

t.status(s.api("GET", "/api/stats"), 401, "no session: 401")
r = s.api("GET", "/api/stats", token=u)
t.status(r, 403, "a user: 403 (admins only)")

# Synthetic finished requests with known times, two paths into the rollup:
# stored finished (INSERT trigger) and QUEUED then finished (UPDATE trigger).
D1, D2 = "2026-11-01", "2026-11-02"
ROWS = [  # model, day, status, reason, inputs, cached, wait ms, run ms (None: never started)
    ("eos3b5e", D1, "COMPLETED", None, 1, 0, 20, 100),
    ("eos3b5e", D1, "COMPLETED", None, 5, 5, 20, 1000),
    ("eos3b5e", D1, "COMPLETED", None, 50, 10, 20, 10000),
    ("eos3b5e", D1, "FAILED", "MODEL_ERROR", 1, 0, 40, 300),
    ("eos3b5e", D1, "FAILED", "MODEL_ERROR", 1, 0, 40, 300),
    ("eos3b5e", D1, "CANCELLED", "CANCELLED", 1, 0, None, None),
    ("descriptors", D2, "COMPLETED", None, 2000, 1000, 5000, 60000),
    ("descriptors", D2, "FAILED", "TIMEOUT", 20000, 0, 10, 120000),
]


def add(i, row, via_update):
    model, day, status, reason, n, cached, wait, run = row
    fin = "'%s 12:00:00+00'::timestamptz" % day
    started = "NULL" if wait is None else "%s - interval '%d ms'" % (fin, run)
    created = "%s - interval '%d ms'" % (fin, (run or 0) + (wait or 1000))
    first = "QUEUED" if via_update else status
    rid = s.sql("INSERT INTO work_request (model_id, user_id, status, failure_reason, input_count,"
                " cached_count, created_at, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, "
                + created + ", " + started + ", " + ("NULL" if via_update else fin) + ") RETURNING id",
                model, uid, first, None if via_update else reason, n, cached)[0][0]
    if via_update:
        s.sql("UPDATE work_request SET status = $1, failure_reason = $2, finished_at = " + fin +
              " WHERE id = $3", status, reason, rid)
    return rid


ids = [add(i, row, i % 2 == 1) for i, row in enumerate(ROWS)]
t.is_(int(s.sql("SELECT count(*) FROM work_request WHERE id = ANY($1::bigint[])",
                "{%s}" % ",".join(ids))[0][0]), len(ROWS), "synthetic finished requests stored")

r = s.api("GET", "/api/stats?from=%s&to=%s" % (D1, D2), token=adm)
t.status(r, 200, "admin: 200")
st = r.json or {}
tot = st.get("totals", {})
t.is_((st.get("from"), st.get("to"), st.get("model_id")), (D1, D2, None), "range echoed")
t.is_((tot.get("completed"), tot.get("failed"), tot.get("cancelled"), tot.get("requests")), (4, 3, 1, 8),
      "totals by outcome (stored finished and finished later both counted)")
t.is_((tot.get("inputs"), tot.get("cached_inputs")), (22059, 1015), "inputs and cached inputs added up")
t.is_(tot.get("cache_hit_rate"), round(1015 / 22059, 4), "cache hit rate = cached / inputs")
t.is_([(d["day"], d["completed"], d["failed"], d["cancelled"]) for d in st.get("by_day", [])],
      [(D1, 3, 2, 1), (D2, 1, 1, 0)], "by day")
t.is_(sorted((m["model_id"], m["requests"]) for m in st.get("by_model", [])),
      [("descriptors", 2), ("eos3b5e", 6)], "by model")
t.is_([(m["day"], m["model_id"], m["requests"]) for m in st.get("by_model_day", [])],
      [(D1, "eos3b5e", 6), (D2, "descriptors", 2)], "by model and day")
t.is_([(f["reason"], f["requests"]) for f in st.get("failure_reasons", [])],
      [("MODEL_ERROR", 2), ("CANCELLED", 1), ("TIMEOUT", 1)], "failure reasons, most frequent first")
sizes = {b["bucket"]: b for b in st.get("by_size", [])}
t.is_([(k, sizes[k]["requests"]) for k in ("1", "2-10", "11-100", "101-1000", "1001-10000", ">10000")],
      [("1", 4), ("2-10", 1), ("11-100", 1), ("101-1000", 0), ("1001-10000", 1), (">10000", 1)],
      "grouped by input-size bucket")
t.is_((sizes["1"]["min_inputs"], sizes["1"]["max_inputs"], sizes[">10000"]["max_inputs"]), (1, 1, None),
      "buckets name their bounds")


def near(got, true):
    return got is not None and true <= got <= true * 1.19 + 1


run = st.get("run_ms", {})
t.is_(run.get("samples"), 7, "run time: one sample per started request (the cancelled one never ran)")
# run times sorted: 100, 300, 300, 1000, 10000, 60000, 120000
t.ok(near(run.get("p50"), 1000), "run p50 %s ~ 1000 ms" % run.get("p50"))
t.ok(near(run.get("p99"), 120000), "run p99 %s ~ 120000 ms" % run.get("p99"))
wait = st.get("queue_wait_ms", {})
t.ok(wait.get("samples") == 7 and near(wait.get("p50"), 20) and near(wait.get("p95"), 5000),
     "queue wait: p50 %s ~ 20 ms, p95 %s ~ 5000 ms" % (wait.get("p50"), wait.get("p95")))
t.ok(near(sizes["11-100"]["run_ms"]["p50"], 10000) and sizes["101-1000"]["run_ms"]["p50"] is None,
     "per size bucket percentiles (null without samples)")

r = s.api("GET", "/api/stats?from=%s&to=%s&model_id=descriptors" % (D1, D2), token=adm)
t.is_(((r.json or {}).get("model_id"), (r.json or {}).get("totals", {}).get("requests")), ("descriptors", 2),
      "model_id filter")
r = s.api("GET", "/api/stats?from=%s&to=%s" % (D2, D2), token=adm)
t.is_((r.json or {}).get("totals", {}).get("requests"), 2, "one-day range")

r = s.api("GET", "/api/stats?from=%s&to=%s&format=csv" % (D1, D2), token=adm)
t.status(r, 200, "CSV export")
t.like(r.headers.get("content-type", ""), r"^text/csv", "as text/csv")
t.like(r.headers.get("content-disposition", ""), r'attachment; filename="modelhub-stats-2026-11-01-2026-11-02\.csv"',
       "as a download named after the range")
rows = list(csv.reader(io.StringIO(r.text)))
t.is_(rows, [["day", "model_id", "completed", "failed", "cancelled", "inputs", "cached_inputs"],
             [D1, "eos3b5e", "3", "2", "1", "59", "15"], [D2, "descriptors", "1", "1", "0", "22000", "1000"]],
      "CSV: one line per day and model")

# ---- the janitor folds the pending rows; the answer does not change
before = s.api("GET", "/api/stats?from=%s&to=%s" % (D1, D2), token=adm).json
folded = wait_for(t, "stats fold", lambda: s.sql("SELECT count(*) FROM request_stats_pending")[0][0] == "0",
                  timeout=30)
t.ok(folded, "the janitor folded the pending rows")
t.ok(int(s.sql("SELECT count(*) FROM request_stats_day")[0][0]) >= 5, "into request_stats_day")
after = s.api("GET", "/api/stats?from=%s&to=%s" % (D1, D2), token=adm).json
t.is_(after, before, "same answer after the fold")
s.sql("DELETE FROM work_request WHERE id = ANY($1::bigint[])", "{%s}" % ",".join(ids))
again = s.api("GET", "/api/stats?from=%s&to=%s" % (D1, D2), token=adm).json
t.is_(again, before, "counts outlive the requests (retention, delete my data)")

# ---- a real request through the runner, today's default range
rid = submit(t, s, u, "eos3b5e", ["CCO", "C"])
t.is_(wait_request(s, rid)[0], "COMPLETED", "a real request completes")
r = s.api("GET", "/api/stats", token=adm)
today = time.strftime("%Y-%m-%d", time.gmtime())
st = r.json or {}
t.is_(st.get("to"), today, "default range ends today (UTC)")
t.is_(st.get("from"), time.strftime("%Y-%m-%d", time.gmtime(time.time() - 29 * 86400)), "and spans 30 days")
t.is_([(d["day"], d["completed"]) for d in st.get("by_day", [])], [(today, 1)], "today's completed request")
t.ok(st.get("run_ms", {}).get("samples") == 1 and st["run_ms"]["p50"] > 0, "with its run time")
t.is_((st.get("totals", {}).get("inputs"), st.get("open")), (2, {"queued": 0, "running": 0}),
      "its inputs; nothing open now")
held = s.sql("INSERT INTO work_request (model_id, user_id, status, input_count, runner_id, lease_expires_at,"
             " started_at) VALUES ('descriptors', $1, 'RUNNING', 1, 't179', now() + interval '1 hour', now())"
             " RETURNING id", uid)[0][0]
r = s.api("GET", "/api/stats?model_id=descriptors", token=adm)
t.is_((r.json or {}).get("open"), {"queued": 0, "running": 1}, "a running request counts as open (of its model)")
r = s.api("GET", "/api/stats?model_id=eos3b5e", token=adm)
t.is_((r.json or {}).get("open"), {"queued": 0, "running": 0}, "and not for another model")
s.sql("DELETE FROM work_request WHERE id = $1", held)

# ---- sql/016 re-runs on a database that has it (a database that applied an
# earlier version of the file takes the later additions that way)
before = [s.api("GET", q, token=adm).json for q in ("/api/stats?from=%s&to=%s" % (D1, D2), "/api/stats")]
t.ok(before[1]["totals"]["completed"] >= 1, "today's real request is counted before")
s.sql("DELETE FROM schema_migration WHERE version = 16")
r = s.ctl("migrate")
t.is_(r.returncode, 0, "migrate applies 016 again without error")
t.is_(s.sql("SELECT count(*) FROM schema_migration WHERE version = 16"), [("1",)], "and records it")
t.is_([s.api("GET", q, token=adm).json for q in ("/api/stats?from=%s&to=%s" % (D1, D2), "/api/stats")], before,
      "the guarded backfill counts nothing twice (the stored request is not added again)")

# ---- bad parameters
for q, code, field in (("from=2026-02-30", "invalid_date", "from"), ("to=yesterday", "invalid_date", "to"),
                       ("from=2026-11-02&to=2026-11-01", "invalid_date", "to"),
                       ("from=2025-01-01&to=2026-11-01", "invalid_date", "from"),
                       ("model_id=Bad%20Id", "invalid_parameter", "model_id"),
                       ("format=xml", "invalid_parameter", "format")):
    r = s.api("GET", "/api/stats?" + q, token=adm)
    t.ok(r.status == 422 and error_code(r) == code and field in ((r.json or {}).get("error", {}).get("fields") or {}),
         "%s: 422 %s naming %s" % (q, code, field))
s.stop()
t.done()
