#!/usr/bin/python3
# 373-autoscale-external.t — the autoscaler in mode external with kubesim's cluster-autoscaler stub: start deadlines extended while the engine provisions, the work completes, the engine's nodes go away after it, a pod no group fits fails NO_CAPACITY at once, and modelhub writes nothing to nodes or machines (the simulator's audit log).
"""No node can take the model pods at first (node-a has 1 CPU); the external
autoscaler stub owns group ng-a (2 CPU / 4 GiB nodes, max 3, provisioned 8 s
after its decision). hub.instance_start_timeout is 5 s: without the
autoscaler's verdict (provisioning, from the engine's TriggeredScaleUp
event) every start would fail INSTANCE_START_TIMEOUT; with it the deadline
is extended (hub.provision_timeout) and the requests complete. A model of
12 CPUs fits no group: its request fails NO_CAPACITY within seconds. The
audit log shows modelhub's writes: pods only, never nodes or machines."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import base_config, start, submit, wait_done  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
simcfg = base_config(
    namespaces=["modelhub", "kube-system"],
    nodes=[{"name": "node-a", "cpu": "1", "memory": "2Gi", "group": "static"}],
    external_autoscaler={"provision_seconds": 8, "scale_down_idle": 4, "event_every": 2,
                         "groups": [{"name": "ng-a", "min": 0, "max": 3,
                                     "node": {"cpu": "2", "memory": "4Gi"}}]})
G = "autoscale.group."
hub = {"hub.runners": "3", "hub.instance_start_timeout": "5", "hub.provision_timeout": "120",
       "autoscale.groups": "ng-a", "autoscale.period_seconds": "1",
       G + "ng-a.mode": "external", G + "ng-a.node_label": "modelhub.io/node-group=ng-a",
       G + "ng-a.cpu_m": "2000", G + "ng-a.memory_mib": "4096", G + "ng-a.max": "3"}
sim, s = start(sim_config=simcfg, hub=hub, hubd=False)
s.sql("UPDATE model SET cpu_request_m = 1500, cpu_limit_m = 2000, max_instances = 2, idle_seconds = 1"
      " WHERE id = 'eos3b5e'")
s.sql("UPDATE model SET cpu_request_m = 12000, cpu_limit_m = 12000 WHERE id = 'load'")
s.start_hubd()
anon = s.anon()
admin = s.admin_token

t0 = time.time()
ids = [submit(s, anon, "eos3b5e", ["CCO"]) for _ in range(4)]
sts = [wait_done(s, i, 150) for i in ids]
t.is_([x[0] for x in sts].count("COMPLETED"), 4, "4 requests complete although each pod waited > 5 s (%s)"
      % set(x[:2] for x in sts))
t.ok(time.time() - t0 > 8, "  they waited for the engine's nodes (%.1f s)" % (time.time() - t0))
nodes = set(r[0] for r in s.sql("SELECT DISTINCT node FROM model_instance WHERE model_id = 'eos3b5e'"))
t.ok(nodes and all(n.startswith("ng-a-") for n in nodes), "  on the engine's nodes (%s)" % nodes)
ext = s.sql("SELECT reason FROM autoscaler_decision WHERE mode = 'external' AND action = 'wait'")
t.ok(any("TriggeredScaleUp" in r[0] for r in ext), "the engine's TriggeredScaleUp is recorded as the decision (%s)"
     % [r[0][:60] for r in ext][:3])
log = open(s.logs["hubd"]).read() if "hubd" in s.logs else ""
t.like(log, r"capacity is being provisioned: start deadline extended", "the runner extended the start deadline")


def engine_nodes():
    return [n["metadata"]["name"] for n in sim.api("GET", "/api/v1/nodes").json().get("items", [])
            if n["metadata"]["name"].startswith("ng-a-")]


deadline = time.time() + 90
while time.time() < deadline and engine_nodes():
    time.sleep(1)
t.is_(engine_nodes(), [], "after the work the engine's nodes are gone (%s)" % nodes)

t1 = time.time()
rid = submit(s, anon, "load", ["CCO"])
st = wait_done(s, rid, 60)
t.is_(st[:2], ("FAILED", "NO_CAPACITY"), "12 CPUs: FAILED NO_CAPACITY (%s)" % (st,))
t.ok(time.time() - t1 < 20, "  fast (%.1f s)" % (time.time() - t1))
t.like(st[2] or "", r"12000m", "  the detail names the model's requests")

r = s.api("GET", "/api/autoscaler", token=admin)
snap = (r.json or {}).get("snapshot") or {}
t.ok([g for g in snap.get("groups", []) if g["name"] == "ng-a" and g["mode"] == "external"],
     "GET /api/autoscaler shows the external group")
t.like(snap.get("engine_status") or "", r"(?m)^- name: ng-a$", "  and cluster-autoscaler's status ConfigMap text")

audit = sim.api("GET", "/kubesim/audit").json()["items"]
mine = [a for a in audit if a["user"] == "admin"]
t.ok(any(a["resource"] == "pods" and a["verb"] == "create" for a in mine), "audit: modelhub created pods")
bad = [a for a in mine if a["resource"].split("/")[0] in ("nodes", "machines", "machinedeployments")]
t.is_(bad, [], "audit: modelhub made no node or machine write")
t.ok(s.sql("SELECT count(*) FROM autoscaler_node")[0][0] == "0", "no node cordoned by modelhub")
t.done()
