#!/usr/bin/python3
# 354-rbac.t — deploy/k8s grants the modelhub ServiceAccount exactly the API permissions in t/kube/required-permissions.txt that apply to the chosen configuration (each overlay, base + each component), and the simulator enforces the list for a token.
"""Renders deploy/k8s with `kubectl kustomize` (each overlay as shipped, and
the base with each component deploy/k8s/components/<key>-<value> alone) and
parses the objects (python3-yaml). A line of t/kube/required-permissions.txt
applies when its conditions (key=value words other than ns=) name the
configuration's components; lines without a condition always apply. For each
rendering: every applying line is granted through a RoleBinding or
ClusterRoleBinding to ServiceAccount modelhub/modelhub in the right scope;
nothing else is granted (no unused verb); no rule uses "*"; pod permissions
are namespaced. Then the Deployment's shape the backend relies on, and
kubesim enforcing the list for a token (allow_file)."""

import glob
import os
import subprocess
import sys
import tempfile

TOP = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(TOP, "t", "kube"))
from simtest import KUBECTL, KubeSim, base_config, pod_manifest  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
try:
    import yaml
except ImportError:
    t.skip_all("python3-yaml not installed")
if not os.access(KUBECTL, os.X_OK):
    t.skip_all("no %s (kubectl kustomize renders deploy/k8s)" % KUBECTL)

K8S = os.path.join(TOP, "deploy", "k8s")
PERMS = os.path.join(TOP, "t", "kube", "required-permissions.txt")
SA = ("modelhub", "modelhub")  # namespace, name
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def load_perms(path):
    """[(verb, resource, group, ns or None, {condition key: value})]"""
    out = []
    with open(path) as f:
        for ln in f:
            parts = ln.split("#")[0].split()
            if not parts:
                continue
            ns = next((p[3:] for p in parts[2:] if p.startswith("ns=")), None)
            cond = dict(p.split("=", 1) for p in parts[2:] if "=" in p and not p.startswith("ns="))
            grp = next((p for p in parts[2:] if "=" not in p), "")
            out.append((parts[0], parts[1], grp, ns, cond))
    return out


def render(path):
    r = subprocess.run([KUBECTL, "kustomize", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    if r.returncode != 0:
        t.diag(r.stderr)
        return None
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def render_with(components):
    """base + the given component directories, through a temporary kustomization."""
    with tempfile.TemporaryDirectory(prefix="modelhub-k8s-") as tmp:
        rel = os.path.relpath(K8S, tmp)
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                    "resources:\n  - %s/base\n" % rel)
            if components:
                f.write("components:\n" + "".join("  - %s/components/%s\n" % (rel, c) for c in components))
        return render(tmp)


def grants_of(docs):
    """{(verb, resource, group, namespace or None)} reachable by the ServiceAccount; bad bindings."""
    roles = {(None if r["kind"] == "ClusterRole" else r["metadata"].get("namespace"), r["kind"],
              r["metadata"]["name"]): r for r in docs if r["kind"] in ("Role", "ClusterRole")}
    grants, bad = set(), []
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subj = [(x.get("namespace"), x.get("name")) for x in b.get("subjects") or [] if x.get("kind") == "ServiceAccount"]
        if SA not in subj:
            bad.append("%s %s: subject is not ServiceAccount modelhub/modelhub" % (b["kind"], b["metadata"]["name"]))
            continue
        ref = b["roleRef"]
        role = roles.get((None if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"], ref["kind"], ref["name"]))
        if role is None:
            bad.append("%s %s refers to no role" % (b["kind"], b["metadata"]["name"]))
            continue
        scope = None if b["kind"] == "ClusterRoleBinding" else b["metadata"]["namespace"]
        for rule in role.get("rules") or []:
            for g in rule.get("apiGroups") or []:
                for res in rule.get("resources") or []:
                    for v in rule.get("verbs") or []:
                        grants.add((v, res, g, scope))
    return grants, bad


def check(name, docs, config, perms):
    """One rendering against the lines that apply to config {key: value}."""
    if docs is None:
        t.fail("%s renders" % name)
        return
    t.ok(all(d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name") for d in docs)
         and all(d["kind"] in CLUSTER_KINDS or d["metadata"].get("namespace") for d in docs),
         "%s: every object has apiVersion, kind, name and (namespaced kinds) a namespace" % name)
    wild = ["%s %s" % (d["kind"], d["metadata"]["name"]) for d in docs for rule in d.get("rules") or []
            if any("*" in (rule.get(k) or []) for k in ("verbs", "resources", "apiGroups"))]
    t.is_(wild, [], "%s: no rule uses a wildcard" % name)
    grants, bad = grants_of(docs)
    t.is_(bad, [], "%s: every binding names an existing role and the ServiceAccount" % name)
    need = [p for p in perms if all(config.get(k) == v for k, v in p[4].items())]
    missing = ["%s %s %s ns=%s" % (v, r, g or '""', ns) for v, r, g, ns, _ in need
               if (v, r, g, None) not in grants and not (ns and (v, r, g, ns) in grants)]
    t.is_(missing, [], "%s: every call of this configuration is granted in its scope (%d)" % (name, len(need)))
    needed = {(v, r, g) for v, r, g, _, _ in need}
    extra = sorted("%s %s %s" % x[:3] for x in grants if x[:3] not in needed)
    t.is_(extra, [], "%s: no unused verb (nothing granted beyond the calls)" % name)
    t.is_([x for x in grants if x[1].startswith("pods") and x[2] == "" and x[3] is None], [],
          "%s: pod permissions are namespaced, not cluster-wide" % name)


perms = load_perms(PERMS)
t.ok(len(perms) >= 10, "required-permissions.txt lists the backend's calls (%d)" % len(perms))
cond_keys = {k for p in perms for k in p[4]}
comps = sorted(os.path.basename(d) for d in glob.glob(os.path.join(K8S, "components", "*"))
               if os.path.isfile(os.path.join(d, "kustomization.yaml")))
mode_comps = [c for c in comps if c.split("-", 1)[0] in cond_keys]
for p in perms:
    for k, v in p[4].items():
        if "%s-%s" % (k, v) not in comps:
            t.fail("condition %s=%s has a component deploy/k8s/components/%s-%s" % (k, v, k, v))
t.ok(mode_comps, "components per configuration: %s" % " ".join(mode_comps))

overlays = sorted(os.path.basename(d) for d in glob.glob(os.path.join(K8S, "overlays", "*")))
t.is_(overlays, ["external-postgres", "local-postgres"], "overlays external-postgres and local-postgres")
rendered = {}
for o in overlays:
    with open(os.path.join(K8S, "overlays", o, "kustomization.yaml")) as f:
        kz = yaml.safe_load(f)
    used = [os.path.basename(c.rstrip("/")) for c in kz.get("components") or []]
    config = dict(c.split("-", 1) for c in used if c.split("-", 1)[0] in cond_keys)
    rendered[o] = render(os.path.join(K8S, "overlays", o))
    check("overlay %s (%s)" % (o, " ".join("%s=%s" % kv for kv in sorted(config.items())) or "base"),
          rendered[o], config, perms)
check("base alone", render_with([]), {}, perms)
for c in mode_comps:
    key, val = c.split("-", 1)
    check("base + components/%s" % c, render_with([c]), {key: val}, perms)

docs = [("rendered", d) for d in rendered.get("external-postgres") or []]


def of(kind):
    return [d for _, d in docs if d["kind"] == kind]


roles = {(r["metadata"].get("namespace"), r["kind"], r["metadata"]["name"]): r for r in of("Role") + of("ClusterRole")}

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
t.is_(call("GET", "/apis/metrics.k8s.io/v1beta1/nodes"), 200, "allowed: metrics.k8s.io nodes")
t.is_(call("PATCH", "/api/v1/nodes/node-a", {"spec": {"unschedulable": True}},
           "application/strategic-merge-patch+json"), 200, "allowed: patch nodes (cordon, autoscaler=clusterapi)")
t.is_(call("PATCH", "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-a/scale",
           {"spec": {"replicas": 1}}, "application/merge-patch+json"), 200,
      "allowed: patch machinedeployments/scale (autoscaler=clusterapi)")
t.is_(call("PUT", "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-a",
           {"metadata": {"name": "md-a"}}), 403, "forbidden: update machinedeployments (no code calls it)")
t.is_(call("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/modelhub-models/pods"), 200, "allowed: metrics.k8s.io pods")
t.is_(call("DELETE", P + "/p1"), 200, "allowed: delete pods")
t.is_(call("POST", "/api/v1/namespaces/default/pods", pod_manifest("p2", ns="default")), 403,
      "forbidden: pods in another namespace")
t.is_(call("DELETE", "/api/v1/nodes/node-a"), 403, "forbidden: delete nodes")
t.is_(call("POST", "/api/v1/namespaces", {"metadata": {"name": "x"}}), 403, "forbidden: create namespaces")
t.is_(call("PUT", P + "/p1", pod_manifest("p1")), 403,
      "forbidden: update pods (not in the list; patch is, for the no-evict annotations)")
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
