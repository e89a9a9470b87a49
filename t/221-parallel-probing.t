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
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
import flows                   # noqa: E402
from probing import Probing, compare_widths, overlaps, valid  # noqa: E402

t = TAP()
MODEL = "par"
pr = Probing.start(t, MODEL, "SYNC", 4)
s, anon, adm = pr.s, pr.token, pr.s.admin_token
submit, wait = pr.submit, pr.wait
results, idle, calls_of, set_width = pr.results, pr.idle, pr.calls_of, pr.set_width


# ---- four warm instances: four requests at once, one instance each
rids = [submit(MODEL, valid(3)) for _ in range(4)]
for rid in rids:
    wait(rid)
t.ok(flows.wait_for(t, "four IDLE instances", lambda: idle() == 4, timeout=60),
     "four warm (IDLE) instances of the model")

# ---- the same request with parallel probing and without
BAD = {7: "C[Cl]C", 61: "C[Br]C", 130: "c1ccpc1", 188: "C[B](C)(C)C"}
inputs = valid(200)
for pos, smi in BAD.items():
    inputs[pos] = smi
REASON = re.compile(r"(rejected in every batch that held it \(last: )?POST /run: HTTP 500 "
                    r"Internal processing error due to a shell execution\)?$")
compare_widths(t, pr, submit, wait, adm, inputs, BAD, REASON, 4)

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
