#!/usr/bin/python3
# 221-parallel-probing.t — a failing chunk's parts are called at once on several warm instances (issue 20).
"""A --strict demo model (whole-batch 500; every call costs 0.3 s and a
failed one 0.3 s more, paid one call at a time per instance, like
ersilia-pack) with max_instances 4 and four warm instances: a request whose
chunks hold inputs only the model rejects isolates them on several
instances at once (overlapping calls of different instances in the
model's call log), in less time than with hub.probe_width = 1 (one
instance, the calls in turn) in the same run; both give every good input
its record in input order and every bad one a null record with the
model's reason; never more calls than plain halving's worst case; the
borrowed instances go back IDLE; after a failure the request's remaining
chunks go at once on them; a cancelled request stops its parallel
calls."""
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
MODEL = "par"
s.sql("INSERT INTO model (id, local_command, details, max_instances, idle_seconds)"
      " VALUES ($1, $2::text[], $3::jsonb, 4, 600)", MODEL, flows.argv_literal(argv()),
      '{"columns":["mol_weight"],"input":"Compound"}')
s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)
wait = functools.partial(flows.wait_request, s, timeout=240)
pr = Probing(s, anon, MODEL)
row, results, idle, calls_of, set_width = pr.row, pr.results, pr.idle, pr.calls_of, pr.set_width


# ---- four warm instances: four requests at once, one instance each
rids = [submit(MODEL, valid(3)) for _ in range(4)]
for rid in rids:
    wait(rid)
t.ok(flows.wait_for(t, "four IDLE instances", lambda: idle() == 4, timeout=60),
     "four warm (IDLE) instances of the model")

# ---- the same request with parallel probing and without
BAD = {7: "C[Cl]C", 61: "C[NH4]", 130: "c1ccpc1", 188: "C[N+](C)(C)(C)C"}
inputs = valid(200)
for pos, smi in BAD.items():
    inputs[pos] = smi
REASON = re.compile(r"(rejected in every batch that held it \(last: )?POST /run: HTTP 500 "
                    r"Internal processing error due to a shell execution\)?$")
runs = {}
for width in (4, 1):
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
    t.is_(st[0], "COMPLETED", "probe width %d: 200 inputs, 4 only the model rejects: COMPLETED"
          % width)
    t.ok(len(res) == 200 and all(res[i]["record"] and
                                 abs(res[i]["record"].get("mol_weight", 0) - weight(inputs[i])) < 0.05
                                 for i in range(200) if i not in BAD),
         "  196 records, each its own input's (molecular weight), in input order")
    t.ok(len(res) == 200 and all(res[p]["record"] is None and REASON.match(res[p]["error"] or "")
                                 for p in BAD),
         "  each bad input: null record and the model's reason: %s"
         % sorted({res[p]["error"] for p in BAD if p < len(res)}))
    # plain halving's worst case: 2n - 1 calls per chunk of n
    t.ok(2 < r.get("model_calls", 0) <= 2 * 200 - 2 and
         r.get("extra_calls") == r.get("model_calls", 0) - 2,
         "  %d calls (%d extra), within halving's worst case" % (r.get("model_calls", 0),
                                                                 r.get("extra_calls", -1)))
    t.is_(len(calls), r.get("model_calls"), "  the model's call log has every call")
    t.ok(flows.wait_for(t, "the borrowed instances IDLE again", lambda: idle() == 4, timeout=30),
         "  the borrowed instances are IDLE again")

par, ser = runs[4], runs[1]
t.ok(par[2] >= 2 and par[3] > 0,
     "width 4: calls on %d instances, %d pairs of calls of different instances overlapping"
     % (par[2], par[3]))
t.ok(ser[2] == 1 and ser[3] == 0, "width 1: every call on one instance, none overlapping (%d, %d)"
     % (ser[2], ser[3]))
t.ok(par[0] < 0.85 * ser[0], "width 4 took %.1f s, width 1 %.1f s: less time (%.2fx)"
     % (par[0], ser[0], par[0] / ser[0]))

# ---- after the failure the remaining chunks go at once on the borrowed instances
set_width(4)
s.api("DELETE", "/api/models/%s/cache" % MODEL, token=adm)
inputs4 = valid(400)
inputs4[3] = "C[Cl]C"
t0 = time.time()
rid = submit(MODEL, inputs4)
st = wait(rid)
calls = calls_of(t0, time.time())
res = results(rid)
last_bad = max([c["end"] for c in calls if c["status"] != 200] or [0])
later = [c for c in calls if c["start"] >= last_bad]
t.ok(st[0] == "COMPLETED" and len(res) == 400 and res[3]["record"] is None and
     all(res[i]["record"] for i in range(400) if i != 3),
     "400 inputs, one bad in the first chunk: COMPLETED, 399 records, 1 error")
t.ok(sum(c["inputs"] for c in later) > 200 and overlaps(later) > 0,
     "  once it was isolated, the other chunks' %d inputs went in %d calls on %d instances,"
     " %d pairs overlapping" % (sum(c["inputs"] for c in later), len(later),
                                len({c["pid"] for c in later}), overlaps(later)))

# ---- a cancelled request stops its parallel calls; no instance stays BUSY
s.api("DELETE", "/api/models/%s/cache" % MODEL, token=adm)
rid = submit(MODEL, inputs)
t.ok(flows.wait_for(t, "BUSY helpers", lambda: pr.busy_for(rid) >= 2, timeout=60, step=0.05),
     "a request isolating on several instances at once")
r = s.api("DELETE", "/api/requests/%s" % rid, token=anon)
st = wait(rid)
t.is_(st[0], "CANCELLED", "cancelled while probing: CANCELLED (%s)" % r.status)
t.ok(flows.wait_for(t, "no BUSY instance", lambda: pr.busy_for(rid) == 0, timeout=30),
     "  no instance of the model still BUSY for it")
t.done()
