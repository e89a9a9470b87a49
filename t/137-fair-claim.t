#!/usr/bin/python3
# 137-fair-claim.t — fair scheduling between callers within a model (issue 17, per-caller quotas): one caller's long queue cannot starve another caller's single request; callers are served round-robin on claim (a caller's turn counts its RUNNING requests), and one caller's requests still run in submission order.
import os
import sys
import time

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
        "--call-cost", "0.4"]
s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds)"
      " VALUES ('fair', $1::text[], 1, 60)", flows.argv_literal(argv))
s.start_hubd()

a, b, c = s.anon(), s.anon(), s.user("carol")
# distinct valid molecules ("CC1" would be an unclosed ring: the model rejects it)
a_ids = [flows.submit(t, s, a, "fair", ["C" * (i + 1)]) for i in range(8)]
t.ok(all(a_ids), "caller A queues 8 one-input requests")
flows.wait_for(t, "A's first request running", lambda: s.sql(
    "SELECT status FROM work_request WHERE id = $1", a_ids[0])[0][0] == "RUNNING", timeout=60)
b_id = flows.submit(t, s, b, "fair", ["CCO"])
c_id = flows.submit(t, s, c, "fair", ["CCN"])
t.ok(b_id and c_id, "then caller B (anonymous) and caller C (a user) submit one each")
ids = a_ids + [b_id, c_id]
t.ok(flows.wait_for(t, "all requests completed", lambda: int(s.sql(
    "SELECT count(*) FROM work_request WHERE status = 'COMPLETED'")[0][0]) == len(ids),
    timeout=120, step=0.3), "all %d requests COMPLETED" % len(ids))
order = [int(r[0]) for r in s.sql("SELECT id FROM work_request ORDER BY started_at, id")]
pos = {rid: order.index(rid) for rid in ids}
t.diag("start order: %s (A %s, B %s, C %s)" % (order, a_ids, b_id, c_id))
# A had one RUNNING and at most one more claimed when B and C arrived;
# first-come order would start B 9th and C 10th.
t.ok(pos[b_id] <= 3, "B's single request starts among the first 4, not after A's queue (%d)"
     % (pos[b_id] + 1))
t.ok(pos[c_id] <= 4, "C's single request starts among the first 5 (%d)" % (pos[c_id] + 1))
t.is_([rid for rid in order if rid in a_ids], a_ids, "A's own requests start in submission order")
t.ok(pos[a_ids[-1]] == len(ids) - 1 or pos[a_ids[-1]] > max(pos[b_id], pos[c_id]),
     "A's last request starts after B's and C's")

# two callers with queues of their own alternate
d = s.anon()
two = [(a, x) for x in range(4)] + [(d, x) for x in range(4)]
rids = [(tok is a and "A" or "D", flows.submit(t, s, tok, "fair", ["C" * (x + 1) + "O"]))
        for tok, x in two]
t.ok(all(r for _w, r in rids), "A then D queue 4 requests each")
who = {r: w for w, r in rids}
t.ok(flows.wait_for(t, "all completed", lambda: int(s.sql(
    "SELECT count(*) FROM work_request WHERE status <> 'COMPLETED'")[0][0]) == 0,
    timeout=120, step=0.3), "all 8 requests COMPLETED")
seq = "".join(who[int(r[0])] for r in s.sql(
    "SELECT id FROM work_request WHERE id >= $1 ORDER BY started_at, id", rids[0][1]))
# A's first (or first two, if claimed before D's arrived) run at once;
# first-come order would be AAAADDDD
t.ok(seq in ("ADADADAD", "AADADADD"),
     "their requests start alternately once both are queued (%s)" % seq)

s.stop()
t.done()
