#!/usr/bin/python3
# 233-runner-time-budget.t — a model's time budget (model.time_budget_s,
# seconds per input; issue 15 for issue 17): a call longer than the budget
# times its inputs is aborted, the request fails TIME_BUDGET_EXCEEDED and
# the instance is recycled; a call within it completes; the field is
# validated and shown by the API.
import functools
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1"})
anon = s.anon()
adm = s.admin_token
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e", "--host", "{host}",
        "--port", "{port}", "--call-cost", "3"]
s.sql("INSERT INTO model (id, local_command, details, model_version, max_instances, idle_seconds,"
      " time_budget_s) VALUES ('budget', $1::text[], '{\"columns\":[\"mol_weight\"]}'::jsonb, 'v1', 2, 60, 2)",
      flows.argv_literal(argv))
s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)

# ---- the API
m = s.api("GET", "/api/models/budget", token=adm)
t.is_((m.json or {}).get("time_budget_s"), 2, "GET /api/models shows time_budget_s")
r = s.api("PATCH", "/api/models/budget", json={"version": m.json.get("version"), "time_budget_s": -1}, token=adm)
t.ok(r.status == 422 and "time_budget_s" in str(r.json), "time_budget_s -1: 422 naming it (%s)" % r.status)

# ---- one input: a 3 s call over a 2 s budget
rid = submit("budget", ["CCO"])
flows.wait_for(t, "the call", lambda: s.sql(
    "SELECT 1 FROM instance_event WHERE kind = 'CHUNK_SENT' AND (detail->>'request_id')::bigint = $1",
    rid) or None, 60, 0.05)
t0 = time.time()
st = flows.wait_request(s, rid, 30)
took = time.time() - t0
t.is_(st[:2], ("FAILED", "TIME_BUDGET_EXCEEDED"), "a call over its budget fails TIME_BUDGET_EXCEEDED")
t.like(st[2] or "", r"time budget of 2 s per input \(1 inputs\)", "  the detail names the budget")
t.ok(took < 2.9, "  aborted at the budget, before the call's 3 s (%.2f s)" % took)
iid = s.sql("SELECT i.id FROM model_instance i JOIN instance_event e ON e.instance_id = i.id"
            " WHERE e.kind = 'CHUNK_SENT' AND (e.detail->>'request_id')::bigint = $1", rid)[0][0]
ok = flows.wait_for(t, "recycled", lambda: s.sql(
    "SELECT termination_reason FROM model_instance WHERE id = $1", iid) == [("STOPPED",)] or None, 10)
t.ok(ok, "  the busy instance was recycled (STOPPED)")

# ---- two inputs in one call: 4 s of budget for the 3 s call
rid = submit("budget", ["CCO", "CC"])
st = flows.wait_request(s, rid, 60)
t.is_(st[0], "COMPLETED", "two inputs: the budget scales with the inputs of a call (4 s > 3 s)")

# ---- without a budget the same call is fine
r = s.api("PATCH", "/api/models/budget", json={"version": s.api(
    "GET", "/api/models/budget", token=adm).json.get("version"), "time_budget_s": 0}, token=adm)
t.status(r, 200, "PATCH time_budget_s 0")
st = flows.wait_request(s, submit("budget", ["O"]), 60)
t.is_(st[0], "COMPLETED", "time_budget_s 0: no budget, the 3 s call completes")
t.done()
