#!/usr/bin/python3
# 361-kube-failures.t — kubernetes backend failure paths against kubesim: OOMKilled pod -> FAILED OOM_KILLED, unknown image (ImagePullBackOff) -> INSTANCE_START_TIMEOUT and unschedulable -> NO_CAPACITY within the deadline, pod deleted externally mid-call -> retried on a new pod (or failed), never hanging; ended pods are deleted.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import pods, start, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
START_TIMEOUT = 5
sim, s = start(hub={"hub.instance_start_timeout": str(START_TIMEOUT), "hub.chunk_size": "100"})
anon = s.anon()


def model(mid, image, cpu=100, mem_req=64, mem_lim=512, mode="SYNC", cpu_lim=2000):
    s.sql("INSERT INTO model (id, execution_mode, image, image_tag, port, cpu_request_m, cpu_limit_m,"
          " memory_request_mib, memory_limit_mib, max_instances, idle_seconds)"
          " VALUES ($1, $2, $3, 'latest', 80, $4::int, $7::int, $5::int, $6::int, 2, 0)",
          mid, mode, image, cpu, mem_req, mem_lim, cpu_lim)


def pod_of(iid):
    for p in pods(sim):
        if p["metadata"]["labels"].get("modelhub/instance") == str(iid):
            return p
    return None


def inst(mid):
    return s.sql("SELECT id, state, termination_reason, name FROM model_instance WHERE model_id = $1"
                 " ORDER BY id", mid)


# ---- OOM during a call: 100 inputs x 4 MiB held over a 200 MiB limit
model("oomy", "modelhub/load", mem_req=100, mem_lim=200)
t0 = time.time()
rid = submit(s, anon, "oomy", ["C" * (1 + i % 5) for i in range(100)])
st = wait_done(s, rid, 60)
t.is_(st[:2], ("FAILED", "OOM_KILLED"), "pod OOMKilled at its limit -> FAILED OOM_KILLED (%s)" % (st,))
rows = inst("oomy")
t.ok(rows and rows[0][2] == "OOMKILLED", "  instance terminated OOMKILLED (%s)" % (rows,))
ev = [k for (k,) in s.sql("SELECT kind FROM instance_event WHERE instance_id = $1 AND source = 'k8s'",
                          rows[0][0])] if rows else []
t.ok("OOMKilling" in ev or "Killing" in ev or "Started" in ev, "  k8s events recorded (%s)" % ev)
t.ok(wait_for(lambda: pod_of(rows[0][0]) is None, 20), "  the Failed pod is deleted after the row ended")

# ---- unknown image: ErrImagePull / ImagePullBackOff until the start timeout
model("noimage", "modelhub/does-not-exist")
t0 = time.time()
rid = submit(s, anon, "noimage", ["CCO"])
st = wait_done(s, rid, 60)
took = time.time() - t0
t.is_(st[:2], ("FAILED", "INSTANCE_START_TIMEOUT"), "image pull failure -> INSTANCE_START_TIMEOUT (%s)" % (st,))
t.like(st[2] or "", r"image pull failed|ImagePull|ErrImage", "  failure detail names the image pull")
t.ok(START_TIMEOUT - 1 <= took < START_TIMEOUT + 15, "  within the start deadline (%.1f s)" % took)
rows = inst("noimage")
snap = s.sql("SELECT snapshot->'pod_state'->>'image_error', snapshot->'pod_state'->>'reason'"
             " FROM model_instance WHERE id = $1", rows[0][0])[0] if rows else None
t.ok(snap and snap[0] == "true", "  pod state recorded the image error (%s)" % (snap,))
t.ok(wait_for(lambda: pod_of(rows[0][0]) is None, 20), "  its pod is deleted")

# ---- unschedulable: requests larger than any node
model("huge", "modelhub/eos3b5e", cpu=64000, cpu_lim=64000)
t0 = time.time()
rid = submit(s, anon, "huge", ["CCO"])
st = wait_done(s, rid, 60)
took = time.time() - t0
t.is_(st[:2], ("FAILED", "NO_CAPACITY"), "unschedulable until the start deadline -> NO_CAPACITY (%s)" % (st,))
t.like(st[2] or "", r"unschedulable: 0/1 nodes are available", "  failure detail carries the scheduler's message")
t.ok(took < START_TIMEOUT + 15, "  within the start deadline (%.1f s)" % took)
rows = inst("huge")
kinds = [k for (k,) in s.sql("SELECT kind FROM instance_event WHERE instance_id = $1 AND source = 'k8s'",
                             rows[0][0])] if rows else []
t.ok("FailedScheduling" in kinds, "  FailedScheduling event recorded (%s)" % kinds)
snap = s.sql("SELECT snapshot->'pod_state'->>'unschedulable' FROM model_instance WHERE id = $1",
             rows[0][0])[0][0] if rows else None
t.is_(snap, "true", "  pod state says unschedulable")
t.ok(wait_for(lambda: pod_of(rows[0][0]) is None, 20), "  its pod is deleted")

# ---- pod deleted externally in the middle of a call
model("slowload", "modelhub/load", mem_lim=2048)
rid = submit(s, anon, "slowload", ["C"] * 100)   # about 5 s of CPU in one call
first = wait_for(lambda: (lambda r: r[0] if r and r[0][1] == "BUSY" and r[0][3] else None)(inst("slowload")), 30)
t.ok(first, "slow request running on a pod")
time.sleep(1.0)
if first:
    r = sim.api("DELETE", "/api/v1/namespaces/modelhub/pods/%s?gracePeriodSeconds=0" % first[3])
    t.is_(r.status, 200, "  pod deleted through the API (like kubectl delete)")
st = wait_done(s, rid, 60)
t.ok(st[0] in ("COMPLETED", "FAILED"), "request ends instead of hanging (%s)" % (st,))
rows = inst("slowload")
t.ok(rows and rows[0][1] == "TERMINATED", "  the deleted pod's instance TERMINATED (%s)" % (rows[:1],))
if st[0] == "COMPLETED":
    t.ok(len(rows) == 2, "  retried on a fresh pod (%d instances)" % len(rows))
else:
    t.ok(st[1] in ("MODEL_ERROR",), "  failed with a reason")

# ---- nothing left running
t.ok(wait_for(lambda: not [p for p in pods(sim) if not p["metadata"].get("deletionTimestamp")
                           and p["status"].get("phase") in ("Pending", "Failed")], 30),
     "no Pending or Failed model pods left")
t.done()
