"""kubesim_core.py — shared pieces of the Kubernetes API simulator: quantities,
Status errors, label/field selectors, merge and JSON patches, the object store
with its watch history, the API resource table, and pod status helpers.

Runs in: the kubesim.py process (t/kube/).
Called by: kubesim_cluster.py (scheduler, kubelet, controllers) and
  kubesim_api.py (HTTP handler).
Owns: nothing global except the Store instance each Sim creates.
"""

import collections
import copy
import datetime
import os
import random
import re
import sys
import threading
import time

PYTHON = "/usr/bin/python3"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
NODE_BASE_MEMORY = 256 * 1048576  # bytes the "node" itself uses in node_memory_working_set_bytes
MAX_EVENTS = 5000  # Event objects kept; the oldest are deleted beyond this

TIMING_DEFAULTS = {
    "pull_seconds": 0.2,       # image pull
    "backoff_initial": 1.0,    # first CrashLoopBackOff / ImagePullBackOff delay
    "backoff_max": 8.0,        # back-off cap (kubelet: 300 s)
    "probe_period": 0.5,       # cap on readinessProbe.periodSeconds
    "poll": 0.1,               # container watchdog (exit, RSS, probes)
    "scheduler_period": 0.2,   # scheduling pass
    "unschedulable_event_every": 10.0,  # re-emit FailedScheduling at most this often
    "node_ready_delay": 2.0,   # new MachineDeployment node -> Ready
    "provision_seconds": 0.0,  # new Machine -> its Node registers (per MachineDeployment: "provision_seconds")
    "sample_period": 0.5,      # /proc scan
    "bookmark_every": 5.0,     # idle watch with allowWatchBookmarks=true -> BOOKMARK event
}


def log(msg, _level="info", **kv):
    """One line per event on stderr: ts level role pid msg key=value."""
    ts = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    fields = "".join(" %s=%s" % (k, v) for k, v in kv.items())
    sys.stderr.write("%s.%03dZ %s kubesim pid=%d %s%s\n"
                     % (stamp, int(ts * 1000) % 1000, _level, os.getpid(), msg, fields))
    sys.stderr.flush()


def iso(t=None):
    if t is None:
        t = time.time()
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def rand_suffix(n=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


# ---------------------------------------------------------------- quantities

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9,
           "T": 1e12, "P": 1e15, "E": 1e18}
_QRE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)$")


def qty(v):
    """Kubernetes quantity (string or number) -> float in base units; ValueError if bad."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = _QRE.match(str(v).strip())
    if not m:
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def fmt_cpu(cores):
    return "%dn" % int(cores * 1e9)


def fmt_mem(b):
    return "%dKi" % int(b // 1024)


# ---------------------------------------------------------------- errors

class ApiError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


def not_found(res, name, group=""):
    return ApiError(404, "NotFound", '%s "%s" not found' % (res if not group else res + "." + group, name),
                    {"name": name, "group": group, "kind": res} if group else {"name": name, "kind": res})


def invalid(kind, name, msg):
    """422 Invalid; msg is "field.path: Reason: detail" as the API server words it."""
    field, _, rest = msg.partition(": ")
    reason = "FieldValueRequired" if rest.startswith("Required") else (
        "FieldValueForbidden" if rest.startswith("Forbidden") else "FieldValueInvalid")
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (kind, name, msg),
                    {"name": name, "kind": kind,
                     "causes": [{"reason": reason, "message": rest or msg, "field": field}]})


def gone(msg):
    return ApiError(410, "Expired", msg)


# ---------------------------------------------------------------- selectors

def _split_terms(s):
    terms, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise ApiError(400, "BadRequest", "unable to parse requirement: unbalanced parenthesis")
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


_LBL = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"


def parse_label_selector(s):
    """labelSelector text -> list of (key, op, values); ApiError 400 when invalid."""
    reqs = []
    for t in _split_terms(s or ""):
        m = re.match(r"^(%s)\s+(in|notin)\s+\((.*)\)$" % _LBL, t)
        if m:
            vals = [v.strip() for v in m.group(3).split(",") if v.strip()]
            reqs.append((m.group(1), m.group(2), set(vals)))
            continue
        m = re.match(r"^(!?)(%s)$" % _LBL, t)
        if m:
            reqs.append((m.group(2), "!" if m.group(1) else "exists", None))
            continue
        m = re.match(r"^(%s)\s*(==|=|!=)\s*([A-Za-z0-9_.\-]*)$" % _LBL, t)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, {m.group(3)}))
            continue
        raise ApiError(400, "BadRequest", "unable to parse requirement: invalid label selector: %r" % t)
    return reqs


def label_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        have = key in labels
        if op == "exists" and not have:
            return False
        if op == "!" and have:
            return False
        if op in ("=", "in") and (not have or labels[key] not in vals):
            return False
        if op in ("!=", "notin") and have and labels[key] in vals:
            return False
    return True


def selector_from_match(sel):
    """A LabelSelector object (matchLabels/matchExpressions) -> reqs."""
    reqs = [(k, "=", {v}) for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(e.get("operator"))
        if op:
            reqs.append((e.get("key"), op, set(e.get("values") or [])))
    return reqs


FIELDS = {
    "pods": {"metadata.name", "metadata.namespace", "status.phase", "spec.nodeName",
             "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "status.podIP", "status.nominatedNodeName"},
    "events": {"metadata.name", "metadata.namespace", "involvedObject.kind",
               "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
    "nodes": {"metadata.name", "spec.unschedulable"},
}


def parse_field_selector(res, s):
    reqs = []
    for t in _split_terms(s or ""):
        m = re.match(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$", t)
        if not m:
            raise ApiError(400, "BadRequest", "invalid selector: '%s'; can't understand '%s'" % (s, t))
        field = m.group(1)
        allowed = FIELDS.get(res, {"metadata.name", "metadata.namespace"})
        if field not in allowed:
            raise ApiError(400, "BadRequest", '"%s" is not a known field selector: only "%s"'
                           % (field, ", ".join(sorted(allowed))))
        reqs.append((field, m.group(2) == "!=", m.group(3)))
    return reqs


def field_value(obj, field):
    if field == "source":
        return (obj.get("source") or {}).get("component", "")
    cur = obj
    for p in field.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_match(reqs, obj):
    for field, neg, val in reqs:
        if (field_value(obj, field) == val) == neg:
            return False
    return True


# ---------------------------------------------------------------- patches

def merge_patch(target, patch, strategic=False):
    """RFC 7386 merge patch (strategic merge treated as merge; '$' directives dropped)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if strategic and k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v, strategic)
    return out


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", "invalid JSON pointer %r" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 JSON patch (add, remove, replace, test, move, copy)."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be an array")

    def walk(parts):
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    try:
        for op in ops:
            o, parts = op.get("op"), _ptr(op.get("path", ""))
            if o == "test":
                cur = doc
                for p in parts:
                    cur = cur[int(p)] if isinstance(cur, list) else cur[p]
                if cur != op.get("value"):
                    raise ApiError(422, "Invalid", "test operation failed for path %s" % op.get("path"))
                continue
            if o in ("move", "copy"):
                src, key = walk(_ptr(op["from"]))
                val = src[int(key)] if isinstance(src, list) else src[key]
                if o == "move":
                    if isinstance(src, list):
                        del src[int(key)]
                    else:
                        del src[key]
                o, op = "add", {"value": copy.deepcopy(val)}
            parent, key = walk(parts)
            if o == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if key == "-" else int(key), op["value"])
                else:
                    parent[key] = op["value"]
            elif o == "remove":
                if isinstance(parent, list):
                    del parent[int(key)]
                else:
                    del parent[key]
            elif o == "replace":
                if isinstance(parent, list):
                    parent[int(key)] = op["value"]
                else:
                    if key not in parent:
                        raise KeyError(key)
                    parent[key] = op["value"]
            else:
                raise ApiError(400, "BadRequest", "unknown json patch op %r" % o)
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request: %s" % e)
    return doc


# ---------------------------------------------------------------- store

class Store:
    """Objects by resource, then (namespace, name), plus the bounded watch history."""

    def __init__(self, history):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = int(time.time() * 1_000_000)
        self.epoch = self.rv  # first version of this run: older ones are 410
        self.objs = collections.defaultdict(dict)  # res -> (ns, name) -> object
        self.hist = collections.deque(maxlen=history)
        self.dropped = False  # history has overflowed at least once
        self.dirty = False

    def oldest(self):
        """Smallest resourceVersion a watch may resume from."""
        if self.dropped and self.hist:
            return self.hist[0][0] - 1
        return self.epoch

    def _record(self, res, typ, obj, old):
        if len(self.hist) == self.hist.maxlen:
            self.dropped = True
        self.hist.append((self.rv, res, obj["metadata"].get("namespace", ""), typ,
                          copy.deepcopy(obj), old))
        self.dirty = True
        self.cond.notify_all()

    def get(self, res, ns, name):
        return self.objs[res].get((ns or "", name))

    def list(self, res, ns=None):
        """Objects of res (in namespace ns), sorted by namespace and name."""
        return [o for (n, _), o in sorted(self.objs[res].items()) if ns is None or n == ns]

    def values(self, res):
        """Objects of res in no particular order (controllers' scans)."""
        return list(self.objs[res].values())

    def put_raw(self, res, obj):
        """Insert without a version or event (state restore)."""
        md = obj["metadata"]
        self.objs[res][(md.get("namespace", ""), md["name"])] = obj

    def since(self, rv):
        """History entries newer than rv, oldest first."""
        out = []
        for h in reversed(self.hist):
            if h[0] <= rv:
                break
            out.append(h)
        out.reverse()
        return out

    def add(self, res, obj):
        with self.lock:
            md = obj["metadata"]
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objs[res][(md.get("namespace", ""), md["name"])] = obj
            self._record(res, "ADDED", obj, None)
            return obj

    def mutate(self, res, ns, name, fn, uid=None):
        """Apply fn(obj) in place; record MODIFIED if it changed. Returns obj or None."""
        with self.lock:
            obj = self.get(res, ns, name)
            if obj is None or (uid and obj["metadata"].get("uid") != uid):
                return None
            old = copy.deepcopy(obj)
            fn(obj)
            if obj != old:
                self.rv += 1
                obj["metadata"]["resourceVersion"] = str(self.rv)
                self._record(res, "MODIFIED", obj, old)
            return obj

    def replace(self, res, obj):
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            old = self.objs[res].get(key)
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objs[res][key] = obj
            self._record(res, "MODIFIED", obj, old)
            return obj

    def remove(self, res, ns, name, uid=None):
        with self.lock:
            obj = self.get(res, ns, name)
            if obj is None or (uid and obj["metadata"].get("uid") != uid):
                return None
            del self.objs[res][(ns or "", name)]
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(res, "DELETED", obj, None)
            return obj


# ---------------------------------------------------------------- API metadata

CORE = ("", "v1")
METRICS = ("metrics.k8s.io", "v1beta1")
CAPI = ("cluster.x-k8s.io", "v1beta1")
AUTHZ = ("authorization.k8s.io", "v1")
RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# (group, version) -> resource -> description; "store" is the Store key
RESOURCES = {
    CORE: {
        "pods": {"kind": "Pod", "singular": "pod", "ns": True, "verbs": RW, "short": ["po"],
                 "subs": {"status": ["get", "patch", "update"], "log": ["get"]}, "store": "pods"},
        "events": {"kind": "Event", "singular": "event", "ns": True, "verbs": RW, "short": ["ev"],
                   "subs": {}, "store": "events"},
        "nodes": {"kind": "Node", "singular": "node", "ns": False, "verbs": RW, "short": ["no"],
                  "subs": {"status": ["get", "patch", "update"],
                           "proxy": ["create", "delete", "get", "patch", "update"]}, "store": "nodes"},
        "configmaps": {"kind": "ConfigMap", "singular": "configmap", "ns": True, "verbs": RW, "short": ["cm"],
                       "subs": {}, "store": "configmaps"},
        "namespaces": {"kind": "Namespace", "singular": "namespace", "ns": False,
                       "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                       "short": ["ns"], "subs": {"status": ["get", "patch", "update"]},
                       "store": "namespaces"},
    },
    METRICS: {
        "pods": {"kind": "PodMetrics", "singular": "", "ns": True, "verbs": ["get", "list"],
                 "short": [], "subs": {}, "store": None},
        "nodes": {"kind": "NodeMetrics", "singular": "", "ns": False, "verbs": ["get", "list"],
                  "short": [], "subs": {}, "store": None},
    },
    CAPI: {
        "machinedeployments": {"kind": "MachineDeployment", "singular": "machinedeployment",
                               "ns": True, "verbs": RW, "short": ["md"],
                               "subs": {"scale": ["get", "patch", "update"],
                                        "status": ["get", "patch", "update"]},
                               "store": "cluster.x-k8s.io/machinedeployments"},
        "machines": {"kind": "Machine", "singular": "machine", "ns": True, "verbs": RW,
                     "short": ["ma"], "subs": {"status": ["get", "patch", "update"]},
                     "store": "cluster.x-k8s.io/machines"},
    },
}
RESOURCES[AUTHZ] = {
    "selfsubjectaccessreviews": {"kind": "SelfSubjectAccessReview", "singular": "", "ns": False,
                                 "verbs": ["create"], "short": [], "subs": {}, "store": None},
}
# The other objects of a modelhub installation (deploy/k8s): stored as sent,
# no controller acts on them. kubectl apply -k deploy/k8s/overlays/...
# (t/382-k8s-manifests.t, also with --dry-run=client) needs their discovery.
APPS, RBAC = ("apps", "v1"), ("rbac.authorization.k8s.io", "v1")
POLICY, NETWORKING = ("policy", "v1"), ("networking.k8s.io", "v1")
for _gv, _res, _kind, _ns, _short in (
        (CORE, "serviceaccounts", "ServiceAccount", True, ["sa"]),
        (CORE, "secrets", "Secret", True, []),
        (CORE, "services", "Service", True, ["svc"]),
        (APPS, "deployments", "Deployment", True, ["deploy"]),
        (APPS, "statefulsets", "StatefulSet", True, ["sts"]),
        (RBAC, "roles", "Role", True, []),
        (RBAC, "rolebindings", "RoleBinding", True, []),
        (RBAC, "clusterroles", "ClusterRole", False, []),
        (RBAC, "clusterrolebindings", "ClusterRoleBinding", False, []),
        (POLICY, "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"]),
        (NETWORKING, "networkpolicies", "NetworkPolicy", True, ["netpol"]),
        (NETWORKING, "ingresses", "Ingress", True, ["ing"])):
    RESOURCES.setdefault(_gv, {}).setdefault(_res, {
        "kind": _kind, "singular": _kind.lower(), "ns": _ns, "verbs": RW, "short": _short, "subs": {},
        "store": _res if not _gv[0] else _gv[0] + "/" + _res})
KIND_OF = {}  # store key -> (kind, apiVersion)
for (_g, _v), _rs in RESOURCES.items():
    for _r, _d in _rs.items():
        if _d["store"]:
            KIND_OF[_d["store"]] = (_d["kind"], _v if not _g else _g + "/" + _v)


def api_resource_list(gv):
    group, version = gv
    out = []
    for name, d in RESOURCES[gv].items():
        r = {"name": name, "singularName": d["singular"], "namespaced": d["ns"], "kind": d["kind"],
             "verbs": d["verbs"]}
        if d["short"]:
            r["shortNames"] = d["short"]
        if name == "pods" and gv == CORE:
            r["categories"] = ["all"]
        out.append(r)
        for sub, verbs in d["subs"].items():
            s = {"name": name + "/" + sub, "singularName": "", "namespaced": d["ns"],
                 "kind": d["kind"], "verbs": verbs}
            if sub == "scale":
                s.update(group="autoscaling", version="v1", kind="Scale")
            elif sub == "proxy":
                s["kind"] = "NodeProxyOptions"
            elif sub == "log":
                s["kind"] = "Pod"
            out.append(s)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": version if not group else group + "/" + version, "resources": out}


def api_group(gv):
    gvs = {"groupVersion": gv[0] + "/" + gv[1], "version": gv[1]}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": gv[0], "versions": [gvs],
            "preferredVersion": gvs}


VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-kubesim",
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
           "platform": "linux/amd64"}

SYNTHETIC_IMAGE = "kubesim/synthetic"  # containers without a process (benchmarks)
KEY_MD = "cluster.x-k8s.io/machinedeployments"
KEY_MACHINE = "cluster.x-k8s.io/machines"


def image_repo(image):
    """"reg:5000/modelhub/x:tag@sha256:..." -> "reg:5000/modelhub/x"."""
    image = image.split("@")[0]
    head, _, last = image.rpartition("/")
    last = last.split(":")[0]
    return head + "/" + last if head else last


def node_ready(node):
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_requests(pod):
    """(cpu cores, memory bytes) requested by the pod's containers (limits when no request)."""
    cpu = mem = 0.0
    for c in pod["spec"].get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        cpu += qty(req.get("cpu", lim.get("cpu", 0)))
        mem += qty(req.get("memory", lim.get("memory", 0)))
    return cpu, mem


def terminal(pod):
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")



def qos_class(pod):
    guaranteed, any_set = True, False
    for c in pod["spec"]["containers"]:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for k in ("cpu", "memory"):
            if k not in lim or qty(req.get(k, lim.get(k))) != qty(lim[k]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def set_condition(pod, typ, status, reason=None, message=None):
    conds = pod["status"].setdefault("conditions", [])
    for c in conds:
        if c["type"] == typ:
            if c["status"] != status:
                c["lastTransitionTime"] = iso()
            c["status"] = status
            for k, v in (("reason", reason), ("message", message)):
                if v is None:
                    c.pop(k, None)
                else:
                    c[k] = v
            return
    c = {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": iso()}
    if reason is not None:
        c["reason"] = reason
    if message is not None:
        c["message"] = message
    conds.append(c)


def pod_recompute(pod):
    """Phase and Ready/ContainersReady conditions from the container statuses."""
    st = pod["status"]
    css = st.get("containerStatuses") or []
    if not pod["spec"].get("nodeName") or not css:
        st["phase"] = "Pending"
        return
    policy = pod["spec"].get("restartPolicy", "Always")
    ok = all("terminated" in c["state"] and c["state"]["terminated"]["exitCode"] == 0 for c in css)
    final = pod["metadata"].get("deletionTimestamp") or policy == "Never" or (policy == "OnFailure" and ok)
    if all("terminated" in c["state"] for c in css) and final:
        st["phase"] = "Succeeded" if ok else "Failed"
    elif any("waiting" in c["state"] and c["restartCount"] == 0 and not c.get("lastState")
             for c in css):
        st["phase"] = "Pending"
    else:
        st["phase"] = "Running"
    ready = all(c["ready"] for c in css)
    if st["phase"] in ("Succeeded", "Failed"):
        set_condition(pod, "ContainersReady", "False", "PodCompleted")
        set_condition(pod, "Ready", "False", "PodCompleted")
    elif ready:
        set_condition(pod, "ContainersReady", "True")
        set_condition(pod, "Ready", "True")
    else:
        bad = [c["name"] for c in css if not c["ready"]]
        msg = "containers with unready status: [%s]" % " ".join(bad)
        set_condition(pod, "ContainersReady", "False", "ContainersNotReady", msg)
        set_condition(pod, "Ready", "False", "ContainersNotReady", msg)
    conds = st.get("conditions") or []
    order = {"PodReadyToStartContainers": 0, "Initialized": 1, "Ready": 2, "ContainersReady": 3, "PodScheduled": 4}
    conds.sort(key=lambda c: order.get(c["type"], 9))


def tolerates(tols, taint):
    for t in tols or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_affinity_ok(pod, labels):
    for k, v in (pod["spec"].get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms")
    if not terms:
        return True
    for term in terms:
        ok = True
        for e in term.get("matchExpressions") or []:
            k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
            have = k in labels
            if op == "In":
                ok = have and labels[k] in vals
            elif op == "NotIn":
                ok = not have or labels[k] not in vals
            elif op == "Exists":
                ok = have
            elif op == "DoesNotExist":
                ok = not have
            elif op in ("Gt", "Lt"):
                try:
                    a, b = int(labels.get(k, "")), int(vals[0])
                    ok = a > b if op == "Gt" else a < b
                except (ValueError, IndexError):
                    ok = False
            if not ok:
                break
        if ok:
            return True
    return False
