#!/usr/bin/python3
# 222-parallel-probing-async.t — an ASYNC model's failing chunk is isolated with jobs on several warm instances at once (issue 20).
"""The ASYNC side of t/221: a --strict demo model in ASYNC mode (a job of a
batch holding an input only the model rejects ends "failed"; every job
costs 0.3 s and a failed one 0.3 s more, one job at a time per instance)
with max_instances 3 and three warm instances. A request whose chunk holds
such inputs has its parts' jobs submitted on several instances and polled
together (jobs of different instances overlapping in the model's call
log), in less time than with hub.probe_width = 1 in the same run; both
give every good input its record in input order and every bad one a null
record with the reason; never more calls than plain halving's worst case;
the borrowed instances go back IDLE; a cancelled request stops its jobs
and leaves no instance BUSY."""
import functools
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402
from probing import Probing, argv, overlaps, valid, weight  # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "100"})
anon = s.anon()
adm = s.admin_token
MODEL = "apar"
s.sql("INSERT INTO model (id, execution_mode, local_command, details, max_instances, idle_seconds)"
      " VALUES ($1, 'ASYNC', $2::text[], $3::jsonb, 3, 600)", MODEL, flows.argv_literal(argv()),
      '{"columns":["mol_weight"],"input":"Compound"}')
s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)
wait = functools.partial(flows.wait_request, s, timeout=240)
pr = Probing(s, anon, MODEL)
row, results, idle, calls_of, set_width = pr.row, pr.results, pr.idle, pr.calls_of, pr.set_width


# ---- three warm instances: three requests at once, one instance each
rids = [submit(MODEL, valid(3)) for _ in range(3)]
for rid in rids:
    wait(rid)
t.ok(flows.wait_for(t, "three IDLE instances", lambda: idle() == 3, timeout=60),
     "three warm (IDLE) instances of the ASYNC model")

BAD = {13: "C[Cl]C", 71: "C[NH4]"}
inputs = valid(100)
for pos, smi in BAD.items():
    inputs[pos] = smi
REASON = re.compile(r"(rejected in every batch that held it \(last: )?ASYNC job failed\)?$")
runs = {}
for width in (3, 1):
    set_width(width)
    s.api("DELETE", "/api/models/%s/cache" % MODEL, token=adm)   # forget the bad inputs
    t0 = time.time()
    rid = submit(MODEL, inputs)
    st = wait(rid)
    t1 = time.time()
    r, res = row(rid), results(rid)
    secs = float(s.sql("SELECT extract(epoch FROM finished_at - started_at) FROM work_request"
                       " WHERE id = $1", rid)[0][0])
    calls = calls_of(t0, t1)
    runs[width] = (secs, r.get("model_calls", 0), len({c["pid"] for c in calls}), overlaps(calls))
    t.is_(st[0], "COMPLETED", "probe width %d: 100 inputs, 2 only the model rejects: COMPLETED"
          % width)
    t.ok(len(res) == 100 and all(res[i]["record"] and
                                 abs(res[i]["record"].get("mol_weight", 0) - weight(inputs[i])) < 0.05
                                 for i in range(100) if i not in BAD),
         "  98 records, each its own input's, in input order")
    t.ok(len(res) == 100 and all(res[p]["record"] is None and REASON.match(res[p]["error"] or "")
                                 for p in BAD),
         "  each bad input: null record and the reason: %s"
         % sorted({res[p]["error"] for p in BAD if p < len(res)}))
    t.ok(1 < r.get("model_calls", 0) <= 2 * 100 - 1 and
         r.get("extra_calls") == r.get("model_calls", 0) - 1,
         "  %d jobs (%d extra), within halving's worst case" % (r.get("model_calls", 0),
                                                                r.get("extra_calls", -1)))
    t.is_(len(calls), r.get("model_calls"), "  the model's call log has every job")
    t.ok(flows.wait_for(t, "the borrowed instances IDLE again", lambda: idle() == 3, timeout=30),
         "  the borrowed instances are IDLE again")

par, ser = runs[3], runs[1]
t.ok(par[2] >= 2 and par[3] > 0,
     "width 3: jobs on %d instances, %d pairs of jobs of different instances overlapping"
     % (par[2], par[3]))
t.ok(ser[2] == 1 and ser[3] == 0, "width 1: every job on one instance, none overlapping (%d, %d)"
     % (ser[2], ser[3]))
t.ok(par[0] < 0.85 * ser[0], "width 3 took %.1f s, width 1 %.1f s: less time (%.2fx)"
     % (par[0], ser[0], par[0] / ser[0]))

# ---- a cancelled request stops its jobs; no instance stays BUSY for it
set_width(3)
s.api("DELETE", "/api/models/%s/cache" % MODEL, token=adm)
rid = submit(MODEL, inputs)
t.ok(flows.wait_for(t, "BUSY helpers", lambda: pr.busy_for(rid) >= 2, timeout=60, step=0.05),
     "a request isolating with jobs on several instances at once")
r = s.api("DELETE", "/api/requests/%s" % rid, token=anon)
st = wait(rid)
t.is_(st[0], "CANCELLED", "cancelled while probing: CANCELLED (%s)" % r.status)
t.ok(flows.wait_for(t, "no BUSY instance", lambda: pr.busy_for(rid) == 0, timeout=30),
     "  no instance of the model still BUSY for it")
t.done()
