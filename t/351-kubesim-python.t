#!/usr/bin/python3
# 351-kubesim-python.t — the official python client (python3-kubernetes 22.6) works against t/kube/kubesim.py.
"""Over HTTPS with certificate verification (the self-signed kubesim
certificate as CA; a wrong CA must fail): list/create/read/delete pods with
generateName, a kubernetes.watch.Watch stream, pod logs, events by
involvedObject.name, connect_get_node_proxy_with_path(name, "metrics/resource")
(the seeds' call: path percent-encoded as metrics%2Fresource), metrics.k8s.io
through CustomObjectsApi, MachineDeployment /scale (patch, replace, read),
pagination, and the 401/403/404/409/422 error paths."""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir") or os.path.dirname(os.path.abspath(__file__)) + "/..", "t", "kube"))
from simtest import KubeSim, base_config, need_root_or_skip, pod_manifest  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
try:
    import urllib3
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException
except ImportError:
    t.skip_all("python3-kubernetes not installed")
urllib3.disable_warnings()

cfg = base_config(
    nodes=[{"name": "node-a", "cpu": "2", "memory": "4Gi", "group": "static"},
           {"name": "node-b", "cpu": "2", "memory": "4Gi", "group": "static"}],
    machinedeployments=[{"name": "md-a", "namespace": "default", "replicas": 0, "min": 0, "max": 3,
                         "node": {"cpu": "4", "memory": "8Gi", "group": "models"}}],
    users=[{"token": "noproxy", "name": "system:serviceaccount:modelhub:noproxy", "deny": ["get nodes/proxy"]},
           {"token": "reader", "name": "reader", "allow": ["get pods", "list pods", "watch pods"]}])
sim = KubeSim(cfg).start()


def api_client(token=None, ca=None):
    c = client.Configuration()
    c.host = sim.url
    c.api_key = {"authorization": "Bearer " + (token or sim.token)}
    c.ssl_ca_cert = ca or sim.ca
    c.verify_ssl = True
    return client.ApiClient(c)


def status_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
        return 200, None
    except ApiException as e:
        return e.status, e


ac = api_client()
core = client.CoreV1Api(ac)
co = client.CustomObjectsApi(ac)

nodes = core.list_node()
t.is_(sorted(n.metadata.name for n in nodes.items), ["node-a", "node-b"], "list_node")
t.is_(nodes.items[0].status.conditions[-1].type, "Ready", "node conditions deserialize (Ready last)")

# TLS verification: a different CA must be refused
bad_ca = os.path.join(sim.tmp, "other-ca.crt")
os.system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout %s.key -out %s 2>/dev/null"
          % (bad_ca, bad_ca))
try:
    client.CoreV1Api(api_client(ca=bad_ca)).list_node(_request_timeout=5)
    t.fail("a wrong CA certificate is refused")
except Exception as e:  # urllib3 MaxRetryError wrapping SSLError
    t.like(repr(e), r"SSL|CERTIFICATE|certificate", "a wrong CA certificate is refused")

# start a watch from the list's resourceVersion, then create a pod
lst = core.list_namespaced_pod("modelhub")
t.is_(lst.items, [], "list_namespaced_pod: empty namespace")
rv0 = lst.metadata.resource_version
t.like(rv0, r"^\d+$", "list returns a resourceVersion")

pod = core.create_namespaced_pod("modelhub", pod_manifest(generate="eos3b5e-", env={"MODEL_STRICT": "1"}))
name = pod.metadata.name
t.like(name, r"^eos3b5e-[a-z0-9]{5}$", "generateName gets a random suffix")
t.like(pod.metadata.uid, r"^[0-9a-f-]{36}$", "uid assigned")
t.ok(pod.metadata.creation_timestamp is not None, "creationTimestamp assigned")
t.is_(pod.status.phase, "Pending", "created pod is Pending")

seen = []
w = watch.Watch()
for ev in w.stream(core.list_namespaced_pod, "modelhub", resource_version=rv0, timeout_seconds=20):
    o = ev["object"]
    seen.append((ev["type"], o.status.phase, bool(o.status.container_statuses and o.status.container_statuses[0].ready)))
    if o.status.phase == "Running" and o.status.container_statuses[0].ready:
        w.stop()
t.is_(seen[0][0], "ADDED", "watch: ADDED first")
t.ok(all(s[0] in ("ADDED", "MODIFIED") for s in seen), "watch: then MODIFIED events")
t.is_(seen[-1], ("MODIFIED", "Running", True), "watch: ends with Running and ready")
t.ok(isinstance(ev["object"], client.V1Pod), "watch objects deserialize as V1Pod")

pod = core.read_namespaced_pod(name, "modelhub")
t.like(pod.status.pod_ip, r"^127\.", "read_namespaced_pod: podIP")
t.is_(pod.status.container_statuses[0].state.running is not None, True, "container state running")
t.ok(pod.status.container_statuses[0].container_id.startswith("containerd://"), "containerID set")
conds = {c.type: c.status for c in pod.status.conditions}
t.is_((conds.get("PodScheduled"), conds.get("Ready"), conds.get("ContainersReady")), ("True", "True", "True"),
      "conditions PodScheduled/Ready/ContainersReady True")

# the model really serves on podIP:containerPort, and env (MODEL_STRICT) reached it
import json  # noqa: E402
import urllib.request  # noqa: E402
req = urllib.request.Request("http://%s:80/run?orient=records" % pod.status.pod_ip,
                             data=json.dumps(["CCO", "not_a_smiles"]).encode(),
                             headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=10)
    t.fail("container env MODEL_STRICT=1 reaches the model (strict batch failure)")
except urllib.error.HTTPError as e:
    t.is_(e.code, 500, "container env MODEL_STRICT=1 reaches the model (strict batch failure)")
with urllib.request.urlopen(urllib.request.Request(
        "http://%s:80/run" % pod.status.pod_ip, data=b'["CCO"]',
        headers={"Content-Type": "application/json"}), timeout=10) as r:
    t.like(r.read().decode(), r"46\.0", "model answers on podIP:80 (ethanol 46.07)")

logs = core.read_namespaced_pod_log(name, "modelhub")
t.like(logs, r"listening model=eos3b5e", "read_namespaced_pod_log")
t.like(core.read_namespaced_pod_log(name, "modelhub", tail_lines=1).strip(), r"^\S+ \w+ model", "tail_lines=1")

evs = core.list_namespaced_event("modelhub", field_selector="involvedObject.name=" + name)
reasons = [e.reason for e in evs.items]
t.ok({"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= set(reasons), "events Scheduled..Started")
t.ok(all(e.involved_object.name == name and e.count >= 1 and e.first_timestamp for e in evs.items),
     "events carry involvedObject, count, firstTimestamp")

time.sleep(0.8)  # one sampler scan
text = core.connect_get_node_proxy_with_path("node-a", "metrics/resource")
t.ok(isinstance(text, str), "connect_get_node_proxy_with_path returns text")
lines = text.split("\n")
t.ok(any(re.match(r'container_memory_working_set_bytes\{container="model",namespace="modelhub",pod="%s"\} \d+' % name, ln)
         for ln in lines), "proxy metrics/resource (metrics%2Fresource decoded) has the pod's memory")
other = core.connect_get_node_proxy_with_path("node-b", "metrics/resource")
t.ok(name not in other and "node_memory_working_set_bytes" in other, "node-b's metrics do not list node-a's pod")

pm = co.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "modelhub", "pods")
t.is_([i["metadata"]["name"] for i in pm["items"]], [name], "metrics.k8s.io PodMetrics list")
one = co.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", "modelhub", "pods", name)
t.like(one["containers"][0]["usage"]["memory"], r"^\d+Ki$", "PodMetrics memory usage in Ki")
t.like(one["containers"][0]["usage"]["cpu"], r"^\d+n$", "PodMetrics cpu usage in nanocores")
nm = co.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
t.is_(len(nm["items"]), 2, "NodeMetrics for both nodes")
code, _ = status_of(co.get_namespaced_custom_object, "metrics.k8s.io", "v1beta1", "modelhub", "pods", "nope")
t.is_(code, 404, "PodMetrics of an unknown pod: 404")

# Cluster API MachineDeployment scale subresource
sc = co.get_namespaced_custom_object_scale("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments", "md-a")
t.is_((sc["kind"], sc["apiVersion"], sc["spec"]["replicas"]), ("Scale", "autoscaling/v1", 0), "read scale")
sc = co.patch_namespaced_custom_object_scale("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments",
                                             "md-a", {"spec": {"replicas": 2}})
t.is_(sc["spec"]["replicas"], 2, "patch scale to 2")


def group_nodes(ready_only=True):
    return [n for n in core.list_node(label_selector="cluster.x-k8s.io/deployment-name=md-a").items
            if not ready_only or any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)]


t.ok(sim.wait_for(lambda: len(group_nodes(False)) == 2, 1), "two md-a nodes registered within a second")
t.is_(len(group_nodes()), 0, "not Ready yet")
t.ok(sim.wait_for(lambda: len(group_nodes()) == 2, 10), "both become Ready after the delay")
md = co.get_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments", "md-a")
t.ok(sim.wait_for(lambda: co.get_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments",
                                                          "md-a")["status"].get("readyReplicas") == 2, 5),
     "MachineDeployment status.readyReplicas 2")
machines = co.list_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machines")
t.is_(len(machines["items"]), 2, "one Machine per node")
victim = sorted(m["metadata"]["name"] for m in machines["items"])[-1]
keep = [m["status"]["nodeRef"]["name"] for m in machines["items"] if m["metadata"]["name"] != victim]
core.patch_node(victim, {"spec": {"unschedulable": True}})
co.patch_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machines", victim,
                                  {"metadata": {"annotations": {"cluster.x-k8s.io/delete-machine": "yes"}}})
sc = co.get_namespaced_custom_object_scale("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments", "md-a")
sc["spec"]["replicas"] = 1
co.replace_namespaced_custom_object_scale("cluster.x-k8s.io", "v1beta1", "default", "machinedeployments", "md-a", sc)
t.ok(sim.wait_for(lambda: len(group_nodes(False)) == 1, 5), "replace scale to 1 removes a node")
t.is_([n.metadata.name for n in group_nodes(False)], keep,
      "the cordoned node whose Machine is marked delete-machine is the one removed")
t.is_(len(co.list_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "default", "machines")["items"]), 1,
      "and its Machine is gone")
code, e = status_of(co.patch_namespaced_custom_object_scale, "cluster.x-k8s.io", "v1beta1", "default",
                    "machinedeployments", "md-a", {"spec": {"replicas": -1}})
t.is_(code, 422, "negative replicas: 422 Invalid")
code, e = status_of(co.replace_namespaced_custom_object_scale, "cluster.x-k8s.io", "v1beta1", "default",
                    "machinedeployments", "md-a", sc)
t.is_(code, 409, "replace with a stale resourceVersion: 409 Conflict")
code, e = status_of(co.get_namespaced_custom_object_scale, "cluster.x-k8s.io", "v1beta1", "default",
                    "machinedeployments", "nope")
t.is_(code, 404, "scale of an unknown MachineDeployment: 404")

# pagination
for i in range(3):
    core.create_namespaced_pod("modelhub", pod_manifest(name="page-%d" % i, image="modelhub/nosuchmodel:1"))
p1 = core.list_namespaced_pod("modelhub", limit=2)
t.is_(len(p1.items), 2, "limit=2 returns 2 items")
t.ok(p1.metadata._continue, "and a continue token")
p2 = core.list_namespaced_pod("modelhub", limit=2, _continue=p1.metadata._continue)
t.is_(len(p2.items), 2, "the next page has the rest")
t.is_(len({p.metadata.name for p in p1.items + p2.items}), 4, "pages do not overlap")
t.is_(p2.metadata.resource_version, p1.metadata.resource_version, "all pages are served at the first page's version")
core.create_namespaced_pod("modelhub", pod_manifest(name="page-3", image="modelhub/nosuchmodel:1"))
p1 = core.list_namespaced_pod("modelhub", limit=3)
t.is_(p1.items[-1].metadata.name, "page-1", "first page ends with page-1")
core.delete_namespaced_pod("page-1", "modelhub", grace_period_seconds=0)
p2 = core.list_namespaced_pod("modelhub", limit=10, _continue=p1.metadata._continue)
t.is_([p.metadata.name for p in p2.items], ["page-2", "page-3"],
      "deleting the last served item does not make the next page skip one")
code, e = status_of(core.list_namespaced_pod, "modelhub", limit=1, _continue="garbage")
t.is_(code, 400, "a malformed continue token: 400")

# errors
code, e = status_of(core.read_namespaced_pod, "nope", "modelhub")
t.is_(code, 404, "read unknown pod: 404")
t.like(e.body if e else "", r'"reason": ?"NotFound"', "404 body is a Status with reason NotFound")
code, e = status_of(core.create_namespaced_pod, "modelhub", pod_manifest(name="page-0"))
t.is_(code, 409, "duplicate name: 409 AlreadyExists")
code, e = status_of(core.create_namespaced_pod, "modelhub", {"metadata": {"name": "x"}, "spec": {"containers": []}})
t.is_(code, 422, "no containers: 422 Invalid")
code, e = status_of(core.create_namespaced_pod, "nope-ns", pod_manifest(name="x", ns="nope-ns"))
t.is_(code, 404, "unknown namespace: 404")
code, e = status_of(client.CoreV1Api(api_client(token="bad")).list_node)
t.is_(code, 401, "bad token: 401")
noproxy = client.CoreV1Api(api_client(token="noproxy"))
code, e = status_of(noproxy.connect_get_node_proxy_with_path, "node-a", "metrics/resource")
t.is_(code, 403, "nodes/proxy denied: 403 Forbidden")
t.like(e.body if e else "", r'cannot get resource \\"nodes/proxy\\"', "Forbidden message names nodes/proxy")
t.is_(len(client.CustomObjectsApi(api_client(token="noproxy")).list_namespaced_custom_object(
    "metrics.k8s.io", "v1beta1", "modelhub", "pods")["items"]), 1, "metrics.k8s.io fallback still allowed")
reader = client.CoreV1Api(api_client(token="reader"))
t.is_(len(reader.list_namespaced_pod("modelhub").items), 4, "allow-listed user may list pods")
code, e = status_of(reader.delete_namespaced_pod, name, "modelhub")
t.is_(code, 403, "but not delete them")

# raw API error paths: each bad input gets the API server's status code
P = "/api/v1/namespaces/modelhub/pods"


def raw(method, path, body=None, ctype="application/json"):
    return sim.api(method, path, body, ctype=ctype).status


bad = dict(pod_manifest(name="bad"))
t.is_(raw("POST", P, b"{not json"), 400, "malformed JSON body: 400")
t.is_(raw("GET", "/api/v1/namespaces/modelhub/nosuchthings"), 404, "unknown resource: 404")
t.is_(raw("GET", "/apis/no.such.group/v1"), 404, "unknown API group: 404")
t.is_(raw("POST", "/apis/metrics.k8s.io/v1beta1/namespaces/modelhub/pods", {}), 405, "create on metrics.k8s.io: 405")
for field, value, what in ((("resources", "requests", "memory"), "lots", "invalid quantity"),
                           (("resources", "requests", "memory"), "1Gi", "request above the limit")):
    m = pod_manifest(name="bad")
    m["spec"]["containers"][0]["resources"]["requests"]["memory"] = value
    t.is_(raw("POST", P, m), 422, "%s: 422" % what)
m = pod_manifest(name="bad", restart="Sometimes")
t.is_(raw("POST", P, m), 422, "unknown restartPolicy: 422")
m = pod_manifest(name="bad")
del m["spec"]["containers"][0]["image"]
t.is_(raw("POST", P, m), 422, "container without image: 422")
t.is_(raw("POST", P, {"kind": "Node", "metadata": {"name": "x"}}), 400, "kind that does not match the URL: 400")
t.is_(raw("POST", P, {"kind": "Pod", "metadata": {}, "spec": {"containers": [{"name": "a", "image": "b"}]}}), 422,
      "no name and no generateName: 422")
t.is_(raw("PUT", P + "/page-0", {"metadata": {"name": "other"}, "spec": {}}), 400, "PUT with another name: 400")
cur = sim.api("GET", P + "/page-0").json()
stale = dict(cur, metadata=dict(cur["metadata"], resourceVersion="1"))
t.is_(raw("PUT", P + "/page-0", stale), 409, "PUT with a stale resourceVersion: 409 Conflict")
t.is_(raw("PATCH", P + "/page-0", [{"op": "test", "path": "/metadata/name", "value": "x"}],
          "application/json-patch+json"), 422, "failing JSON patch test op: 422")
t.is_(raw("PATCH", P + "/page-0", [{"op": "remove", "path": "/metadata/nope"}], "application/json-patch+json"), 422,
      "JSON patch on a missing path: 422")
t.is_(raw("DELETE", P + "/page-0", {"kind": "DeleteOptions", "preconditions": {"uid": "not-it"}}), 409,
      "delete with a wrong uid precondition: 409")
t.is_(raw("DELETE", P + "/page-0?gracePeriodSeconds=soon"), 400, "non-numeric gracePeriodSeconds: 400")
t.is_(raw("GET", P + "/page-0/log?container=nope"), 400, "logs of an unknown container: 400")
t.is_(raw("GET", P + "/%s/log?previous=true" % name), 400, "previous logs without a restart: 400")
t.is_(raw("GET", P + "?limit=many"), 400, "non-numeric limit: 400")
t.is_(raw("GET", P + "?watch=1&timeoutSeconds=soon"), 400, "non-numeric timeoutSeconds: 400")
t.is_(raw("GET", P + "/%s/log?tailLines=x" % name), 400, "non-numeric tailLines: 400")
t.is_(raw("GET", "/openapi/v3/apis/no.such/v1"), 404, "OpenAPI of an unknown group version: 404")
t.is_(raw("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": {}}), 422,
      "access review without resourceAttributes: 422")
t.is_(raw("POST", P, b"k8s\x00\x0a\x00", "application/vnd.kubernetes.protobuf"), 415, "protobuf pod: 415")
t.is_(raw("PATCH", "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-a",
          {"spec": {"replicas": "two"}}, "application/merge-patch+json"), 422, "non-integer MachineDeployment replicas: 422")

# delete: graceful, then gone
d = core.delete_namespaced_pod(name, "modelhub")
t.ok(d.metadata.deletion_timestamp is not None, "delete returns the pod with deletionTimestamp")
t.ok(sim.wait_for(lambda: status_of(core.read_namespaced_pod, name, "modelhub")[0] == 404, 15),
     "pod is gone once its process exited")
evs = core.list_namespaced_event("modelhub", field_selector="involvedObject.name=%s,reason=Killing" % name)
t.is_(len(evs.items), 1, "Killing event on delete")
code, e = status_of(core.delete_namespaced_pod, name, "modelhub")
t.is_(code, 404, "deleting again: 404")
t.done()
