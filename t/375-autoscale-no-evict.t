#!/usr/bin/python3
# 375-autoscale-no-evict.t — the no-evict annotations of a model pod follow its instance: set while it serves a request (cluster-autoscaler safe-to-evict "false", Karpenter do-not-disrupt "true"), lifted while it idles warm (safe-to-evict "true", no do-not-disrupt), set again when it serves the next request.
"""kubesim, one 4-CPU node in an external node group (the autoscaler child
runs; nothing is written to nodes). The demo `load` model burns 0.05 CPU s
per input: 120 inputs keep its instance BUSY for several seconds, and
idle_seconds 60 keeps it warm in between. The pod's annotations are read
from the API server (what cluster-autoscaler and Karpenter see)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import base_config, pods, start, submit, wait_done  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
CA, KP = "cluster-autoscaler.kubernetes.io/safe-to-evict", "karpenter.sh/do-not-disrupt"
simcfg = base_config(nodes=[{"name": "node-a", "cpu": "4", "memory": "8Gi", "pods": 20,
                             "group": "static"}])
G = "autoscale.group."
hub = {"hub.runners": "2", "autoscale.groups": "static", "autoscale.period_seconds": "1",
       G + "static.mode": "external", G + "static.node_label": "modelhub.io/node-group=static",
       G + "static.cpu_m": "4000", G + "static.memory_mib": "8192"}
sim, s = start(sim_config=simcfg, hub=hub, hubd=False)
s.sql("UPDATE model SET cpu_request_m = 500, cpu_limit_m = 2000, memory_request_mib = 256,"
      " memory_limit_mib = 2048, max_instances = 1, idle_seconds = 60, execution_mode = 'SYNC'"
      " WHERE id = 'load'")
s.start_hubd()
anon = s.anon()
INPUTS = ["C" * (1 + i % 5) for i in range(120)]


def annotations():
    ps = [p for p in pods(sim) if not p["metadata"].get("deletionTimestamp")]
    return (ps[0]["metadata"].get("annotations") or {}) if ps else None


def state():
    r = s.sql("SELECT state FROM model_instance WHERE model_id = 'load' AND state <> 'TERMINATED'")
    return r[0][0] if r else None


def wait(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return cond()


def serving_check(label):
    t.ok(wait(lambda: state() == "BUSY", 60), "%s: the instance serves the request" % label)
    a = wait(lambda: (annotations() or {}).get(CA) == "false" and annotations(), 5) or annotations() or {}
    t.is_(a.get(CA), "false", "%s: safe-to-evict \"false\" while it serves" % label)
    t.is_(a.get(KP), "true", "%s: do-not-disrupt \"true\" while it serves" % label)


rid = submit(s, anon, "load", INPUTS)
serving_check("first request")
t.is_(wait_done(s, rid, timeout=90)[0], "COMPLETED", "first request completed")
t.ok(wait(lambda: state() == "IDLE", 10), "the instance idles warm")
a = wait(lambda: (annotations() or {}).get(CA) == "true" and annotations(), 10) or annotations() or {}
t.is_(a.get(CA), "true", "idle: safe-to-evict \"true\" (a bare pod is never evicted without it)")
t.ok(KP not in a, "idle: do-not-disrupt removed")
r = s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'load'")
rid = submit(s, anon, "load", INPUTS)
serving_check("second request on the warm instance")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'load'"), r,
      "the same instance served it")
t.is_(wait_done(s, rid, timeout=90)[0], "COMPLETED", "second request completed")
with open(s.logs["hubd"]) as f:
    log = f.read()
t.ok("no_evict=0" in log and "no_evict=1" in log, "the autoscaler logged both changes")
t.done()
