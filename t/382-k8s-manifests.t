#!/usr/bin/python3
# 382-k8s-manifests.t — deploy/k8s: `kubectl kustomize` renders both overlays, `kubectl apply --dry-run=client -k` passes for each against the simulator, every image is one scripts/build-image tags, and the hub runs as the issue asks: replicas, probes, resources, PDB, topology spread, restricted securityContext, the API token only in modelhubd, NetworkPolicy, Ingress with TLS.
import base64
import os
import subprocess
import sys
import tempfile

TOP = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(TOP, "t", "kube"))
from simtest import KUBECTL, KubeSim, base_config  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
try:
    import yaml
except ImportError:
    t.skip_all("python3-yaml not installed")
if not os.access(KUBECTL, os.X_OK):
    t.skip_all("no %s" % KUBECTL)

K8S = os.path.join(TOP, "deploy", "k8s")
OVERLAYS = ["local-postgres", "external-postgres"]
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def kustomize(path):
    r = subprocess.run([KUBECTL, "kustomize", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    return r.returncode, [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else r.stderr


tags = set()
for flag in ([], ["--postgres"]):
    r = subprocess.run([os.path.join(TOP, "scripts", "build-image"), "--print-tag"] + flag,
                       stdout=subprocess.PIPE, text=True)
    tags.add(r.stdout.strip())
t.is_(len(tags), 2, "scripts/build-image tags %s" % " and ".join(sorted(tags)))

rendered = {}
for o in OVERLAYS:
    rc, docs = kustomize(os.path.join(K8S, "overlays", o))
    t.ok(rc == 0, "kubectl kustomize overlays/%s renders (%s objects)" % (o, len(docs) if rc == 0 else docs))
    rendered[o] = docs if rc == 0 else []

# ---- kubectl apply --dry-run=client against the simulator (discovery + object GETs).
# --validate=false: client-side schema validation needs the OpenAPI documents
# of a real API server, which the simulator does not carry.
sim = KubeSim(base_config(), tls=True).start()
for o in OVERLAYS:
    rc, out, err = sim.kubectl("apply", "--dry-run=client", "--validate=false", "-k",
                               os.path.join(K8S, "overlays", o), timeout=90)
    lines = [x for x in out.splitlines() if x.strip()]
    t.ok(rc == 0 and len(lines) == len(rendered[o]) and all("(dry run)" in x for x in lines),
         "kubectl apply --dry-run=client -k overlays/%s: %d objects" % (o, len(lines)))
    if rc != 0:
        t.diag(err[-2000:])
t.is_(sim.api("GET", "/apis/apps/v1/namespaces/modelhub/deployments/modelhub").status, 404,
      "  the dry run created nothing")
sim.stop()


def of(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


for o in OVERLAYS:
    docs = rendered[o]
    pods = [(d["kind"], d["metadata"]["name"], d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    images = sorted({c["image"] for _, _, spec in pods for c in containers(spec)})
    t.ok(images and set(images) <= tags, "%s: every image is one build-image tags (%s)" % (o, " ".join(images)))
    for kind, name, spec in pods:
        sc = spec.get("securityContext", {})
        t.ok(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) > 0
             and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
             "%s %s %s: non-root, seccomp RuntimeDefault" % (o, kind, name))
        bad = [c["name"] for c in containers(spec)
               if not (c.get("securityContext", {}).get("allowPrivilegeEscalation") is False
                       and c["securityContext"].get("readOnlyRootFilesystem") is True
                       and c["securityContext"].get("capabilities", {}).get("drop") == ["ALL"])]
        t.is_(bad, [], "  every container: no privilege escalation, read-only root, capabilities dropped")
        t.is_([c["name"] for c in containers(spec) if not (c.get("resources", {}).get("requests")
                                                        and c["resources"].get("limits", {}).get("memory"))],
              [], "  every container has requests and a memory limit")
        t.is_(spec.get("automountServiceAccountToken"), False, "  no automatic API token")

dep = of(rendered["external-postgres"], "Deployment", "modelhub")[0]
spec = dep["spec"]["template"]["spec"]
byname = {c["name"]: c for c in containers(spec)}
t.ok(dep["spec"]["replicas"] >= 2, "hub Deployment: %d replicas" % dep["spec"]["replicas"])
t.is_(dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0, "  rolls without taking a replica away first")
rp = byname["nginx"].get("readinessProbe", {}).get("httpGet", {})
t.is_((rp.get("path"), rp.get("port")), ("/api/health", "http"), "  readiness: GET /api/health")
fl = " ".join(byname["fcgi"].get("livenessProbe", {}).get("exec", {}).get("command", []))
t.ok("cgi-fcgi" in fl and "/api/ping" in fl and "/run/modelhub/fcgi.sock" in fl,
     "  fcgi liveness: /api/ping over the FastCGI socket")
t.is_(byname["modelhubd"].get("livenessProbe", {}).get("exec", {}).get("command"),
      ["modelhubctl", "-c", "/etc/modelhub/modelhub.conf", "alive"], "  modelhubd liveness: modelhubctl alive")
t.is_(byname["migrate"]["args"][-1], "migrate", "  init container runs the migrations")
tsc = spec.get("topologySpreadConstraints", [])
t.is_(sorted(c["topologyKey"] for c in tsc), ["kubernetes.io/hostname", "topology.kubernetes.io/zone"],
      "  spread over nodes and zones")
api_mounts = [c["name"] for c in containers(spec) for m in c.get("volumeMounts", []) if m["mountPath"] == SA_DIR]
t.is_(api_mounts, ["modelhubd"], "  the API token is mounted in modelhubd only")
vol = next(v for v in spec["volumes"] if v["name"] == "kube-api")
t.ok(any("serviceAccountToken" in s for s in vol["projected"]["sources"]), "  as a projected (rotated) token")
env = {e["name"]: e for e in byname["modelhubd"].get("env", [])}
t.is_(env.get("MODELHUB_HUB_REPLICA_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"),
      "metadata.name", "  replica id = pod name")
t.is_(env.get("MODELHUB_KUBE_SCRAPE", {}).get("value"), "metrics-server", "  metrics from metrics.k8s.io")

sas = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in of(rendered["external-postgres"], "ServiceAccount")}
t.ok(sas and all(s.get("automountServiceAccountToken") is False for s in sas.values()),
     "ServiceAccounts do not mount tokens by default")
pdb = of(rendered["external-postgres"], "PodDisruptionBudget")
t.ok(pdb and pdb[0]["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
     and pdb[0]["spec"].get("minAvailable") == 1, "PodDisruptionBudget keeps one hub replica")
svc = of(rendered["external-postgres"], "Service", "modelhub")[0]
t.is_(svc["spec"]["selector"], dep["spec"]["selector"]["matchLabels"], "Service selects the hub pods")

nps = {n["metadata"]["name"]: n for n in of(rendered["local-postgres"], "NetworkPolicy")}
models = nps.get("modelhub-models", {}).get("spec", {})
frm = [f for rule in models.get("ingress", []) for f in rule.get("from", [])]
t.ok(models.get("podSelector") == {} and frm and all(
    f.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "modelhub"}
    and f.get("podSelector", {}).get("matchLabels") == dep["spec"]["selector"]["matchLabels"] for f in frm),
    "NetworkPolicy: model pods reachable only from hub pods")
hub = nps.get("modelhub-hub", {}).get("spec", {})
ports = sorted(p["port"] for rule in hub.get("egress", []) for p in rule.get("ports", []))
t.ok(set(hub.get("policyTypes", [])) == {"Ingress", "Egress"} and {443, 6443, 5432, 53} <= set(ports)
     and any(any(x.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "modelhub-models"}
                 for x in rule.get("to", [])) for rule in hub.get("egress", [])),
     "NetworkPolicy: hub egress to DNS, the API server, Postgres and the model namespace only")
pg = nps.get("modelhub-postgres", {}).get("spec", {})
t.ok(pg.get("ingress") and pg["ingress"][0]["from"][0]["podSelector"]["matchLabels"] ==
     dep["spec"]["selector"]["matchLabels"], "NetworkPolicy: Postgres reachable only from hub pods")

sts = of(rendered["local-postgres"], "StatefulSet", "modelhub-postgres")
t.ok(sts and sts[0]["spec"]["volumeClaimTemplates"], "local-postgres: a Postgres StatefulSet with a volume")
sec = of(rendered["local-postgres"], "Secret", "modelhub-db")
data = {k: base64.b64decode(v).decode() for k, v in (sec[0].get("data") or {}).items()} if sec else {}
t.ok(sorted(data) == ["conninfo", "password"] and "password" not in data["conninfo"],
     "local-postgres: Secret modelhub-db (conninfo without the password, password apart)")
t.ok(not of(rendered["external-postgres"], "Secret"), "external-postgres: no Secret in the manifests (the operator's)")

# ---- the Ingress example, added to an overlay as a component
with tempfile.TemporaryDirectory(prefix="modelhub-k8s-") as tmp:
    rel = os.path.relpath(K8S, tmp)
    with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
        f.write("resources:\n  - %s/overlays/external-postgres\ncomponents:\n  - %s/components/ingress-tls\n"
                % (rel, rel))
    rc, docs = kustomize(tmp)
ing = of(docs, "Ingress") if rc == 0 else []
t.ok(ing and ing[0]["spec"]["tls"][0]["secretName"] and
     ing[0]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "modelhub",
     "components/ingress-tls: Ingress with TLS to the hub Service")
t.done()
