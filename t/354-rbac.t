#!/usr/bin/python3
# 354-rbac.t — deploy/k8s grants the modelhub ServiceAccount exactly the API permissions in t/kube/required-permissions.txt.
"""Parses deploy/k8s/*.yaml (python3-yaml): every manifest is well formed;
every line of t/kube/required-permissions.txt (verb, resource, apiGroup,
namespace) is granted through a RoleBinding/ClusterRoleBinding to
ServiceAccount modelhub/modelhub in the right scope; no rule uses "*" and no
rule grants anything beyond the list (least privilege); the Deployment runs
as that ServiceAccount with the config the backend expects. Then kubesim
enforces the same list for a token (allow_file): the calls in the list
succeed, others are 403 Forbidden."""

import glob
import os
import sys

TOP = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(TOP, "t", "kube"))
from simtest import KubeSim, base_config, pod_manifest  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
try:
    import yaml
except ImportError:
    t.skip_all("python3-yaml not installed")

PERMS = os.path.join(TOP, "t", "kube", "required-permissions.txt")
SA = ("modelhub", "modelhub")  # namespace, name


def load_perms(path):
    out = []
    with open(path) as f:
        for ln in f:
            parts = ln.split("#")[0].split()
            if not parts:
                continue
            ns = next((p[3:] for p in parts[2:] if p.startswith("ns=")), None)
            grp = next((p for p in parts[2:] if not p.startswith("ns=")), "")
            out.append((parts[0], parts[1], grp, ns))
    return out


docs = []
for f in sorted(glob.glob(os.path.join(TOP, "deploy", "k8s", "*.yaml"))):
    try:
        for d in yaml.safe_load_all(open(f)):
            if d:
                docs.append((os.path.basename(f), d))
        t.pass_("%s parses" % os.path.basename(f))
    except yaml.YAMLError as e:
        t.fail("%s parses: %s" % (os.path.basename(f), e))
t.ok(len(docs) >= 10, "deploy/k8s holds the manifests (%d objects)" % len(docs))
t.ok(all(d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name") for _, d in docs),
     "every object has apiVersion, kind, metadata.name")
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
t.ok(all(d["kind"] in CLUSTER_KINDS or d["metadata"].get("namespace") for _, d in docs),
     "every namespaced object names its namespace")


def of(kind):
    return [d for _, d in docs if d["kind"] == kind]


roles = {(r["metadata"].get("namespace"), r["kind"], r["metadata"]["name"]): r for r in of("Role") + of("ClusterRole")}
for _, d in docs:
    for rule in d.get("rules") or []:
        wild = any("*" in (rule.get(k) or []) for k in ("verbs", "resources", "apiGroups"))
        if wild:
            t.fail("no wildcard in %s %s" % (d["kind"], d["metadata"]["name"]))
t.pass_("no rule uses a wildcard")

# grants reachable by the ServiceAccount: (verb, resource, group, namespace or None=cluster-wide)
grants = set()
bindings_ok = True
for b in of("RoleBinding") + of("ClusterRoleBinding"):
    subj = [(s.get("namespace"), s.get("name")) for s in b.get("subjects") or [] if s.get("kind") == "ServiceAccount"]
    if SA not in subj:
        bindings_ok = False
        continue
    ref = b["roleRef"]
    key = (None if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"], ref["kind"], ref["name"])
    role = roles.get(key)
    if role is None:
        t.fail("%s %s refers to an existing role" % (b["kind"], b["metadata"]["name"]))
        continue
    scope = None if b["kind"] == "ClusterRoleBinding" else b["metadata"]["namespace"]
    for rule in role.get("rules") or []:
        for g in rule.get("apiGroups") or []:
            for r in rule.get("resources") or []:
                for v in rule.get("verbs") or []:
                    grants.add((v, r, g, scope))
t.ok(bindings_ok, "every binding's subject is ServiceAccount modelhub/modelhub")
t.ok(grants, "the ServiceAccount has grants")

perms = load_perms(PERMS)
t.ok(len(perms) >= 20, "required-permissions.txt lists the backend's calls (%d)" % len(perms))
missing = []
for v, r, g, ns in perms:
    if (v, r, g, None) in grants:
        continue
    if ns and (v, r, g, ns) in grants:
        continue
    missing.append("%s %s %s ns=%s" % (v, r, g or '""', ns))
t.is_(missing, [], "every required permission is granted in its scope")
needed = {(v, r, g) for v, r, g, ns in perms}
extra = sorted("%s %s %s" % x[:3] for x in grants if x[:3] not in needed)
t.is_(extra, [], "nothing is granted beyond the list (least privilege)")
cluster_wide_pods = [x for x in grants if x[1].startswith("pods") and x[2] == "" and x[3] is None]
t.is_(cluster_wide_pods, [], "pod permissions are namespaced, not cluster-wide")

# the Deployment and its config
dep = of("Deployment")[0]
spec = dep["spec"]["template"]["spec"]
t.is_((dep["metadata"]["namespace"], spec.get("serviceAccountName")), SA, "Deployment runs as ServiceAccount modelhub")
t.ok(any(sa["metadata"]["name"] == SA[1] and sa["metadata"]["namespace"] == SA[0] for sa in of("ServiceAccount")),
     "the ServiceAccount is defined")
names = sorted(c["name"] for c in spec["containers"])
t.is_(names, ["fcgi", "modelhubd", "nginx"], "containers nginx, fcgi, modelhubd")
t.ok(all(c.get("securityContext", {}).get("allowPrivilegeEscalation") is False for c in spec["containers"]),
     "no privilege escalation")
t.ok(spec.get("securityContext", {}).get("runAsNonRoot") is True, "runs as non-root")
allc = spec["containers"] + spec.get("initContainers", [])
vols = {v["name"] for v in spec.get("volumes") or []}
mounts = {m["name"] for c in allc for m in c.get("volumeMounts") or []}
t.is_(sorted(mounts - vols), [], "every volumeMount names a volume of the pod")
t.is_(sorted(vols - mounts), [], "every volume is mounted somewhere")
t.ok(all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v
         for k, v in dep["spec"]["selector"]["matchLabels"].items()), "Deployment selector matches its template labels")
t.ok(all(c.get("resources", {}).get("requests") and c["resources"].get("limits", {}).get("memory")
         for c in spec["containers"]), "every container has requests and a memory limit")
shm = [m for c in spec["containers"] for m in c.get("volumeMounts") or [] if m["mountPath"] == "/dev/shm"]
t.is_(sorted(c["name"] for c in spec["containers"] if any(m["mountPath"] == "/dev/shm" for m in c.get("volumeMounts") or [])),
      ["fcgi", "modelhubd"], "fcgi and modelhubd share /dev/shm (metrics segment)")
t.ok(len({m["name"] for m in shm}) == 1, "through one volume")
cm_names = {c["metadata"]["name"] for c in of("ConfigMap")}
t.ok(all(v["configMap"]["name"] in cm_names for v in spec["volumes"] if "configMap" in v), "config volume names the ConfigMap")
conf = of("ConfigMap")[0]["data"]["modelhub.conf"]
kv = dict(ln.split("=", 1) for ln in conf.splitlines() if "=" in ln and not ln.strip().startswith("#"))
kv = {k.strip(): v.strip() for k, v in kv.items()}
t.is_(kv.get("hub.backend"), "kubernetes", "modelhub.conf selects the kubernetes backend")
role_ns = {k[0] for k in roles if k[1] == "Role"}
t.ok(kv.get("kube.namespace") in role_ns, "kube.namespace is the namespace of the pods Role")
svc = of("Service")[0]
t.is_(svc["spec"]["selector"], dep["spec"]["selector"]["matchLabels"], "Service selects the Deployment's pods")
t.ok("db.conninfo" not in kv, "no database password in the ConfigMap")

# kubesim enforces the same list for a token
cfg = base_config(namespaces=["modelhub-models"],
                  machinedeployments=[{"name": "md-a", "namespace": "default", "replicas": 0}],
                  users=[{"token": "sa-token", "name": "system:serviceaccount:modelhub:modelhub", "allow_file": PERMS}])
sim = KubeSim(cfg, tls=False).start()


def call(method, path, body=None, ctype="application/json"):
    return sim.api(method, path, body, token="sa-token", ctype=ctype).status


P = "/api/v1/namespaces/modelhub-models/pods"
t.is_(call("POST", P, pod_manifest("p1", ns="modelhub-models", image="modelhub/nosuchmodel:1")), 201,
      "allowed: create pods in modelhub-models")
t.is_(call("GET", P + "?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmodelhub"), 200, "allowed: list pods")
t.is_(call("GET", P + "?watch=1&timeoutSeconds=1"), 200, "allowed: watch pods")
t.is_(call("GET", "/api/v1/namespaces/modelhub-models/events?fieldSelector=involvedObject.name%3Dp1"), 200,
      "allowed: list events")
t.is_(call("GET", "/api/v1/nodes/node-a/proxy/metrics/resource"), 200, "allowed: get nodes/proxy")
t.is_(call("PATCH", "/api/v1/nodes/node-a", {"spec": {"unschedulable": True}},
           "application/strategic-merge-patch+json"), 200, "allowed: patch nodes (cordon)")
t.is_(call("PATCH", "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-a/scale",
           {"spec": {"replicas": 1}}, "application/merge-patch+json"), 200, "allowed: patch machinedeployments/scale")
t.is_(call("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/modelhub-models/pods"), 200, "allowed: metrics.k8s.io pods")
t.is_(call("DELETE", P + "/p1"), 200, "allowed: delete pods")
t.is_(call("POST", "/api/v1/namespaces/default/pods", pod_manifest("p2", ns="default")), 403,
      "forbidden: pods in another namespace")
t.is_(call("DELETE", "/api/v1/nodes/node-a"), 403, "forbidden: delete nodes")
t.is_(call("POST", "/api/v1/namespaces", {"metadata": {"name": "x"}}), 403, "forbidden: create namespaces")
t.is_(call("PATCH", P + "/p1", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json"), 403,
      "forbidden: patch pods (not in the list)")
r = sim.api("DELETE", "/api/v1/nodes/node-a", token="sa-token")
t.like(r.text, r'User \\"system:serviceaccount:modelhub:modelhub\\" cannot delete resource \\"nodes\\"',
       "Forbidden message names user, verb and resource")


def can_i(verb, resource, group="", ns=None, sub=None):
    ra = {"verb": verb, "resource": resource, "group": group}
    if ns:
        ra["namespace"] = ns
    if sub:
        ra["subresource"] = sub
    r = sim.api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                 "spec": {"resourceAttributes": ra}}, token="sa-token")
    return r.json().get("status", {}).get("allowed") if r.status == 201 else r.status


t.is_(can_i("get", "nodes", sub="proxy"), True, "SelfSubjectAccessReview: get nodes/proxy allowed")
t.is_(can_i("watch", "pods", ns="modelhub-models"), True, "SelfSubjectAccessReview: watch pods in the models namespace")
t.is_(can_i("create", "pods", ns="default"), False, "SelfSubjectAccessReview: create pods in default denied")
sim.stop()

# the simulator's own bad input: missing options, a malformed config
import subprocess  # noqa: E402
from simtest import KUBESIM, PY  # noqa: E402
r = subprocess.run([PY, KUBESIM, "--port", "0"], capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 2 and "--state-dir" in r.stderr, "kubesim without --state-dir: usage error")
badcfg = os.path.join(sim.tmp, "bad.json")
with open(badcfg, "w") as f:
    f.write("{nodes: [")
r = subprocess.run([PY, KUBESIM, "--port", "0", "--state-dir", sim.tmp, "--config", badcfg],
                   capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 1 and "kubesim: bad config" in r.stderr, "a malformed config is refused at start")
t.done()
