#!/usr/bin/python3
# 350-kubesim-kubectl.t — the real kubectl (1.32) works against the Kubernetes API simulator t/kube/kubesim.py.
"""Starts kubesim over HTTPS (kubectl never sends a token over plain HTTP) with
one static node and a MachineDeployment, then drives it with /usr/bin/kubectl:
discovery, get nodes/pods/events (server-side Table columns), create/apply from
YAML, a real model process reaching Running/Ready, logs, node metrics through
the API server proxy, metrics.k8s.io (kubectl top), cordon/uncordon, scale of
a MachineDeployment, get -w, delete, and the error paths (bad token, NotFound,
invalid pod, bad selector)."""

import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir") or os.path.dirname(os.path.abspath(__file__)) + "/..", "t", "kube"))
from simtest import KUBECTL, KubeSim, base_config, need_root_or_skip, in_path  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
if not in_path(KUBECTL):
    t.skip_all("no %s" % KUBECTL)

cfg = base_config(machinedeployments=[{"name": "md-a", "namespace": "default", "replicas": 0,
                                       "node": {"cpu": "2", "memory": "4Gi", "group": "models"}}])
sim = KubeSim(cfg).start()
k = sim.kubectl

rc, out, err = k("version", "-o", "json")
t.is_(rc, 0, "kubectl version talks to the simulator")
t.is_(json.loads(out or "{}").get("serverVersion", {}).get("minor"), "32", "server reports 1.32")

rc, out, err = k("get", "nodes")
t.is_(rc, 0, "get nodes")
t.like(out, r"(?m)^node-a\s+Ready\s", "node-a listed Ready (Table columns)")

rc, out, err = k("get", "nodes", "-o", "json")
node = json.loads(out)["items"][0]
t.is_(node["status"]["capacity"]["cpu"], "2", "node capacity cpu from the config")
t.is_(node["metadata"]["labels"].get("modelhub.io/node-group"), "static", "node group label")

rc, out, err = k("get", "ns")
t.like(out, r"(?m)^modelhub\s+Active", "configured namespace exists")

POD = """apiVersion: v1
kind: Pod
metadata:
  name: mw-1
  labels:
    app.kubernetes.io/managed-by: modelhub
    modelhub/model: eos3b5e
spec:
  restartPolicy: Never
  containers:
  - name: model
    image: modelhub/eos3b5e:1.0
    ports: [{containerPort: 80}]
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {memory: 512Mi}
    readinessProbe:
      httpGet: {path: /healthz, port: 80}
"""
rc, out, err = k("create", "-f", "-", stdin=POD)
t.is_(rc, 0, "create -f pod YAML")
t.like(out, r"pod/mw-1 created", "kubectl reports the pod created")
if rc:
    t.diag(err)

rc, out, err = k("create", "-f", "-", stdin=POD)
t.ok(rc != 0 and "AlreadyExists" in err, "creating it again: AlreadyExists")


def jp(name, path):
    rc, out, err = k("get", "pod", name, "-o", "jsonpath=" + path)
    return out if rc == 0 else None


ok = sim.wait_for(lambda: jp("mw-1", "{.status.phase}/{.status.containerStatuses[0].ready}") == "Running/true", 20)
t.ok(ok, "pod reaches Running and Ready (real model process, readiness probe /healthz)")
ip = jp("mw-1", "{.status.podIP}")
t.like(ip, r"^127\.\d+\.\d+\.\d+$", "pod IP is a loopback address")
t.ok(ip != "127.0.0.1", "pod IP is its own address, not 127.0.0.1")
t.is_(jp("mw-1", "{.spec.nodeName}"), "node-a", "scheduled on node-a")

rc, out, err = k("get", "pods")
t.like(out, r"(?m)^mw-1\s+1/1\s+Running\s+0\s", "get pods: READY 1/1, STATUS Running, RESTARTS 0")
rc, out, err = k("get", "pods", "-o", "wide")
t.like(out, r"mw-1.*%s\s+node-a" % re.escape(ip or "x"), "get pods -o wide shows IP and node")

rc, out, err = k("get", "pods", "-l", "modelhub/model=eos3b5e", "-o", "name")
t.is_(out.strip(), "pod/mw-1", "label selector =")
rc, out, err = k("get", "pods", "-l", "modelhub/model in (descriptors,load)", "-o", "name")
t.is_(out.strip(), "", "label selector in () excludes it")
rc, out, err = k("get", "pods", "--field-selector", "status.phase=Running", "-o", "name")
t.is_(out.strip(), "pod/mw-1", "field selector status.phase")
rc, out, err = k("get", "pods", "--field-selector", "spec.nodeName=node-b", "-o", "name")
t.is_(out.strip(), "", "field selector spec.nodeName excludes it")
rc, out, err = k("get", "pods", "--field-selector", "spec.bogus=1")
t.ok(rc != 0 and "field selector" in err, "unknown field selector: BadRequest")
rc, out, err = k("get", "pods", "-l", "a in (b")
t.ok(rc != 0, "malformed label selector rejected")

rc, out, err = k("get", "events")
for reason in ("Scheduled", "Pulling", "Pulled", "Created", "Started"):
    t.like(out, r"\b%s\b\s+pod/mw-1" % reason, "event %s for the pod" % reason)
rc, out, err = k("get", "events", "--field-selector", "involvedObject.name=mw-1,reason=Scheduled", "-o", "json")
evs = json.loads(out)["items"]
t.is_(len(evs), 1, "events by involvedObject.name and reason")
t.is_(evs and evs[0]["involvedObject"]["kind"], "Pod", "event involvedObject is the pod")

rc, out, err = k("logs", "mw-1")
t.is_(rc, 0, "kubectl logs")
t.like(out, r"listening model=eos3b5e", "logs are the model process output")

# let the sampler see the process, then scrape the kubelet resource metrics through the proxy
time.sleep(0.8)
rc, out, err = k("get", "--raw", "/api/v1/nodes/node-a/proxy/metrics/resource")
t.is_(rc, 0, "get --raw nodes/node-a/proxy/metrics/resource")
m = re.search(r'^container_memory_working_set_bytes\{container="model",namespace="modelhub",pod="mw-1"\} (\d+) \d+$', out, re.M)
t.ok(m and int(m.group(1)) > 10 * 1048576, "container memory working set of the real process (> 10 MiB)")
m = re.search(r'^container_cpu_usage_seconds_total\{container="model",namespace="modelhub",pod="mw-1"\} ([0-9.]+) \d+$', out, re.M)
t.ok(m and float(m.group(1)) > 0, "container CPU seconds of the real process")
t.like(out, r"(?m)^node_cpu_usage_seconds_total [0-9.]+ \d+$", "node_cpu_usage_seconds_total")
t.like(out, r"(?m)^pod_memory_working_set_bytes\{namespace=\"modelhub\",pod=\"mw-1\"\} \d+", "pod_memory_working_set_bytes")
t.like(out, r"(?m)^scrape_error 0$", "scrape_error 0")
t.like(out, r"# TYPE container_cpu_usage_seconds_total counter", "TYPE lines")
rc, out, err = k("get", "--raw", "/api/v1/nodes/nope/proxy/metrics/resource")
t.ok(rc != 0 and "NotFound" in err, "proxy to an unknown node: NotFound")

rc, out, err = k("top", "pod", "mw-1")
t.is_(rc, 0, "kubectl top pod (metrics.k8s.io)")
t.like(out, r"mw-1\s+\d+m\s+\d+Mi", "top shows CPU and memory")
rc, out, err = k("top", "node", "node-a")
t.like(out, r"node-a\s+\d+m", "kubectl top node")

rc, out, err = k("cordon", "node-a")
t.like(out, r"node/node-a cordoned", "cordon")
rc, out, err = k("get", "node", "node-a")
t.like(out, r"Ready,SchedulingDisabled", "cordoned node shows SchedulingDisabled")
t.ok(sim.wait_for(lambda: "node.kubernetes.io/unschedulable" in k("get", "node", "node-a", "-o", "jsonpath={.spec.taints}")[1], 5),
     "cordon adds the unschedulable taint")
rc, out, err = k("uncordon", "node-a")
t.like(out, r"node/node-a uncordoned", "uncordon")
rc, out, err = k("get", "node", "node-a", "-o", "jsonpath={.spec.unschedulable}")
t.is_(out, "", "uncordon clears spec.unschedulable")

rc, out, err = k("scale", "machinedeployment", "md-a", "-n", "default", "--replicas=1")
t.is_(rc, 0, "kubectl scale machinedeployment (scale subresource)")
if rc:
    t.diag(err)
t.ok(sim.wait_for(lambda: re.search(r"md-a-\S+\s+Ready", k("get", "nodes")[1]), 10),
     "the new node of md-a becomes Ready")
rc, out, err = k("get", "md", "-n", "default")
t.like(out, r"md-a\s+kubesim\s+1\s+1", "get md shows 1 replica, 1 ready")

# get -w: a watch streamed by kubectl while another pod is created and deleted
env = dict(os.environ, KUBECONFIG=sim.kubeconfig, HOME=sim.tmp)
w = subprocess.Popen([KUBECTL, "get", "pods", "-w"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, env=env)
time.sleep(1.0)
rc, out, err = k("apply", "-f", "-", stdin=POD.replace("mw-1", "mw-2"))
t.is_(rc, 0, "apply -f creates a second pod")
sim.wait_for(lambda: jp("mw-2", "{.status.phase}") == "Running", 15)
time.sleep(0.5)
w.terminate()
wout, werr = w.communicate(timeout=10)
t.like(wout, r"(?m)^mw-1\s+1/1\s+Running", "get -w lists the existing pod")
t.like(wout, r"(?m)^mw-2\s+0/1\s+(Pending|ContainerCreating)", "get -w streams the new pod while pending")
t.like(wout, r"(?m)^mw-2\s+\d/1\s+Running", "get -w streams it running")

rc, out, err = k("delete", "pod", "mw-1", timeout=60)
t.is_(rc, 0, "delete pod (kubectl waits for it to go)")
t.like(out, r'pod "mw-1" deleted', "delete reports the pod deleted")
rc, out, err = k("get", "pod", "mw-1")
t.ok(rc != 0 and 'pods "mw-1" not found' in err, "deleted pod: NotFound")
rc, out, err = k("delete", "pod", "mw-2", "--grace-period=0", "--force")
t.is_(rc, 0, "force delete with grace 0")
t.ok(sim.wait_for(lambda: sim.pod("mw-2") is None, 5), "force-deleted pod is gone at once")

rc, out, err = k("create", "-f", "-", stdin=POD.replace("mw-1", "Bad_Name"))
t.ok(rc != 0 and "Invalid" in err, "invalid pod name: 422 Invalid")
rc, out, err = k("auth", "can-i", "delete", "pods")
t.is_((rc, out.strip()), (0, "yes"), "auth can-i (SelfSubjectAccessReview) for the admin token")
rc, out, err = k("get", "pods", token="wrong-token")
t.ok(rc != 0 and ("Unauthorized" in err or "provide credentials" in err), "wrong token: Unauthorized")

# plain HTTP: kubectl drops the token, so kubesim answers 401 (kubectl must use TLS)
hsim = KubeSim(base_config(), tls=False).start()
p = subprocess.run([KUBECTL, "--server", hsim.url, "--token", hsim.token, "get", "pods"],
                   capture_output=True, text=True, timeout=30, env=dict(os.environ, HOME=hsim.tmp))
t.ok(p.returncode != 0, "kubectl over plain HTTP is refused (token not sent; use --tls)")
rc, out, err = hsim.kubectl("get", "--raw", "/version")
t.like(out, r'"gitVersion"', "/version needs no token")
hsim.stop()

sim.stop()
t.like(sim.log_text(), r"container started pod=mw-1", "simulator log records the container start")
t.done()
