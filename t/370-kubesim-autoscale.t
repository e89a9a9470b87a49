#!/usr/bin/python3
# 370-kubesim-autoscale.t — kubesim's node autoscaling parts: Cluster API provisioning delay, cordon, delete-machine, audit log, injected faults, the external autoscaler stub.
"""The simulator pieces the autoscaler tests stand on. Cluster API: scaling a
MachineDeployment creates Machines that stay Provisioning (no nodeRef, no Node)
for the group's provision_seconds, then register NotReady, then Ready; a
cordoned node takes no new pod; scaling down removes the Machine marked
cluster.x-k8s.io/delete-machine, not the one Cluster API would pick by itself.
Every write request is in the audit log (GET /kubesim/audit and
<state-dir>/audit.jsonl) with its user; injected faults answer 429 with
Retry-After, 5xx, or cut the connection, for exactly count requests. The
external autoscaler stub behaves like cluster-autoscaler seen from outside:
TriggeredScaleUp on the least-waste group and a node after the provisioning
delay, NotTriggerScaleUp naming the reasons when no group fits or a group is at
max, its status ConfigMap readable by kubectl, removal of empty nodes after the
idle time, and no removal of an under-used node whose pod says safe-to-evict
"false"; in Karpenter mode a Nominated event instead; none of its own writes
appear in the audit log."""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir") or os.path.dirname(os.path.abspath(__file__)) + "/..", "t", "kube"))
from simtest import KubeSim, base_config, need_root_or_skip, pod_manifest  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
NS = "/api/v1/namespaces/modelhub/pods"
MDS = "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments"
MACH = "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machines"


def node_of(sim, name):
    return ((sim.pod(name) or {}).get("spec") or {}).get("nodeName")


def cond(pod, typ):
    for c in (pod or {}).get("status", {}).get("conditions") or []:
        if c["type"] == typ:
            return c
    return {}


def events(sim, name, reason):
    return [e for e in sim.events(name) if e["reason"] == reason]


def ready(n):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])


def group_nodes(sim, group):
    r = sim.api("GET", "/api/v1/nodes?labelSelector=modelhub.io/node-group%%3D%s" % group)
    return r.json()["items"]


# ============================================================ Cluster API
cfg = base_config(
    nodes=[{"name": "node-a", "cpu": "1", "memory": "1Gi", "group": "static"}],
    machinedeployments=[{"name": "md-w", "namespace": "default", "replicas": 0, "provision_seconds": 1.5,
                         "node": {"cpu": "2", "memory": "4Gi", "group": "workers"}}],
    users=[{"token": "ro-token", "name": "system:serviceaccount:modelhub:ro", "allow": ["get pods", "list pods"]}])
sim = KubeSim(cfg).start()

r = sim.api("PATCH", MDS + "/md-w/scale", {"spec": {"replicas": 2}}, ctype="application/merge-patch+json")
t.is_(r.status, 200, "scale md-w to 2")
time.sleep(0.5)
ms = sim.api("GET", MACH).json()["items"]
t.is_(len(ms), 2, "two Machines exist at once")
t.ok(all(m["status"]["phase"] == "Provisioning" and "nodeRef" not in m["status"] for m in ms),
     "both Provisioning, no nodeRef, during provision_seconds")
t.is_(len(group_nodes(sim, "workers")), 0, "no Node yet")
md = sim.api("GET", MDS + "/md-w").json()
t.is_((md["status"]["replicas"], md["status"]["readyReplicas"]), (2, 0), "MachineDeployment status: 2 replicas, 0 ready")
t.ok(sim.wait_for(lambda: len(group_nodes(sim, "workers")) == 2, 5), "the Nodes register after the delay")
t.ok(sim.wait_for(lambda: all(ready(n) for n in group_nodes(sim, "workers")) and len(group_nodes(sim, "workers")) == 2, 5),
     "and turn Ready")
t.ok(sim.wait_for(lambda: sim.api("GET", MDS + "/md-w").json()["status"].get("readyReplicas") == 2, 3),
     "readyReplicas 2")

# cordon: the scheduler honours spec.unschedulable
nodes = sorted(n["metadata"]["name"] for n in group_nodes(sim, "workers"))
r = sim.api("PATCH", "/api/v1/nodes/" + nodes[0], {"spec": {"unschedulable": True}}, ctype="application/merge-patch+json")
t.is_(r.status, 200, "cordon %s" % nodes[0])
for i in range(3):
    sim.api("POST", NS, pod_manifest("c%d" % i, cpu="500m", mem="256Mi", node_selector={"modelhub.io/node-group": "workers"}))
t.ok(sim.wait_for(lambda: all(node_of(sim, "c%d" % i) for i in range(3)), 10), "three pods for the group scheduled")
t.ok(all(node_of(sim, "c%d" % i) == nodes[1] for i in range(3)), "all on the uncordoned node")
sim.api("POST", NS, pod_manifest("c3", cpu="800m", mem="256Mi", node_selector={"modelhub.io/node-group": "workers"}))
t.ok(sim.wait_for(lambda: "1 node(s) were unschedulable" in cond(sim.pod("c3"), "PodScheduled").get("message", ""), 5),
     "a pod that fits only the cordoned node: Unschedulable, '1 node(s) were unschedulable'")
for i in range(4):
    sim.api("DELETE", NS + "/c%d?gracePeriodSeconds=0" % i)
sim.api("PATCH", "/api/v1/nodes/" + nodes[0], {"spec": {"unschedulable": False}}, ctype="application/merge-patch+json")

# delete-machine chooses the machine removed
r = sim.api("PATCH", MDS + "/md-w/scale", {"spec": {"replicas": 3}}, ctype="application/merge-patch+json")
t.ok(sim.wait_for(lambda: len([n for n in group_nodes(sim, "workers") if ready(n)]) == 3, 8), "scaled to 3, all Ready")
ms = sim.api("GET", MACH).json()["items"]
by_default = sorted(ms, key=lambda m: (-time.mktime(time.strptime(m["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")),
                                       m["metadata"]["name"]))
victim = by_default[-1]["metadata"]["name"]  # the one Cluster API would keep longest
r = sim.api("PATCH", MACH + "/" + victim, {"metadata": {"annotations": {"cluster.x-k8s.io/delete-machine": "yes"}}},
            ctype="application/merge-patch+json")
t.is_(r.status, 200, "annotate Machine %s cluster.x-k8s.io/delete-machine" % victim)
sim.api("PATCH", MDS + "/md-w/scale", {"spec": {"replicas": 2}}, ctype="application/merge-patch+json")
t.ok(sim.wait_for(lambda: len(sim.api("GET", MACH).json()["items"]) == 2, 5), "scaled down to 2 Machines")
left = {m["metadata"]["name"] for m in sim.api("GET", MACH).json()["items"]}
t.ok(victim not in left, "the annotated Machine is the one removed")
t.ok(not any(n["metadata"]["name"] == victim for n in group_nodes(sim, "workers")), "and its Node is gone")

# audit log
r = sim.api("PATCH", "/api/v1/nodes/node-a", {"spec": {"unschedulable": True}}, token="ro-token",
            ctype="application/merge-patch+json")
t.is_(r.status, 403, "a token without patch nodes is refused")
sim.api("GET", "/api/v1/nodes")
audit = sim.api("GET", "/kubesim/audit").json()["items"]
t.ok(any(a["verb"] == "patch" and a["resource"] == "machinedeployments/scale" and a["name"] == "md-w"
         and a["user"] == "admin" and a["allowed"] for a in audit), "audit: patch machinedeployments/scale by admin")
t.ok(any(a["verb"] == "patch" and a["resource"] == "nodes" and a["user"] == "system:serviceaccount:modelhub:ro"
         and not a["allowed"] for a in audit), "audit: the refused node patch, allowed=false, with its user")
t.ok(not any(a["verb"] in ("get", "list", "watch") for a in audit), "audit: reads are not listed")
with open(os.path.join(sim.state_dir, "audit.jsonl")) as f:
    lines = [json.loads(x) for x in f]
t.is_(len(lines), len(audit), "audit.jsonl holds the same records")

# injected faults
r = sim.api("POST", "/kubesim/faults", [{"method": "GET", "path": "/machinedeployments/md-w/scale$", "code": 429,
                                         "retry_after": 2, "count": 2}])
t.is_(r.status, 200, "inject two 429s on GET scale")
r1, r2, r3 = (sim.api("GET", MDS + "/md-w/scale") for _ in range(3))
t.is_((r1.status, r2.status, r3.status), (429, 429, 200), "429, 429, then 200")
t.is_(r1.headers.get("Retry-After"), "2", "Retry-After: 2")
t.is_(r1.json().get("reason"), "TooManyRequests", "a Status object, reason TooManyRequests")
sim.api("POST", "/kubesim/faults", [{"path": "/api/v1/nodes$", "reset": True, "count": 1},
                                    {"path": "/api/v1/nodes$", "code": 503, "count": 1}])
try:
    sim.api("GET", "/api/v1/nodes")
    t.ok(False, "a reset fault cuts the connection")
except (ConnectionError, OSError, Exception) as e:  # http.client raises RemoteDisconnected / BadStatusLine
    t.ok(True, "a reset fault cuts the connection (%s)" % type(e).__name__)
t.is_(sim.api("GET", "/api/v1/nodes").status, 503, "then a 503")
t.is_(sim.api("GET", "/api/v1/nodes").status, 200, "then normal again")
t.is_(sim.api("POST", "/kubesim/faults", {"path": 1}).status, 400, "a malformed fault list: 400")
t.is_(sim.api("GET", "/kubesim/audit", token="ro-token").status, 403, "audit needs the admin token")
sim.stop()

# ============================================================ external autoscaler (cluster-autoscaler)
cfg = base_config(
    namespaces=["modelhub", "kube-system"],
    nodes=[{"name": "node-a", "cpu": "200m", "memory": "1Gi", "group": "static"}],
    external_autoscaler={"provision_seconds": 1.5, "scale_down_idle": 3, "event_every": 1,
                         "groups": [{"name": "ng-small", "min": 0, "max": 2, "node": {"cpu": "2", "memory": "4Gi"}},
                                    {"name": "ng-big", "min": 0, "max": 1, "node": {"cpu": "8", "memory": "16Gi"}}]})
sim = KubeSim(cfg).start()
sim.api("POST", NS, pod_manifest("p2", cpu="500m", mem="256Mi"))
ev = sim.wait_for(lambda: events(sim, "p2", "TriggeredScaleUp"), 5)
t.like((ev or [{}])[0].get("message", ""), r"\{ng-small 0->1 \(max: 2\)\}", "a small pod: the least-waste group ng-small")
sim.api("POST", NS, pod_manifest("p1", cpu="3", mem="512Mi"))
ev = sim.wait_for(lambda: events(sim, "p1", "TriggeredScaleUp"), 5)
t.ok(ev, "a pod needing 3 CPUs: TriggeredScaleUp")
t.is_((ev or [{}])[0].get("message"), "pod triggered scale-up: [{ng-big 0->1 (max: 1)}]", "  names the fitting group, 0->1")
t.is_((ev or [{}])[0].get("source", {}).get("component"), "cluster-autoscaler", "  from cluster-autoscaler")
time.sleep(0.5)
t.ok(not node_of(sim, "p1") and not group_nodes(sim, "ng-big"), "no node during the provisioning delay")
t.like(node_of(sim, "p1") or sim.wait_for(lambda: node_of(sim, "p1"), 10) or "", r"^ng-big-", "then scheduled on the new ng-big node")

sim.api("POST", NS, pod_manifest("p3", cpu="7", mem="512Mi"))
ev = sim.wait_for(lambda: events(sim, "p3", "NotTriggerScaleUp"), 5)
t.is_((ev or [{}])[0].get("message"), "pod didn't trigger scale-up: 1 Insufficient cpu, 1 max node group size reached",
      "a pod fitting only a group at max: NotTriggerScaleUp with both reasons")
sim.api("POST", NS, pod_manifest("p4", cpu="20", mem="512Mi"))
ev = sim.wait_for(lambda: events(sim, "p4", "NotTriggerScaleUp"), 5)
t.is_((ev or [{}])[0].get("message"), "pod didn't trigger scale-up: 2 Insufficient cpu", "a pod no group fits: 2 Insufficient cpu")
t.ok(sim.wait_for(lambda: node_of(sim, "p2"), 10), "p2 scheduled")
rc, out, err = sim.kubectl("get", "configmap", "-n", "kube-system", "cluster-autoscaler-status", "-o", "json")
t.is_(rc, 0, "kubectl reads the status ConfigMap")
st = json.loads(out or "{}").get("data", {}).get("status", "")
t.like(st, r"(?m)^- name: ng-big\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: 1",
       "  ng-big registered 1")
t.like(st, r"maxSize: 2", "  groups carry min and max")

# scale down: a pod that must not be evicted keeps an under-used node
sim.api("DELETE", NS + "/p3?gracePeriodSeconds=0")
sim.api("DELETE", NS + "/p4?gracePeriodSeconds=0")
m = pod_manifest("keep", cpu="100m", mem="128Mi", node_selector={"modelhub.io/node-group": "ng-small"})
m["metadata"]["annotations"] = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
sim.api("DELETE", NS + "/p2?gracePeriodSeconds=0")
sim.api("POST", NS, m)
t.ok(sim.wait_for(lambda: node_of(sim, "keep"), 10), "a no-evict pod on the ng-small node")
sim.api("DELETE", NS + "/p1?gracePeriodSeconds=0")
t.ok(sim.wait_for(lambda: not group_nodes(sim, "ng-big"), 15), "the empty ng-big node is removed after the idle time")
t.is_(len(group_nodes(sim, "ng-small")), 1, "the ng-small node with the safe-to-evict=false pod stays")
t.ok(sim.pod("keep") and not sim.pod("keep")["metadata"].get("deletionTimestamp"), "  and its pod is untouched")
sim.api("DELETE", NS + "/keep?gracePeriodSeconds=0")
t.ok(sim.wait_for(lambda: not group_nodes(sim, "ng-small"), 15), "once empty it goes too")
audit = sim.api("GET", "/kubesim/audit").json()["items"]
t.ok(not any(a["resource"].startswith("nodes") or a["group"] == "cluster.x-k8s.io" for a in audit),
     "the stub's own node writes are not in the audit log (only API clients')")
t.ok(any(a["resource"] == "pods" and a["verb"] == "create" for a in audit), "  which does list the test's pod writes")
sim.stop()

# ============================================================ external autoscaler (karpenter)
cfg = base_config(
    nodes=[{"name": "node-a", "cpu": "1", "memory": "1Gi", "group": "static"}],
    external_autoscaler={"engine": "karpenter", "provision_seconds": 0.5, "event_every": 1,
                         "groups": [{"name": "np-default", "max": 3, "node": {"cpu": "4", "memory": "8Gi"}}]})
sim = KubeSim(cfg).start()
sim.api("POST", NS, pod_manifest("k1", cpu="2", mem="512Mi"))
ev = sim.wait_for(lambda: events(sim, "k1", "Nominated"), 5)
t.like((ev or [{}])[0].get("message", ""), r"^Pod should schedule on: nodeclaim/np-default-nodeclaim-", "karpenter: Nominated event")
t.like(node_of(sim, "k1") or sim.wait_for(lambda: node_of(sim, "k1"), 10) or "", r"^np-default-", "  then scheduled there")
t.is_(sim.api("GET", "/api/v1/nodes/" + node_of(sim, "k1")).json()["metadata"]["labels"].get("karpenter.sh/nodepool"),
      "np-default", "  the node carries karpenter.sh/nodepool")
sim.api("POST", NS, pod_manifest("k2", cpu="6", mem="512Mi"))
ev = sim.wait_for(lambda: [e for e in events(sim, "k2", "FailedScheduling") if e["source"]["component"] == "karpenter"], 5)
t.like((ev or [{}])[0].get("message", ""), r'^Failed to schedule pod, incompatible with nodepools "np-default".*"cpu":"6000m"',
       "karpenter: FailedScheduling naming the requests when nothing fits")
sim.stop()
t.done()
