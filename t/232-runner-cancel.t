#!/usr/bin/python3
# 232-runner-cancel.t — cancellation reaches the model call (issue 15, for
# issue 17): DELETE of a request whose 30 s call is in flight aborts the
# call at once (NOTIFY request_cancelled, not the next lease renewal) and
# recycles the instance, which may still be computing, within 2 s; the
# other requests of the same runner go on. A request taken away without a
# NOTIFY is found by the next lease renewal (all the runner's leases in one
# statement) and stopped.
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

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1", "hub.lease_seconds": "30"})
anon = s.anon()


def add_model(mid, cost):
    argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e", "--host", "{host}",
            "--port", "{port}", "--call-cost", cost]
    s.sql("INSERT INTO model (id, local_command, details, model_version, max_instances, idle_seconds)"
          " VALUES ($1, $2::text[], '{\"columns\":[\"mol_weight\"]}'::jsonb, 'v1', 2, 60)",
          mid, flows.argv_literal(argv))


add_model("long", "30")
add_model("other", "4")
s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)


def call_in_flight(rid):
    return s.sql("SELECT i.id, i.pid FROM model_instance i JOIN instance_event e ON e.instance_id = i.id"
                 " WHERE e.kind = 'CHUNK_SENT' AND (e.detail->>'request_id')::bigint = $1"
                 " AND i.state = 'BUSY'", rid) or None


rid = submit("long", ["CCO"])
bystander = submit("other", ["CC"])
row = flows.wait_for(t, "the long call", lambda: call_in_flight(rid), 60)
t.ok(row, "the 30 s call is in flight")
iid, pid = row[0] if row else (None, "0")
time.sleep(0.5)
t0 = time.time()
r = s.api("DELETE", "/api/requests/%s" % rid, token=anon)
t.ok(r.status in (200, 202, 204), "cancel accepted (%s)" % r.status)
freed = flows.wait_for(t, "the instance recycled", lambda: s.sql(
    "SELECT state FROM model_instance WHERE id = $1", iid) == [("TERMINATED",)] or None, 10, 0.05)
took = time.time() - t0
t.ok(freed and took < 2.0, "  its instance was recycled %.2f s after the cancel" % took)
t.is_(s.sql("SELECT termination_reason FROM model_instance WHERE id = $1", iid), [("STOPPED",)],
      "  ended STOPPED, not reused while the model may still compute")
t.is_(s.sql("SELECT count(*) FROM instance_event WHERE instance_id = $1 AND kind = 'STOP_ABANDONED_CALL'",
            iid), [("1",)], "  with a STOP_ABANDONED_CALL event")
alive = True
try:
    os.kill(int(pid), 0)
except (OSError, ValueError):
    alive = False
t.ok(not alive, "  its model process is gone")
log = open(s.logs["hubd"], errors="replace").read()
t.like(log, r"runner request=%s msg=\"cancelled: stopping its call\"" % rid, "  the runner heard the NOTIFY")
t.is_(s.sql("SELECT status FROM work_request WHERE id = $1", rid), [("CANCELLED",)], "  status CANCELLED")
t.is_(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1", rid), [("0",)],
      "  nothing stored for it")
t.is_(flows.wait_request(s, bystander, 60)[0], "COMPLETED", "the other request of the runner completed")

# ---- a request taken away without a NOTIFY (requeued by another replica's
# janitor after a lost lease): the runner's next lease renewal, one
# statement for all its requests, finds it is no longer ours and stops it
rid = submit("long", ["CCN"])
keep = submit("other", ["CCC"])
row = flows.wait_for(t, "the second long call", lambda: call_in_flight(rid), 60)
t.ok(row, "another 30 s call is in flight")
t0 = time.time()
s.sql("UPDATE work_request SET status = 'QUEUED', runner_id = NULL, lease_expires_at = NULL"
      " WHERE id = $1", rid)
gone = re.compile(r"request=%s attempt=1 status=\w+ msg=\"request no longer ours" % rid)
stopped = flows.wait_for(t, "the runner to give it up", lambda: gone.search(
    open(s.logs["hubd"], errors="replace").read()) or None, 10, 0.1)
t.ok(stopped and time.time() - t0 < 5, "  the runner stopped its first attempt within %.1f s (renewal every"
     " 2 s), though it claimed the request again itself" % (time.time() - t0))
# the stop is asynchronous (the runner logs, then the process is reaped)
ended = flows.wait_for(t, "the abandoned call's instance to end", lambda: s.sql(
    "SELECT termination_reason FROM model_instance WHERE id = $1 AND state = 'TERMINATED'",
    row[0][0] if row else None) or None, 10, 0.05)
t.is_(ended, [("STOPPED",)], "  the instance of the abandoned call was recycled")
t.is_(flows.wait_request(s, keep, 60)[0], "COMPLETED", "  the runner's other request still completed")
t.done()
