#!/usr/bin/python3
# 372-autoscale-faults.t — clusterapi autoscaling under API faults and a killed autoscaler: 429/503 are retried with back-off, a scale whose answer was lost is not applied twice, the autoscaler SIGKILLed mid-way and restarted never double-scales.
"""kubesim answers the first node list 429 (Retry-After 1) twice then 503,
carries out the first PATCH of md-small/scale but cuts the connection before
the answer (the autoscaler cannot know it worked and retries: the retried
JSON patch tests the old size and is refused, so the group grows once), and
the autoscaler child is SIGKILLed after its first scale-up (the supervisor
restarts it; the new one reads the size and counts the provisioning
machines). Two pods of 1.5 CPU need exactly two 2-CPU nodes: the group must
end at 2, never more, and both requests complete."""

import os
import signal
import subprocess
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
MD = "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-small"
simcfg = base_config(
    nodes=[{"name": "node-a", "cpu": "1", "memory": "2Gi", "group": "static"}],
    machinedeployments=[{"name": "md-small", "namespace": "default", "replicas": 0, "provision_seconds": 3.0,
                         "node": {"cpu": "2", "memory": "4Gi"}}])
G = "autoscale.group."
hub = {"hub.runners": "3", "autoscale.groups": "small", "autoscale.period_seconds": "1",
       G + "small.machinedeployment": "default/md-small", G + "small.cpu_m": "2000",
       G + "small.memory_mib": "4096", G + "small.max": "3", G + "small.scale_down_idle_seconds": "600"}
sim, s = start(sim_config=simcfg, hub=hub, hubd=False)
s.sql("UPDATE model SET cpu_request_m = 1500, cpu_limit_m = 2000, max_instances = 2, idle_seconds = 60"
      " WHERE id = 'eos3b5e'")
r = sim.api("POST", "/kubesim/faults", [
    {"method": "GET", "path": "^/api/v1/nodes$", "code": 429, "retry_after": 1, "count": 2},
    {"method": "GET", "path": "^/api/v1/nodes$", "code": 503, "count": 1},
    {"method": "PATCH", "path": "machinedeployments/md-small/scale$", "after": True, "count": 1}])
t.is_(r.status, 200, "faults armed: 429, 429, 503 on the node list; the first scale's answer lost")
s.start_hubd()
anon = s.anon()

seen = {"max": 0}
stop = threading.Event()


def sample():
    while not stop.is_set():
        r = sim.api("GET", MD)
        if r.status == 200:
            seen["max"] = max(seen["max"], r.json()["spec"]["replicas"])
        time.sleep(0.1)


threading.Thread(target=sample, daemon=True).start()
ids = [submit(s, anon, "eos3b5e", ["CCO"]) for _ in range(2)]
t.ok(wait_for(lambda: s.sql("SELECT count(*) FROM autoscaler_decision WHERE action IN ('scale_up', 'skipped')")[0][0] != "0", 40),
     "a scale decision was taken")


def autoscaler_pids():
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "modelhubd: autoscaler" in line
            or "modelhubd:autoscaler" in line.replace(" ", "")]


pids = autoscaler_pids()
t.ok(pids, "the autoscaler child runs (%s)" % pids)
for p in pids:
    os.kill(p, signal.SIGKILL)
t.ok(wait_for(lambda: [p for p in autoscaler_pids() if p not in pids], 30), "  killed, and restarted by the supervisor")
sts = [wait_done(s, i, 120) for i in ids]
t.is_([x[0] for x in sts], ["COMPLETED", "COMPLETED"], "both requests complete (%s)" % (sts,))
time.sleep(3)
stop.set()
final = sim.api("GET", MD).json()["spec"]["replicas"]
t.is_(final, 2, "md-small ends at 2 nodes for 2 pods")
t.ok(seen["max"] <= 2, "never more than 2 at any time (max seen %d)" % seen["max"])
log = open(s.logs["hubd"]).read()
t.like(log, r"transient API error, retrying", "transient errors were retried (log)")
sk = s.sql("SELECT reason FROM autoscaler_decision WHERE action = 'skipped' AND node_group = 'small' AND node IS NULL")
t.ok(any("size changed" in r[0] for r in sk), "the retried scale was refused (size changed), recorded as skipped")
t.done()
