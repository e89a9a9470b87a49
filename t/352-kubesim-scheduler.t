#!/usr/bin/python3
# 352-kubesim-scheduler.t — kubesim's scheduler and kubelet: Unschedulable, scale-up, taints, image pull errors, OOM, crash loops.
"""A small cluster (node-a: 1 CPU / 1 GiB, node-t: tainted, MachineDeployment
md-big of 4 CPU / 8 GiB nodes at 0 replicas) and real demo model processes:
pods that fit nowhere stay Pending with PodScheduled=False/Unschedulable and a
FailedScheduling event until md-big is scaled up; requests are accounted
(memory frees up when a pod goes); nodeSelector and taints/tolerations are
honoured; an unknown image goes ErrImagePull -> ImagePullBackOff; memory over
the limit is OOMKilled (exit 137, Never -> Failed, Always -> restart with
lastState); a crashing process goes CrashLoopBackOff with restarts and
previous logs; readiness waits for /healthz; deleting a pod kills its process."""

import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir") or os.path.dirname(os.path.abspath(__file__)) + "/..", "t", "kube"))
from simtest import KubeSim, base_config, cs0, need_root_or_skip, pod_manifest  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
cfg = base_config(
    nodes=[{"name": "node-a", "cpu": "1", "memory": "1Gi", "group": "static"},
           {"name": "node-t", "cpu": "1", "memory": "1Gi", "group": "gpu",
            "taints": [{"key": "modelhub.io/gpu", "value": "true", "effect": "NoSchedule"}]}],
    machinedeployments=[{"name": "md-big", "namespace": "default", "replicas": 0,
                         "node": {"cpu": "4", "memory": "8Gi", "group": "models"}}])
sim = KubeSim(cfg).start()
NS = "/api/v1/namespaces/modelhub/pods"


def create(m):
    r = sim.api("POST", NS, m)
    if not t.ok(r.status == 201, "create %s" % m["metadata"].get("name")):
        t.diag(r.text)
    return r.json()


def cond(pod, typ):
    for c in (pod or {}).get("status", {}).get("conditions") or []:
        if c["type"] == typ:
            return c
    return {}


def reasons(name):
    return [e["reason"] for e in sim.events(name)]


def state(name):
    return cs0(sim.pod(name)).get("state") or {}


# --- unschedulable, then scale-up ------------------------------------------------
create(pod_manifest("big", cpu="2", mem="256Mi"))
ps = sim.wait_for(lambda: cond(sim.pod("big"), "PodScheduled").get("reason") == "Unschedulable" and sim.pod("big"), 5)
t.ok(ps, "pod needing 2 CPUs: PodScheduled=False reason Unschedulable")
c = cond(ps, "PodScheduled")
t.is_(c.get("status"), "False", "PodScheduled status False")
t.like(c.get("message"), r"^0/2 nodes are available: 1 Insufficient cpu, 1 node\(s\) had untolerated taint \{modelhub.io/gpu: true\}",
       "message names the reasons per node")
t.is_(ps["status"]["phase"], "Pending", "phase Pending")
ev = [e for e in sim.events("big") if e["reason"] == "FailedScheduling"]
t.ok(ev and ev[0]["type"] == "Warning" and ev[0]["source"]["component"] == "default-scheduler",
     "FailedScheduling Warning event from default-scheduler")

create(pod_manifest("sel", node_selector={"modelhub.io/node-group": "models"}))
t.ok(sim.wait_for(lambda: "didn't match Pod's node affinity/selector" in cond(sim.pod("sel"), "PodScheduled").get("message", ""), 5),
     "nodeSelector for a group with no nodes: Unschedulable (affinity/selector)")

r = sim.api("PATCH", "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-big/scale",
            {"spec": {"replicas": 1}}, ctype="application/merge-patch+json")
t.is_(r.status, 200, "scale md-big to 1 (merge patch on /scale)")
time.sleep(0.4)
t.ok(not sim.pod("big")["spec"].get("nodeName"), "not scheduled while the new node is NotReady (not-ready taint)")
big = sim.wait_for(lambda: (sim.pod("big") or {}).get("spec", {}).get("nodeName") and sim.pod("big"), 10)
t.like((big or {}).get("spec", {}).get("nodeName"), r"^md-big-", "scheduled on the new md-big node once Ready")
t.ok(sim.wait_for(lambda: (sim.pod("sel") or {}).get("spec", {}).get("nodeName", "").startswith("md-big-"), 5),
     "the nodeSelector pod lands there too")
t.ok(sim.wait_for(lambda: "Scheduled" in reasons("big"), 3), "Scheduled event after FailedScheduling")

# --- taints and tolerations ------------------------------------------------------
create(pod_manifest("tol", cpu="100m", node_selector={"modelhub.io/node-group": "gpu"},
                    tolerations=[{"key": "modelhub.io/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]))
t.ok(sim.wait_for(lambda: (sim.pod("tol") or {}).get("spec", {}).get("nodeName") == "node-t", 5),
     "a pod tolerating the taint is placed on the tainted node")

# --- memory accounting -----------------------------------------------------------
create(pod_manifest("m1", cpu="100m", mem="700Mi", mem_limit=None, node_selector={"modelhub.io/node-group": "static"}))
create(pod_manifest("m2", cpu="100m", mem="700Mi", mem_limit=None, node_selector={"modelhub.io/node-group": "static"}))
t.ok(sim.wait_for(lambda: (sim.pod("m1") or {}).get("spec", {}).get("nodeName") == "node-a", 5), "m1 fits node-a")
t.ok(sim.wait_for(lambda: "Insufficient memory" in cond(sim.pod("m2"), "PodScheduled").get("message", ""), 5),
     "m2 does not fit beside it: Insufficient memory")
sim.api("DELETE", NS + "/m1?gracePeriodSeconds=0")
t.ok(sim.wait_for(lambda: (sim.pod("m2") or {}).get("spec", {}).get("nodeName") == "node-a", 5),
     "m2 is scheduled once m1 is gone")

# --- image pull failure ----------------------------------------------------------
create(pod_manifest("nopull", image="registry.example/modelhub/nosuchmodel:2.0", cpu="10m"))
t.ok(sim.wait_for(lambda: state("nopull").get("waiting", {}).get("reason") == "ImagePullBackOff", 8),
     "unknown image: waiting ImagePullBackOff")
rs = reasons("nopull")
t.ok("Pulling" in rs and "Failed" in rs and "BackOff" in rs, "events Pulling, Failed, BackOff")
msgs = " | ".join(e["message"] for e in sim.events("nopull"))
t.like(msgs, r"Error: ErrImagePull", "Failed event 'Error: ErrImagePull'")
t.like(msgs, r'Back-off pulling image "registry.example/modelhub/nosuchmodel:2.0"', "BackOff pulling message")
t.is_(sim.pod("nopull")["status"]["phase"], "Pending", "phase stays Pending")
r = sim.api("GET", NS + "/nopull/log")
t.ok(r.status == 400 and "waiting to start" in r.text, "logs of a never-started container: 400 waiting to start")

# --- OOM ---------------------------------------------------------------------------
create(pod_manifest("oom", model="load", mem="64Mi", mem_limit="150Mi", env={"MODEL_BASE_MIB": "300"}, probe=False))
create(pod_manifest("oom2", model="load", mem="64Mi", mem_limit="150Mi", env={"MODEL_BASE_MIB": "300"},
                    probe=False, restart="Always"))
oom = sim.wait_for(lambda: (sim.pod("oom") or {}).get("status", {}).get("phase") == "Failed" and sim.pod("oom"), 15)
term = cs0(oom).get("state", {}).get("terminated", {})
t.is_((term.get("reason"), term.get("exitCode")), ("OOMKilled", 137), "memory over the limit: terminated OOMKilled, exit 137")
t.is_((oom or {}).get("status", {}).get("phase"), "Failed", "restartPolicy Never: phase Failed")
t.ok("OOMKilling" in reasons("oom"), "OOMKilling event")
oom2 = sim.wait_for(lambda: cs0(sim.pod("oom2")).get("restartCount", 0) >= 1 and sim.pod("oom2"), 15)
last = cs0(oom2).get("lastState", {}).get("terminated", {})
t.is_(last.get("reason"), "OOMKilled", "restartPolicy Always: lastState.terminated.reason OOMKilled")
t.is_((oom2 or {}).get("status", {}).get("phase"), "Running", "and the pod stays Running (restarting)")

# --- crash loop ------------------------------------------------------------------
rv = sim.api("GET", NS).json()["metadata"]["resourceVersion"]
create(pod_manifest("crash", args=["--crash-after-calls", "-1"], restart="Always", probe=False))
t.ok(sim.wait_for(lambda: cs0(sim.pod("crash")).get("restartCount", 0) >= 2, 15), "a crashing container is restarted")
c = sim.conn(10)
c.request("GET", NS + "?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%%3Dcrash&resourceVersion=%s" % rv,
          headers={"Authorization": "Bearer " + sim.token})
seq = []
for line in c.getresponse().read().decode().splitlines():
    o = json.loads(line)["object"]
    st = cs0(o)
    key = list((st.get("state") or {"none": 0}).keys())[0]
    step = (key, (st.get("state") or {}).get("waiting", {}).get("reason", ""), st.get("restartCount", 0))
    if not seq or seq[-1][:3] != step:
        seq.append(step + (o["status"]["phase"],))
c.close()
kinds = [(k, r, n) for k, r, n, ph in seq]
t.ok(("running", "", 0) in kinds and ("terminated", "", 0) in kinds and ("running", "", 1) in kinds
     and kinds.index(("running", "", 1)) < kinds.index(("waiting", "CrashLoopBackOff", 2)),
     "first restart at once (running, terminated, running with restartCount 1), then CrashLoopBackOff")
t.ok(all(ph != "Failed" for _, _, _, ph in seq), "restartPolicy Always: phase never Failed")
if not t.ok(("waiting", "CrashLoopBackOff", 2) in kinds, "CrashLoopBackOff after the second exit"):
    t.diag(seq)
cs = cs0(sim.pod("crash"))
t.is_(cs.get("lastState", {}).get("terminated", {}).get("reason"), "Error", "lastState terminated reason Error")
t.is_(cs.get("lastState", {}).get("terminated", {}).get("exitCode"), 2, "with the process exit code (2)")
t.ok(sim.wait_for(lambda: state("crash").get("waiting", {}).get("reason") == "CrashLoopBackOff", 5),
     "waiting CrashLoopBackOff between restarts")
t.ok("BackOff" in reasons("crash"), "BackOff event")
r = sim.api("GET", NS + "/crash/log?previous=true")
t.ok(r.status == 200 and "crash-after-calls must be >= 0" in r.text, "previous=true logs of the crashed run")

create(pod_manifest("fail", args=["--crash-after-calls", "-1"], restart="Never", probe=False))
f = sim.wait_for(lambda: (sim.pod("fail") or {}).get("status", {}).get("phase") == "Failed" and sim.pod("fail"), 10)
t.is_(cs0(f).get("state", {}).get("terminated", {}).get("reason"), "Error", "restartPolicy Never: Failed, reason Error")
r = sim.api("GET", NS + "/fail/log")
t.ok(r.status == 200 and "usage:" in r.text, "logs of the terminated container")

create(pod_manifest("done", args=["--help"], restart="Never", probe=False, cpu="10m"))
d = sim.wait_for(lambda: (sim.pod("done") or {}).get("status", {}).get("phase") == "Succeeded" and sim.pod("done"), 10)
term = cs0(d).get("state", {}).get("terminated", {})
t.is_((term.get("reason"), term.get("exitCode")), ("Completed", 0), "exit 0: terminated Completed, phase Succeeded")
t.is_(cond(d, "Ready").get("reason"), "PodCompleted", "Ready condition reason PodCompleted")

# --- readiness -------------------------------------------------------------------
create(pod_manifest("slow", env={"MODEL_STARTUP_DELAY": "1.5"}, cpu="10m"))
t.ok(sim.wait_for(lambda: state("slow").get("running"), 8), "slow model running")
p = sim.pod("slow")
t.is_(cs0(p).get("ready"), False, "not ready while /healthz answers 503")
t.is_(cond(p, "Ready").get("status"), "False", "Ready condition False")
t.ok(sim.wait_for(lambda: cs0(sim.pod("slow")).get("ready"), 8), "ready once /healthz answers 200")
t.is_(cond(sim.pod("slow"), "Ready").get("status"), "True", "Ready condition True")
t.ok(any(e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"] for e in sim.events("slow")),
     "Unhealthy event while starting")

# --- liveness probe ----------------------------------------------------------------
m = pod_manifest("live", env={"MODEL_NEVER_READY": "1"}, restart="Always", probe=False, cpu="10m")
m["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 80},
                                               "initialDelaySeconds": 1.5, "periodSeconds": 1, "failureThreshold": 2}
create(m)
lv = sim.wait_for(lambda: cs0(sim.pod("live")).get("restartCount", 0) >= 1 and sim.pod("live"), 15)
t.ok(lv, "a failing liveness probe restarts the container")
t.ok(any(e["reason"] == "Killing" and "failed liveness probe" in e["message"] for e in sim.events("live")),
     "Killing event 'failed liveness probe, will be restarted'")
t.ok(any(e["reason"] == "Unhealthy" and e["message"].startswith("Liveness probe failed: HTTP probe failed with statuscode: 503")
         for e in sim.events("live")), "Unhealthy event 'Liveness probe failed: ... 503'")
sim.api("DELETE", NS + "/live?gracePeriodSeconds=0")

# --- delete kills the process ----------------------------------------------------
ip = sim.pod("slow")["status"]["podIP"]
s = socket.create_connection((ip, 80), timeout=2)
s.close()
t.pass_("model listens on podIP:80 before the delete")
r = sim.api("DELETE", NS + "/slow", {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 5})
t.ok(r.status == 200 and r.json()["metadata"].get("deletionTimestamp"), "graceful delete: deletionTimestamp set")
t.ok(sim.wait_for(lambda: sim.pod("slow") is None, 8), "pod removed after its process stopped")
try:
    socket.create_connection((ip, 80), timeout=2).close()
    t.fail("nothing listens on the pod IP any more")
except OSError:
    t.pass_("nothing listens on the pod IP any more")

# --- scale down removes the node and its pods --------------------------------------
sim.api("PATCH", "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-big",
        {"spec": {"replicas": 0}}, ctype="application/merge-patch+json")
t.ok(sim.wait_for(lambda: sim.pod("big") is None and not [n for n in sim.api("GET", "/api/v1/nodes").json()["items"]
                                                          if n["metadata"]["name"].startswith("md-big-")], 5),
     "scaling md-big to 0 removes its node and the pods on it")
sim.stop()

# --- two simulators sharing a pod address range (parallel tests) ---------------------
sa = KubeSim(base_config(), tls=False, extra_args=["--ip-octet", "240"]).start()
sb = KubeSim(base_config(), tls=False, extra_args=["--ip-octet", "240"]).start()
sa.api("POST", NS, pod_manifest("first", cpu="10m"))
pa = sa.wait_for(lambda: cs0(sa.pod("first")).get("ready") and sa.pod("first"), 15)
sb.api("POST", NS, pod_manifest("second", cpu="10m"))
pb = sb.wait_for(lambda: cs0(sb.pod("second")).get("ready") and sb.pod("second"), 15)
t.ok(pa and pb and pa["status"]["podIP"] != pb["status"]["podIP"],
     "a second simulator skips a pod address whose port is taken (%s vs %s)"
     % ((pa or {}).get("status", {}).get("podIP"), (pb or {}).get("status", {}).get("podIP")))
sa.stop()
sb.stop()

# --- synthetic pods at scale: pod capacity, metrics without processes ----------------
big = KubeSim(base_config(nodes=[{"name": "s-%d" % i, "cpu": "64", "memory": "256Gi", "pods": 100}
                                 for i in range(2)])).start()
t0 = time.time()
for i in range(210):
    m = pod_manifest("syn-%03d" % i, image="kubesim/synthetic:1", cpu="10m", mem="32Mi", mem_limit=None,
                     env={"KUBESIM_CPU_MILLICORES": "250", "KUBESIM_MEMORY_MIB": "48"}, probe=False)
    if big.api("POST", NS, m).status != 201:
        t.fail("create synthetic pod %d" % i)
        break
t.pass_("210 synthetic pods created in %.1fs" % (time.time() - t0))


def phases():
    items = big.api("GET", NS).json()["items"]
    return sum(1 for p in items if cs0(p).get("ready")), [p for p in items if not p["spec"].get("nodeName")]


t.ok(big.wait_for(lambda: phases()[0] == 200, 20), "200 pods Running and Ready (node pod capacity 2 x 100)")
pending = phases()[1]
t.is_(len(pending), 10, "10 pods left Pending")
t.like(cond(pending[0] if pending else None, "PodScheduled").get("message"), r"2 Too many pods",
       "Unschedulable: Too many pods")
r1 = big.api("GET", "/api/v1/nodes/s-0/proxy/metrics/resource").text
time.sleep(1.0)
r2 = big.api("GET", "/api/v1/nodes/s-0/proxy/metrics/resource").text
rows = [ln for ln in r1.splitlines() if ln.startswith("container_memory_working_set_bytes{")]
t.is_(len(rows), 100, "node s-0 metrics list its 100 containers")
t.ok(all(ln.split()[1] == str(48 * 1048576) for ln in rows), "working set from KUBESIM_MEMORY_MIB")


def node_cpu(text):
    return float([ln for ln in text.splitlines() if ln.startswith("node_cpu_usage_seconds_total ")][0].split()[1])


d = node_cpu(r2) - node_cpu(r1)
t.ok(20 < d < 35, "node CPU counter grows at 100 x 0.25 cores (%.1f core-seconds in ~1 s)" % d)
pm = big.api("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/modelhub/pods/syn-000").json()
t.is_(pm["containers"][0]["usage"]["cpu"], "250000000n", "PodMetrics cpu of a synthetic pod")
big.stop()
t.done()
