#!/usr/bin/python3
# 368-kube-outage.t — requests in flight keep their pod across an API server outage (every API call failing 500 or reset, watches dropped) and across their node going NotReady; a pod evicted mid-call is an instance failure (retried on a fresh pod), never a hang; pod deletes are retried through 429/5xx.
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
sim, s = start(hub={"hub.instance_start_timeout": "20", "hub.chunk_size": "100", "kube.call_timeout_ms": "2000"})
anon = s.anon()


def model(mid, idle=0):
    s.sql("INSERT INTO model (id, execution_mode, image, image_tag, port, cpu_request_m, cpu_limit_m,"
          " memory_request_mib, memory_limit_mib, max_instances, idle_seconds)"
          " VALUES ($1, 'SYNC', 'modelhub/load', 'latest', 80, 100, 2000, 64, 2048, 2, $2::int)", mid, idle)


def inst(mid):
    return s.sql("SELECT id, state, termination_reason, name FROM model_instance WHERE model_id = $1"
                 " ORDER BY id", mid)


def busy(mid):
    r = inst(mid)
    return r[0] if r and r[0][1] == "BUSY" and r[0][3] else None


def faults(fs):
    r = sim.api("POST", "/kubesim/faults", fs)
    assert r.status == 200, r.status


# ---- API server outage in the middle of a call (about 5 s of CPU in one call)
model("outage")
rid = submit(s, anon, "outage", ["C"] * 100)
first = wait_for(lambda: busy("outage"), 60)
t.ok(first, "request running on a pod")
faults([{"path": "^/api", "code": 500, "count": 100000}, {"path": "^/apis", "reset": True, "count": 100000}])
sim.api("POST", "/kubesim/drop-watches", {})
time.sleep(6)
faults([])
st = wait_done(s, rid, 60)
t.is_(st[:2], ("COMPLETED", None), "API server down for 6 s mid-call -> COMPLETED (%s)" % (st,))
rows = inst("outage")
t.is_(len(rows), 1, "  on the same instance (%d instances)" % len(rows))
t.ok(rows and first and rows[0][0] == first[0] and rows[0][2] in (None, "IDLE", "STOPPED"),
     "  the instance it started on, ended normally (%s)" % (rows,))

# ---- the node goes NotReady mid-call: the pod keeps serving
model("notready")
rid = submit(s, anon, "notready", ["C"] * 100)
first = wait_for(lambda: busy("notready"), 60)
t.ok(first, "request running on a pod")
node = sim.pod(first[3])["spec"]["nodeName"] if first else ""
r = sim.api("POST", "/kubesim/node-ready", {"node": node, "ready": False})
t.is_(r.status, 200, "  node %s marked NotReady" % node)
nd = sim.api("GET", "/api/v1/nodes/%s" % node).json()
t.ok(any(c["type"] == "Ready" and c["status"] == "False" for c in nd["status"]["conditions"]) and
     any(x["key"] == "node.kubernetes.io/not-ready" for x in nd["spec"].get("taints", [])),
     "  node condition Ready=False and the not-ready taint")
st = wait_done(s, rid, 60)
t.is_(st[:2], ("COMPLETED", None), "node NotReady mid-call -> COMPLETED (%s)" % (st,))
t.is_(len(inst("notready")), 1, "  on the same instance")
sim.api("POST", "/kubesim/node-ready", {"node": node, "ready": True})
r = sim.api("POST", "/kubesim/node-ready", {"node": "no-such-node", "ready": True})
t.is_(r.status, 404, "node-ready of an unknown node: 404")

# ---- eviction mid-call: an instance failure, retried on a fresh pod
model("evicted")
rid = submit(s, anon, "evicted", ["C"] * 100)
first = wait_for(lambda: busy("evicted"), 60)
t.ok(first, "request running on a pod")
time.sleep(1.0)
r = sim.api("POST", "/kubesim/evict", {"namespace": "modelhub", "name": first[3] if first else ""})
t.is_(r.status, 200, "  pod evicted (kubelet, node pressure)")
p = sim.pod(first[3]) if first else None
t.ok(p is None or (p["status"].get("phase") == "Failed" and p["status"].get("reason") == "Evicted"),
     "  pod Failed, reason Evicted")
st = wait_done(s, rid, 90)
t.is_(st[:2], ("COMPLETED", None), "evicted mid-call -> retried on a fresh pod, COMPLETED (%s)" % (st,))
rows = inst("evicted")
t.ok(len(rows) == 2 and rows[0][1] == "TERMINATED", "  first instance TERMINATED, a second one served (%s)" % (rows,))
r = sim.api("POST", "/kubesim/evict", {"namespace": "modelhub", "name": "no-such-pod"})
t.is_(r.status, 404, "evict of an unknown pod: 404")

# ---- deletes retried through 429 and 500
model("delretry")
rid = submit(s, anon, "delretry", ["C"] * 60)
first = wait_for(lambda: busy("delretry"), 60)
faults([{"method": "DELETE", "path": "/pods/", "code": 429, "retry_after": 1, "count": 1},
        {"method": "DELETE", "path": "/pods/", "code": 500, "count": 1}])
st = wait_done(s, rid, 60)
t.is_(st[0], "COMPLETED", "request done")
t.ok(wait_for(lambda: not [p for p in pods(sim) if p["metadata"]["name"] == (first[3] if first else "")], 30),
     "  its pod is deleted although the first DELETEs got 429 and 500")
left = sum(f["count"] for f in sim.api("GET", "/kubesim/faults").json()["items"])
t.is_(left, 0, "  both refusals were met")
faults([])

t.ok(wait_for(lambda: not [p for p in pods(sim) if not p["metadata"].get("deletionTimestamp")
                           and p["status"].get("phase") in ("Pending", "Running")], 30),
     "no model pods left running")
t.done()
