#!/usr/bin/python3
# 201-runner-basic.t — runners end to end on the local backend with the real
# demo models: SYNC and ASYNC requests complete with correct values, chunks
# of hub.chunk_size, invalid SMILES give null records, warm instances are
# reused, instance rows/events/logs are recorded, process titles and the
# hub_server row are visible; model_changed retires idle instances.
import functools
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "40"})
s.add_demo_models()
s.start_hubd()
anon = s.anon()


submit = functools.partial(flows.submit, t, s, anon)
wait = functools.partial(flows.wait_request, s)


def records(rid):
    r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=anon)
    return [x.get("record") for x in (r.json or {}).get("results", [])]


# ---- SYNC
rid = submit("eos3b5e", ["CCO", "c1ccccc1", "not_a_smiles", "O"])
st = wait(rid)
t.is_(st[0], "COMPLETED", "SYNC request completes (%s)" % (st,))
recs = records(rid)
t.is_(len(recs), 4, "  one record per input")
t.ok(recs and abs(recs[0]["mol_weight"] - 46.07) < 0.01, "  CCO -> 46.07")
t.ok(recs and abs(recs[1]["mol_weight"] - 78.11) < 0.01, "  benzene -> 78.11")
t.ok(recs and (recs[2] is None or recs[2].get("mol_weight") is None), "  invalid SMILES -> null record")
t.ok(recs and abs(recs[3]["mol_weight"] - 18.02) < 0.01, "  order kept")
row = s.sql("SELECT done_count, input_count, attempts, runner_id IS NOT NULL, started_at IS NOT NULL,"
            " finished_at IS NOT NULL, model_calls, extra_calls FROM work_request WHERE id = $1", rid)[0]
t.is_(row[:6], ("4", "4", "1", "t", "t", "t"), "  counters, runner and timestamps set")
t.is_(row[6:], ("1", "0"), "  one model call, no extra calls")

inst = s.sql("SELECT id, state, backend, address, pid IS NOT NULL, ready_at IS NOT NULL,"
             " memory_limit_mib FROM model_instance WHERE model_id = 'eos3b5e'")
t.is_(len(inst), 1, "  one instance started")
t.is_(inst[0][1:3], ("IDLE", "local"), "  instance IDLE (warm) after the request")
t.like(inst[0][3] or "", r"^127\.0\.0\.1:\d+$", "  loopback address")
t.is_(inst[0][4:], ("t", "t", "512"), "  pid, ready_at and resources recorded")
kinds = [k for (k,) in s.sql("SELECT kind FROM instance_event WHERE instance_id = $1 ORDER BY id",
                             inst[0][0])]
t.is_(kinds, ["REQUESTED", "STARTED", "READY", "CHUNK_SENT", "IDLE"], "  instance events in order")
t.ok(os.path.exists(os.path.join(s.var_dir, "instances", "%s.log" % inst[0][0])),
     "  instance log file under var/instances")

# ---- warm reuse + chunks: 100 inputs, chunk 40 -> 3 chunks on the same instance
smiles = ["C" * (1 + i % 10) for i in range(100)]
rid2 = submit("eos3b5e", smiles)
st = wait(rid2)
t.is_(st[0], "COMPLETED", "100-input request completes")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'"), [("1",)],
      "  the warm instance was reused")
t.is_(s.sql("SELECT count(*) FROM instance_event WHERE instance_id = $1 AND kind = 'CHUNK_SENT'",
            inst[0][0]), [("4",)], "  3 chunks of <= 40 inputs (+1 earlier)")
recs = records(rid2)
t.ok(len(recs) == 100 and all(abs(r["mol_weight"] - (12.011 * (1 + i % 10) + 1.008 * (2 * (1 + i % 10) + 2))) < 0.05
                              for i, r in enumerate(recs)), "  100 alkane weights correct and in order")
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
            rid2), [("100", "100")], "  no duplicate results")

# ---- model_changed retires idle instances: new resources apply next time
s.sql("UPDATE model SET memory_limit_mib = 384 WHERE id = 'eos3b5e'")
s.sql("SELECT pg_notify('model_changed', 'eos3b5e')")
deadline = time.time() + 10
while time.time() < deadline and s.sql("SELECT state FROM model_instance WHERE id = $1",
                                       inst[0][0]) != [("TERMINATED",)]:
    time.sleep(0.1)
t.is_(s.sql("SELECT state, termination_reason FROM model_instance WHERE id = $1", inst[0][0]),
      [("TERMINATED", "STOPPED")], "model_changed: the idle instance is retired")
t.ok(s.sql("SELECT count(*) FROM instance_event WHERE instance_id = $1 AND kind = 'MODEL_CHANGED'",
           inst[0][0]) == [("1",)], "  MODEL_CHANGED event")
rid5 = submit("eos3b5e", ["CCO"])
t.is_(wait(rid5)[0], "COMPLETED", "  next request completes")
t.is_(s.sql("SELECT memory_limit_mib FROM model_instance WHERE model_id = 'eos3b5e' AND state <> 'TERMINATED'"),
      [("384",)], "  on a new instance with the new memory limit")

# ---- ASYNC
rid3 = submit("eos3b5e-async", ["CCO", "bad(", "CCN"])
st = wait(rid3)
t.is_(st[0], "COMPLETED", "ASYNC request completes (%s)" % (st,))
recs = records(rid3)
t.ok(len(recs) == 3 and abs(recs[0]["mol_weight"] - 46.07) < 0.01 and
     abs(recs[2]["mol_weight"] - 45.08) < 0.01, "  ASYNC values correct")
t.ok(len(recs) == 3 and (recs[1] is None or recs[1].get("mol_weight") is None), "  ASYNC null record")

# ---- header handling: the header line never reaches the model
rid4 = submit("eos3b5e", ["smiles", "CCO"], has_header=True)
st = wait(rid4)
recs = records(rid4)
t.is_((st[0], len(recs)), ("COMPLETED", 1), "header request: one input computed")

# ---- process titles, hub_server
out = subprocess.run(["ps", "-e", "-o", "args"], stdout=subprocess.PIPE, text=True).stdout
for title in ("modelhubd: supervisor", "modelhubd: runner 0", "modelhubd: runner 1",
              "modelhubd: janitor"):
    t.ok(title in out, "ps shows '%s'" % title)
hs = s.sql("SELECT replica_id, pid, detail->'children' IS NOT NULL FROM hub_server")
t.is_(len(hs), 1, "hub_server row for the replica")
t.is_(hs[0][2] if hs else None, "t", "  with the children table")

s.stop_hubd()
left = s.sql("SELECT count(*) FROM model_instance WHERE state <> 'TERMINATED'")
t.is_(left, [("0",)], "SIGTERM: every instance stopped and recorded")
t.is_(s.sql("SELECT termination_reason FROM model_instance WHERE id = $1", inst[0][0]),
      [("STOPPED",)], "  termination reason STOPPED")
t.ok(s.sql("SELECT length(text) > 0 FROM instance_log WHERE instance_id = $1", inst[0][0]) == [("t",)],
     "  instance log kept in instance_log")
t.done()
