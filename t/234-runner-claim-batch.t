#!/usr/bin/python3
# 234-runner-claim-batch.t — a runner claims up to WORK_CLAIM_MAX (8) queued requests of a model in one transaction (issue 15: under a burst the claim rate bounded how many ran at once): a batch never takes more instance slots than max_instances leaves, keeps the callers' fair turns and FIFO per caller in started_at, gives back the slots of requests that end without an instance, and a lone request takes one warm instance, not a batch to give back.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1", "hub.chunk_size": "5",
                              "auth.pwhash_fast": "1"})
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load", "--host", "{host}",
        "--port", "{port}", "--cpu-per-input", "0", "--mib-per-input", "0",
        "--call-cost", "0.5"]
for mid, cap in (("batch", 3), ("dl", 4)):
    s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds)"
          " VALUES ($1, $2::text[], $3, 600)", mid, flows.argv_literal(argv), cap)


def claims(model):
    """(claimed, asked) of the runner's claim log lines for model."""
    with open(s.logs["hubd"], errors="replace") as f:
        return [(int(m.group(1)), int(m.group(2))) for m in re.finditer(
            r"runner model=%s claimed=(\d+) asked=(\d+)" % model, f.read())]


# 1. two callers queue 4 each before the hub runs: the first claim takes
# the 3 slots max_instances allows, in the callers' alternating turns
a, b = s.anon(), s.anon()
rids = []
for x in range(4):
    rids.append(("A", flows.submit(t, s, a, "batch", ["C" * (x + 1)])))
for x in range(4):
    rids.append(("B", flows.submit(t, s, b, "batch", ["C" * (x + 1) + "O"])))
t.ok(all(r for _w, r in rids), "callers A and B queue 4 requests each while no hub runs")
who = {r: w for w, r in rids}
s.start_hubd()
peak = 0


def all_done():
    global peak
    row = s.sql("SELECT count(*) FILTER (WHERE status = 'RUNNING'),"
                " count(*) FILTER (WHERE status = 'COMPLETED') FROM work_request"
                " WHERE model_id = 'batch'")[0]
    peak = max(peak, int(row[0]))
    return int(row[1]) == 8


t.ok(flows.wait_for(t, "all 8 completed", all_done, timeout=120, step=0.1),
     "all 8 requests COMPLETED")
got = claims("batch")
t.diag("claims (claimed, asked): %s" % got)
t.is_(got[0], (3, 8), "the first claim takes 3 requests in one transaction: the slots left"
      " by max_instances 3 (asked 8)")
t.ok(sum(c for c, _a in got) == 8 and len(got) < 8,
     "8 requests in %d claims" % len(got))
t.ok(peak <= 3, "never more than max_instances running at once (peak %d)" % peak)
t.is_(int(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'batch'")[0][0]), 3,
      "3 instances started for 8 requests: no slot beyond the limit, the rest warm reuse")
rows = s.sql("SELECT id, started_at FROM work_request WHERE model_id = 'batch'"
             " ORDER BY started_at, id")
seq = "".join(who[int(r[0])] for r in rows)
t.is_(seq, "ABABABAB", "the batch keeps the callers' turns (started_at order %s)" % seq)
t.is_(len(set(r[1] for r in rows)), 8, "started_at tells every request apart, even in one batch")
for w in "AB":
    mine = [int(r[0]) for r in rows if who[int(r[0])] == w]
    t.is_(mine, sorted(mine), "caller %s's requests start in submission order" % w)

# 2. a lone request on the now warm model takes one IDLE instance; the
# others are not taken and given back (their last_used_at stays)
flows.wait_for(t, "instances IDLE", lambda: int(s.sql(
    "SELECT count(*) FROM model_instance WHERE model_id = 'batch' AND state = 'IDLE'")[0][0])
    == 3, timeout=30)
before = dict(s.sql("SELECT id, last_used_at FROM model_instance WHERE model_id = 'batch'"))
lone = flows.submit(t, s, a, "batch", ["CCCCCCCCC"])
t.is_(flows.wait_request(s, lone)[0], "COMPLETED", "a lone request completes")
got = claims("batch")
t.is_(got[-1][0], 1, "it is claimed alone (claims: %s)" % got[3:])
after = dict(s.sql("SELECT id, last_used_at FROM model_instance WHERE model_id = 'batch'"))
t.is_(sum(1 for k in before if before[k] != after[k]), 1,
      "exactly one warm instance was used; the other two were not touched")

# 3. a batch where one request's deadline already passed: it fails TIMEOUT
# and its new slot is given back within the claim (no instance row left)
s.stop_hubd()
late = flows.submit(t, s, a, "dl", ["CC"])
ok1 = flows.submit(t, s, b, "dl", ["CO"])
s.sql("UPDATE work_request SET deadline = now() - interval '1 second' WHERE id = $1", late)
s.start_hubd()
t.is_(flows.wait_request(s, late)[:2], ("FAILED", "TIMEOUT"),
      "the request whose deadline passed fails TIMEOUT")
t.is_(flows.wait_request(s, ok1)[0], "COMPLETED", "the other request of its batch completes")
t.ok(any(c == 2 for c, _a in claims("dl")), "both were claimed in one transaction")
t.is_(int(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'dl'")[0][0]), 1,
      "one instance was made: the late request's slot was given back unused")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE state = 'BUSY'")[0][0], "0",
      "no instance is left BUSY")

s.stop()
t.done()
