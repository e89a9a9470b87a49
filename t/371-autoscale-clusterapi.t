#!/usr/bin/python3
# 371-autoscale-clusterapi.t — the autoscaler child in mode clusterapi against kubesim: the right MachineDeployment grows by the right count (never past max), the work completes, a second shape picks the other group, idle nodes are cordoned and removed down to min, decisions are readable in GET /api/autoscaler.
"""One static node too small for the models (1 CPU), two Cluster API groups:
md-small (2 CPU / 4 GiB nodes, max 2) and md-big (8 CPU / 16 GiB, max 1),
machines provisioned after 1 s, nodes Ready 1 s later. Model eos3b5e asks
1.5 CPU (one pod per small node), max_instances 3; ten requests: three pods
wait Unschedulable, the autoscaler adds small nodes (2 = max, never 3) and
the requests complete on them; the third pod, past md-small's max, gets an
md-big node. descriptors asks 5 CPU: only md-big fits.
With idle_seconds 1 the pods go, the nodes are cordoned, then marked
delete-machine and removed, down to min (0 for both). A model whose requests
fit no group is refused on save (422 fits_no_node_group) and listed by
GET /api/autoscaler, whose snapshot and decisions say why each thing
happened. A request whose pod can never fit fails NO_CAPACITY at once. A
request arriving while a node is cordoned for removal runs elsewhere; no node
is removed while an instance runs on it."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import base_config, start, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
MDS = "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments"
simcfg = base_config(
    nodes=[{"name": "node-a", "cpu": "1", "memory": "2Gi", "group": "static"}],
    machinedeployments=[
        {"name": "md-small", "namespace": "default", "replicas": 0, "provision_seconds": 1.0,
         "node": {"cpu": "2", "memory": "4Gi"}},
        {"name": "md-big", "namespace": "default", "replicas": 0, "provision_seconds": 1.0,
         "node": {"cpu": "8", "memory": "16Gi"}}])
G = "autoscale.group."
hub = {"hub.runners": "4", "autoscale.groups": "small, big", "autoscale.period_seconds": "1",
       G + "small.machinedeployment": "default/md-small", G + "small.cpu_m": "2000",
       G + "small.memory_mib": "4096", G + "small.max": "2", G + "small.scale_down_idle_seconds": "3",
       G + "small.cooldown_seconds": "2",
       G + "big.machinedeployment": "default/md-big", G + "big.cpu_m": "8000", G + "big.memory_mib": "16384",
       G + "big.max": "1", G + "big.scale_down_idle_seconds": "3", G + "big.cooldown_seconds": "2"}
sim, s = start(sim_config=simcfg, hub=hub, hubd=False)
s.sql("UPDATE model SET cpu_request_m = 1500, cpu_limit_m = 2000, max_instances = 3, idle_seconds = 1"
      " WHERE id = 'eos3b5e'")
s.sql("UPDATE model SET cpu_request_m = 5000, cpu_limit_m = 6000, max_instances = 1, idle_seconds = 1"
      " WHERE id = 'descriptors'")
s.start_hubd()
anon = s.anon()
admin = s.admin_token


def replicas(md):
    r = sim.api("GET", MDS + "/" + md)
    return r.json()["spec"]["replicas"] if r.status == 200 else -1


seen_max = {"md-small": 0, "md-big": 0}
stop = threading.Event()


def sample():
    while not stop.is_set():
        for md in seen_max:
            seen_max[md] = max(seen_max[md], replicas(md))
        time.sleep(0.2)


threading.Thread(target=sample, daemon=True).start()

ids = [submit(s, anon, "eos3b5e", ["CCO", "CCCO"]) for _ in range(10)]
t.ok(all(ids), "10 requests for eos3b5e queued")


def pending_instance():
    r = s.api("GET", "/api/instances?state=active", token=admin)
    for it in (r.json or {}).get("items", []):
        sc = it.get("scheduling") or {}
        if sc.get("autoscaler_verdict") and sc.get("unschedulable"):
            return it
    return None


it = wait_for(pending_instance, 30)
sc = (it or {}).get("scheduling") or {}
t.ok(it, "an active instance carries its scheduling status while Pending")
t.like(sc.get("scheduler_message") or "", r"Insufficient cpu", "  the scheduler's message (%s)" % sc.get("scheduler_message"))
t.ok(sc.get("autoscaler_verdict") in ("provisioning", "at_max"), "  and the autoscaler's verdict (%s: %s)"
     % (sc.get("autoscaler_verdict"), sc.get("autoscaler_message")))
ann = ((sim.api("GET", "/api/v1/namespaces/modelhub/pods/" + it["name"]).json() if it else {}).get("metadata") or {}).get("annotations") or {}
t.ok(ann.get("cluster-autoscaler.kubernetes.io/safe-to-evict") == "false" and ann.get("karpenter.sh/do-not-disrupt") == "true",
     "model pods carry both engines' no-evict annotations")
t.ok(wait_for(lambda: replicas("md-small") == 2, 40), "md-small scaled up to its max, 2")
sts = [wait_done(s, i, 180) for i in ids]
t.is_([x[0] for x in sts].count("COMPLETED"), 10, "all 10 requests complete (%s)" % set(x[:2] for x in sts))
nodes = set(r[0] for r in s.sql("SELECT DISTINCT node FROM model_instance WHERE model_id = 'eos3b5e'"))
# the scheduler takes whichever new node is Ready first: md-big (8 CPU)
# may hold all three pods, so only "none on the static node" is certain
t.ok(nodes and all(n.startswith("md-") for n in nodes), "served on the new nodes (%s)" % nodes)
ups = s.sql("SELECT node_group, count, reason FROM autoscaler_decision WHERE action = 'scale_up' ORDER BY id")
small = sum(int(u[1]) for u in ups if u[0] == "small")
big = sum(int(u[1]) for u in ups if u[0] == "big")
t.is_(small, 2, "least waste: group small grows first, by 2 (its max), for 3 pods of 1.5 CPU (%s)" % ups)
t.is_(big, 1, "  the third pod, past small's max, gets one md-big node")
t.ok(ups and "least waste" in ups[0][2] and "(max 2)" in ups[0][2], "  the reason says so (%s)" % (ups[0][2] if ups else ""))
rid = submit(s, anon, "descriptors", ["CCO"])
st = wait_done(s, rid, 120)
t.is_(st[0], "COMPLETED", "descriptors (5 CPU) completes (%s)" % (st,))
node = s.sql("SELECT node FROM model_instance WHERE model_id = 'descriptors' ORDER BY id DESC LIMIT 1")[0][0]
t.like(node or "", r"^md-big-", "  on an md-big node: the other shape picks the other group")

# ---- the admin view
r = s.api("GET", "/api/autoscaler", token=admin)
t.is_(r.status, 200, "GET /api/autoscaler (admin)")
j = r.json or {}
t.ok(j.get("enabled") is True and [g["name"] for g in j.get("groups", [])] == ["small", "big"],
     "  enabled, groups small and big")
snap = j.get("snapshot") or {}
t.ok({g["name"] for g in snap.get("groups", [])} == {"small", "big"}, "  snapshot has both groups with sizes")
t.ok(any(n["name"] == "node-a" and n["group"] is None for n in snap.get("nodes", [])),
     "  snapshot lists nodes (node-a unmanaged)")
t.ok(any(d["action"] == "scale_up" and "least waste" in d["reason"] for d in j.get("decisions", [])),
     "  decisions carry their reasons")
t.is_(s.api("GET", "/api/autoscaler", token=anon).status, 403, "  403 for a non-admin")

# ---- a model no group can hold
r = s.api("PATCH", "/api/models/load", token=admin, json={"cpu_request_m": 12000, "cpu_limit_m": 12000, "version": 1})
if r.status == 409:
    v = s.sql("SELECT version FROM model WHERE id = 'load'")[0][0]
    r = s.api("PATCH", "/api/models/load", token=admin,
              json={"cpu_request_m": 12000, "cpu_limit_m": 12000, "version": int(v)})
t.is_(r.status, 422, "PATCH a model to 12 CPUs: 422")
t.is_(((r.json or {}).get("error") or {}).get("code"), "fits_no_node_group", "  code fits_no_node_group")
t.like(((r.json or {}).get("error") or {}).get("message", ""), r"12000m", "  the message names the requests")
s.sql("UPDATE model SET cpu_request_m = 12000, cpu_limit_m = 12000 WHERE id = 'load'")
r = s.api("GET", "/api/autoscaler", token=admin)
t.ok("load" in (r.json or {}).get("models_without_group", []), "  listed in models_without_group")
t0 = time.time()
rid = submit(s, anon, "load", ["CCO"])
st = wait_done(s, rid, 60)
t.is_(st[:2], ("FAILED", "NO_CAPACITY"), "its request fails NO_CAPACITY (%s)" % (st,))
t.ok(time.time() - t0 < 30, "  at once, not after the 300 s start timeout (%.1f s)" % (time.time() - t0))
t.like(st[2] or "", r"requests cpu 12000m", "  failure_detail names the model's requests")

# ---- a pod that arrives while a node is cordoned for removal goes elsewhere
cd = wait_for(lambda: s.sql("SELECT node FROM autoscaler_decision WHERE action = 'cordon' ORDER BY id DESC LIMIT 1"), 60)
t.ok(cd, "an idle node is cordoned (%s)" % (cd,))
rid = submit(s, anon, "eos3b5e", ["CCO"])
st = wait_done(s, rid, 120)
t.is_(st[0], "COMPLETED", "a request arriving during the cordon completes (%s)" % (st,))
node = s.sql("SELECT node FROM model_instance WHERE $1::bigint = ANY (request_ids)", rid)
t.ok(cd and node and node[0][0] != cd[0][0], "  not on the cordoned node (%s vs %s)" % (node, cd))

# ---- scale down to min
t.ok(wait_for(lambda: replicas("md-small") == 0 and replicas("md-big") == 0, 120),
     "idle nodes removed: both groups back to min 0")
busy = s.sql("SELECT d.node, i.id FROM autoscaler_decision d JOIN model_instance i ON i.node = d.node"
             " WHERE d.action = 'remove' AND i.started_at < d.at"
             " AND (i.terminated_at IS NULL OR i.terminated_at > d.at)")
t.is_(busy, [], "no node was removed while an instance ran on it")
acts = [a for (a,) in s.sql("SELECT action FROM autoscaler_decision ORDER BY id")]
t.ok("cordon" in acts and "remove" in acts and acts.index("cordon") < len(acts) - 1 - acts[::-1].index("remove"),
     "  cordon first, remove after (%s)" % sorted(set(acts)))
rm = s.sql("SELECT reason FROM autoscaler_decision WHERE action = 'remove' ORDER BY id LIMIT 1")
t.like(rm[0][0] if rm else "", r"delete-machine", "  removal names the delete-machine mark")
audit = sim.api("GET", "/kubesim/audit").json()["items"]
t.ok(any(a["resource"] == "machines" and a["verb"] == "patch" for a in audit), "  Machines were marked (audit log)")
t.ok(any(a["resource"] == "nodes" and a["verb"] == "patch" for a in audit), "  nodes were cordoned (audit log)")
stop.set()
t.ok(seen_max["md-small"] <= 2 and seen_max["md-big"] <= 1, "max never exceeded (seen %s)" % seen_max)
t.done()
