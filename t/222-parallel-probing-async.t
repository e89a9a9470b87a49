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
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
import flows                   # noqa: E402
from probing import Probing, compare_widths, valid  # noqa: E402

t = TAP()
MODEL = "apar"
pr = Probing.start(t, MODEL, "ASYNC", 3)
s, anon, adm = pr.s, pr.token, pr.s.admin_token
submit, wait = pr.submit, pr.wait
idle, set_width = pr.idle, pr.set_width


# ---- three warm instances: three requests at once, one instance each
rids = [submit(MODEL, valid(3)) for _ in range(3)]
for rid in rids:
    wait(rid)
t.ok(flows.wait_for(t, "three IDLE instances", lambda: idle() == 3, timeout=60),
     "three warm (IDLE) instances of the ASYNC model")

BAD = {13: "C[Cl]C", 71: "C[Br]C"}
inputs = valid(100)
for pos, smi in BAD.items():
    inputs[pos] = smi
REASON = re.compile(r"(rejected in every batch that held it \(last: )?ASYNC job failed\)?$")
compare_widths(t, pr, submit, wait, adm, inputs, BAD, REASON, 3, calls="jobs")

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
