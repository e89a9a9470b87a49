#!/usr/bin/python3
# 404-scraper-oom.t — the memory limit where no cgroup enforces it: a local
# instance (a process group without a dedicated memory cgroup) whose working
# set stays over memory_limit_mib is killed by the scraper and recorded
# OOMKILLED (row, OOM_KILLED event, persisted metrics with its maximum); a
# model with disable_memory_limit is left alone.
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"metrics.interval_ms": "300"})
s.add_demo_models()
s.sql("UPDATE model SET disable_memory_limit = true WHERE id = 'descriptors'")
s.start_hubd()
replica = s.config["hub.replica_id"]

HOG = ("import time\n"
       "b = bytearray(150 << 20)\n"
       "b[::4096] = b'\\x01' * len(range(0, 150 << 20, 4096))\n"
       "time.sleep(120)\n")


def hog():
    # its own session and process group, in our cgroup (like a cgroup-less instance)
    return subprocess.Popen(["/usr/bin/python3", "-c", HOG], start_new_session=True)


def fake_instance(iid, model, pid):
    s.sql("INSERT INTO model_instance (id, model_id, backend, name, node, pid, replica_id, state,"
          " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, ready_at)"
          " VALUES ($1::bigint, $2, 'local', $3, NULL, $4::int, $5, 'READY', 100, 1000, 50, 100, now())",
          iid, model, "mh-%s" % iid, pid, replica)


p1, p2 = hog(), hog()
fake_instance(7001, "eos3b5e", p1.pid)
fake_instance(7002, "descriptors", p2.pid)
try:
    rc = p1.wait(30)
except subprocess.TimeoutExpired:
    rc = None
t.is_(rc, -signal.SIGKILL, "the group over its 100 MiB limit was SIGKILLed")
t.is_(p2.poll(), None, "a model with disable_memory_limit is left alone")
row = s.sql("SELECT termination_reason, termination_detail FROM model_instance WHERE id = 7001")[0]
t.is_(row[0], "OOMKILLED", "termination_reason OOMKILLED written before the kill")
t.like(row[1] or "", r"over the limit of 100 MiB", "detail says why")
ev = s.sql("SELECT detail->>'by', (detail->>'memory_mib')::float FROM instance_event"
           " WHERE instance_id = 7001 AND kind = 'OOM_KILLED'")
t.ok(ev and ev[0][0] == "scraper" and float(ev[0][1]) > 100, "OOM_KILLED event with the memory seen (%s)" % (ev,))

# the row ends (runner sweep or monitor) keeping the OOMKILLED reason, metrics persisted
deadline = time.time() + 60
pm = None
while time.time() < deadline and not pm:
    pm = s.sql("SELECT termination_reason, mem_max_mib, memory_limit_mib FROM instance_metrics"
               " WHERE instance_id = 7001")
    time.sleep(0.5)
t.ok(pm, "instance_metrics persisted for the killed instance")
t.ok(pm and pm[0][0] == "OOMKILLED" and float(pm[0][1]) > 100 and pm[0][2] == "100",
     "persisted OOMKILLED with its memory maximum over the limit (%s)" % (pm,))
t.is_(s.sql("SELECT state, termination_reason FROM model_instance WHERE id = 7001")[0],
      ("TERMINATED", "OOMKILLED"), "row TERMINATED, reason kept")
os.killpg(p2.pid, signal.SIGKILL)
p2.wait(10)
t.done()
