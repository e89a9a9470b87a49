#!/usr/bin/python3
# 164-recommend-node-cap.t — the recommendations' node cap comes from the cluster: the largest node-group shape that admits model pods (a tainted group the pods do not tolerate does not count), else the largest allocatable of the nodes the scraper saw; recommend.max_* in the configuration wins; a capped value says so.
"""Kubernetes backend against kubesim. Instances of model `capm` used far
more than any node can give (100 CPU, 400 GiB at the peak; they ran without
a CPU limit, so the CPU peak is a measurement, not a ceiling), so every
value is capped. Stack 1 (no modelhubd, the API computes on demand): node groups
`big` (8 CPU / 16 GiB) and `gpu` (64 CPU / 256 GiB, tainted
nvidia.com/gpu=true:NoSchedule, not tolerated) -> caps 8000 m / 16384 MiB;
with kube.tolerations admitting the taint -> 64000 m / 262144 MiB. Stack 2
(modelhubd: its scraper fills the node slots): no groups, nodes of 4 CPU /
8 GiB and 2 CPU / 32 GiB -> 4000 m / 32768 MiB, each dimension on its own,
not this machine's size; recommend.max_cpu_m=3000 wins over the nodes."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import base_config, start  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
G = "autoscale.group."
GROUPS = {"autoscale.groups": "big, gpu",
          G + "big.mode": "external", G + "big.node_label": "pool=big",
          G + "big.cpu_m": "8000", G + "big.memory_mib": "16384",
          G + "gpu.mode": "external", G + "gpu.node_label": "pool=gpu",
          G + "gpu.cpu_m": "64000", G + "gpu.memory_mib": "262144",
          G + "gpu.taints": "nvidia.com/gpu=true:NoSchedule",
          # the autoscaler child is not started here (no modelhubd)
          "autoscale.period_seconds": "60"}


def add_model(s):
    s.sql("INSERT INTO model (id, enabled, execution_mode, image, image_tag, cpu_request_m,"
          " cpu_limit_m, memory_request_mib, memory_limit_mib, max_instances, idle_seconds)"
          " VALUES ('capm', true, 'SYNC', 'x', 'y', 1000, 2000, 1024, 2048, 1, 0)"
          " ON CONFLICT (id) DO NOTHING")
    for i in range(3):
        s.sql("INSERT INTO instance_metrics (instance_id, model_id, sample_count, cpu_min_m,"
              " cpu_max_m, cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib, cpu_busy_m,"
              " mem_busy_mib, busy_samples, cpu_request_m, cpu_limit_m, memory_request_mib,"
              " memory_limit_mib, input_count, termination_reason) VALUES ($1, 'capm', 50,"
              " 1000, 100000, 60000, 1000, 409600, 300000, 90000, 380000, 40, 1000, NULL, 1024,"
              " 2048, 100, 'COMPLETED')", 990001 + i)


def caps(s, label):
    r = s.api("GET", "/api/recommendations?model_id=capm", token=s.admin_token)
    t.status(r, 200, "%s: recommendation computed" % label)
    return (r.json or {}).get("resources", {})


def check(res, label, cpu, mem):
    for name, cap in (("cpu_request_m", cpu), ("cpu_limit_m", cpu),
                      ("memory_request_mib", mem), ("memory_limit_mib", mem)):
        it = res.get(name, {})
        t.is_(it.get("recommended"), cap, "%s: %s capped at %d" % (label, name, cap))
        t.ok(it.get("capped") is True, "%s: %s says it is capped" % (label, name))
        t.ok("node" in (it.get("reason") or ""), "%s: %s reason names the node cap (%s)" % (
            label, name, it.get("reason")))


# ---- stack 1: node groups ----
sim, s = start(sim_config=base_config(), hub=GROUPS, hubd=False)
add_model(s)
check(caps(s, "groups"), "groups (gpu not tolerated)", 8000, 16384)
s.stop()
sim.stop()
tol = dict(GROUPS)
tol["kube.tolerations"] = json.dumps([{"key": "nvidia.com/gpu", "operator": "Exists",
                                       "effect": "NoSchedule"}])
sim, s = start(sim_config=base_config(), hub=tol, hubd=False)
add_model(s)
check(caps(s, "groups"), "groups (gpu tolerated)", 64000, 262144)
s.stop()
sim.stop()

# ---- stack 2: no groups, the nodes the scraper saw ----
nodes = [{"name": "node-a", "cpu": "4", "memory": "8Gi", "pods": 20, "group": "static"},
         {"name": "node-b", "cpu": "2", "memory": "32Gi", "pods": 20, "group": "static"}]
# No model pod runs here, and the scraper by default reads only nodes that run
# model pods (t/385): scrape them all so the segment holds both nodes.
sim, s = start(sim_config=base_config(nodes=nodes),
               hub={"metrics.interval_ms": "300", "kube.scrape_nodes": "all"})
add_model(s)


def nodes_seen():
    r = s.api("GET", "/api/nodes", token=s.admin_token)
    items = (r.json or {}).get("items", []) if r.status == 200 else []
    return len(items) >= 2


deadline = time.time() + 30
while time.time() < deadline and not nodes_seen():
    time.sleep(0.3)
t.ok(nodes_seen(), "the scraper registered both nodes")
check(caps(s, "nodes"), "nodes seen", 4000, 32768)
s.stop()
sim.stop()
sim, s = start(sim_config=base_config(nodes=nodes),
               hub={"metrics.interval_ms": "300", "kube.scrape_nodes": "all",
                    "recommend.max_cpu_m": "3000"})
add_model(s)
deadline = time.time() + 30
while time.time() < deadline and not nodes_seen():
    time.sleep(0.3)
res = caps(s, "configured")
t.is_(res.get("cpu_limit_m", {}).get("recommended"), 3000, "recommend.max_cpu_m wins over the nodes")
t.is_(res.get("memory_limit_mib", {}).get("recommended"), 32768,
      "memory still capped by the nodes seen")
t.done()
