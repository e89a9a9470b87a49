#!/usr/bin/python3
"""kubesim.py — Kubernetes API simulator used to test modelhub's kubernetes backend.

Runs in: one process started by the tests under t/ (or by hand), as root or not.
Called by: the real kubectl, the python3-kubernetes client and modelhub's
  kubernetes backend (libcurl), over HTTP or HTTPS with a Bearer token.
Owns: the listening socket (ThreadingHTTPServer, one thread per connection), an
  in-memory object store (namespaces, pods, events, nodes, Cluster API
  MachineDeployments and Machines) with a bounded watch history, a controller
  thread (scheduler, node lifecycle, MachineDeployment reconciler, state dump),
  a sampler thread (/proc scan: CPU and RSS per process group), one "kubelet"
  thread per container, and the model processes it starts (one process group each).
Shared state: none outside the process except the optional state file
  <state-dir>/state.json and the container logs under <state-dir>/logs/.

DESIGN
The simulator implements the subset of the API that modelhub and kubectl use,
with the real wire formats: discovery (/version, /api, /api/v1, /apis, groups),
Status objects for errors, lists with labelSelector/fieldSelector/limit/continue,
watches (chunked JSON lines) resuming from a resourceVersion, 410 Gone when the
version left the bounded history or belongs to an earlier run (resourceVersions
start at the microsecond clock, so every start is a new epoch above all earlier
versions), merge / strategic-merge (as merge) / JSON patch, pods/log,
nodes/{n}/proxy/metrics/resource (Prometheus text computed from the real CPU time
and RSS of the pod processes), metrics.k8s.io PodMetrics/NodeMetrics, and the
autoscaling/v1 Scale subresource of MachineDeployments, which adds and removes
simulated nodes (Ready after a delay).

Pods really run: an image "modelhub/<name>:<tag>" (any registry prefix) maps
to the demo model <name> of --models-dir (names from its catalog.json, or the
"models" list of the config), started as
  /usr/bin/python3 <models-dir>/serve.py --model <name> --host <podIP> --port <port> <args>
with the container env. Every pod gets its own loopback address in 127.0.0.0/8
(127.<b>.x.y) as status.podIP. Memory limits are enforced by polling RSS
(OOMKilled, exit 137). Timings (pull, back-off, probe period) are shortened for
tests and set in the config's "timing" object.

Locking: one RLock (Store.lock) guards every object; a Condition on it wakes
watchers. Threads never hold the lock while sleeping, starting processes or
probing a pod over HTTP.
"""

import argparse
import base64
import collections
import copy
import datetime
import http.server
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

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
    "sample_period": 0.5,      # /proc scan
}


def log(msg, **kv):
    """One line per event on stderr: ts level role pid msg key=value."""
    ts = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    fields = "".join(" %s=%s" % (k, v) for k, v in kv.items())
    sys.stderr.write("%s.%03dZ info kubesim pid=%d %s%s\n"
                     % (stamp, int(ts * 1000) % 1000, os.getpid(), msg, fields))
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
    """Objects by (res, ns, name) plus the bounded watch history."""

    def __init__(self, history):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = int(time.time() * 1_000_000)
        self.epoch = self.rv  # first version of this run: older ones are 410
        self.objs = {}
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
        return self.objs.get((res, ns or "", name))

    def list(self, res, ns=None):
        return [o for (r, n, _), o in sorted(self.objs.items()) if r == res and (ns is None or n == ns)]

    def add(self, res, obj):
        with self.lock:
            md = obj["metadata"]
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objs[(res, md.get("namespace", ""), md["name"])] = obj
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
            key = (res, md.get("namespace", ""), md["name"])
            old = self.objs.get(key)
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objs[key] = obj
            self._record(res, "MODIFIED", obj, old)
            return obj

    def remove(self, res, ns, name, uid=None):
        with self.lock:
            obj = self.get(res, ns, name)
            if obj is None or (uid and obj["metadata"].get("uid") != uid):
                return None
            del self.objs[(res, ns or "", name)]
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(res, "DELETED", obj, None)
            return obj


# ---------------------------------------------------------------- API metadata

CORE = ("", "v1")
METRICS = ("metrics.k8s.io", "v1beta1")
CAPI = ("cluster.x-k8s.io", "v1beta1")
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


# ---------------------------------------------------------------- process sampler

class Sampler:
    """Scans /proc every sample_period: per process group CPU seconds and RSS bytes."""

    def __init__(self, period):
        self.period = period
        self.groups = {}  # pgid -> (cpu_seconds, rss_bytes)
        self.at = 0.0
        self.prev, self.prev_at = {}, 0.0
        self.lock = threading.Lock()

    @staticmethod
    def read_stat(pid):
        """(pgid, cpu_seconds, rss_bytes) of one process, or None."""
        try:
            with open("/proc/%s/stat" % pid, "rb") as f:
                data = f.read().decode("ascii", "replace")
        except OSError:
            return None
        f = data[data.rfind(")") + 2:].split()
        # f[0] is field 3 (state); utime=14 stime=15 cutime=16 cstime=17 rss=24
        try:
            cpu = (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / TICKS
            return int(f[2]), cpu, int(f[21]) * PAGE
        except (IndexError, ValueError):
            return None

    def scan(self):
        groups = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            st = self.read_stat(pid)
            if st:
                c, r = groups.get(st[0], (0.0, 0))
                groups[st[0]] = (c + st[1], r + st[2])
        with self.lock:
            self.prev, self.prev_at = self.groups, self.at
            self.groups, self.at = groups, time.time()

    def rate(self, pgid):
        """CPU cores used by the group between the last two scans (0 when unknown)."""
        with self.lock:
            a, b = self.prev.get(pgid), self.groups.get(pgid)
            if not a or not b or self.at <= self.prev_at:
                return 0.0
            return max(0.0, (b[0] - a[0]) / (self.at - self.prev_at))

    def group(self, pgid):
        with self.lock:
            return self.groups.get(pgid)

    def run(self, stop):
        while not stop.is_set():
            self.scan()
            stop.wait(self.period)


# ---------------------------------------------------------------- simulator

class Adopted:
    """A container process left running by an earlier simulator run (not our child)."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None
        self.signalled = None

    def poll(self):
        if self.returncode is None:
            st = None
            try:
                with open("/proc/%d/stat" % self.pid) as f:
                    st = f.read()
            except OSError:
                pass
            if st is None or st[st.rfind(")") + 2:].startswith("Z"):
                self.returncode = -self.signalled if self.signalled else 255  # exit code unknown
        return self.returncode

    def wait(self):
        while self.poll() is None:
            time.sleep(0.05)
        return self.returncode


class PodRT:
    """Runtime of one scheduled pod: its IP, container threads and stop request."""

    def __init__(self, ns, name, uid, node, ip):
        self.ns, self.name, self.uid, self.node, self.ip = ns, name, uid, node, ip
        self.stop = threading.Event()
        self.kill_at = None  # SIGKILL deadline once stopping
        self.threads = []
        self.procs = {}  # container -> Popen (while running)
        self.cpu_base = {}  # container -> cpu seconds of earlier (dead) runs, for node totals
        self.started = {}  # container -> start time of the running process
        self.cids = {}  # container -> containerID of the running process
        self.adopt = {}  # container -> {"pid", "started", "cid"} after a restore

    def alive(self):
        return any(t.is_alive() for t in self.threads)


class Sim:
    def __init__(self, args, cfg):
        self.args, self.cfg = args, cfg
        self.timing = dict(TIMING_DEFAULTS)
        self.timing.update(cfg.get("timing") or {})
        self.store = Store(args.history)
        self.sampler = Sampler(self.timing["sample_period"])
        self.stopping = threading.Event()
        self.rts = {}  # pod uid -> PodRT
        self.node_cpu_dead = collections.defaultdict(float)  # node -> cpu seconds of finished containers
        self.ip_next = 1
        self.ip_b = args.ip_octet or (16 + os.getpid() % 200)
        self.ready_at = {}  # node name -> time it becomes Ready
        self.sched_msg = {}  # pod uid -> (message, time of last FailedScheduling)
        self.group_label = cfg.get("node_group_label", "modelhub.io/node-group")
        self.models = self.load_models()
        self.tokens = {args.token: {"name": "admin"}} if args.token else {}
        for u in cfg.get("users") or []:
            u = dict(u)
            if u.get("allow_file"):
                with open(u["allow_file"]) as f:
                    u["allow"] = list(u.get("allow") or []) + [ln.strip() for ln in f
                                                               if ln.split("#")[0].strip()]
            self.tokens[u["token"]] = u
        os.makedirs(os.path.join(args.state_dir, "logs"), exist_ok=True)

    # ---- configuration

    def load_models(self):
        names = set(self.cfg.get("models") or [])
        cat = os.path.join(self.args.models_dir, "catalog.json")
        try:
            with open(cat) as f:
                for m in json.load(f):
                    if m.get("image"):
                        names.add(m["image"].rsplit("/", 1)[-1].split(":")[0].split("@")[0])
                    if (m.get("details") or {}).get("demo_model"):
                        names.add(m["details"]["demo_model"])
        except (OSError, ValueError) as e:
            log("no catalog", path=cat, error=type(e).__name__)
        return names

    def image_model(self, image):
        """Container image -> demo model name, or None when the image "does not exist"."""
        repo = image_repo(image)
        alias = (self.cfg.get("images") or {}).get(repo)
        if alias:
            return alias
        name = repo.rsplit("/", 1)[-1]
        return name if name in self.models else None

    def bootstrap(self):
        with self.store.lock:
            for ns in ["default", "kube-system", "kube-public"] + list(self.cfg.get("namespaces") or []):
                if not self.store.get("namespaces", "", ns):
                    self.store.add("namespaces", self.new_namespace(ns))
            for n in self.cfg.get("nodes") or []:
                if not self.store.get("nodes", "", n["name"]):
                    self.store.add("nodes", self.new_node(n["name"], n, ready=n.get("ready", True)))
            for md in self.cfg.get("machinedeployments") or []:
                ns = md.get("namespace", "default")
                if not self.store.get("namespaces", "", ns):
                    self.store.add("namespaces", self.new_namespace(ns))
                if not self.store.get(KEY_MD, ns, md["name"]):
                    self.store.add(KEY_MD, self.new_md(md))
                    for _ in range(int(md.get("replicas", 0))):
                        self.add_md_node(self.store.get(KEY_MD, ns, md["name"]), ready=True)

    def meta(self, name, ns=None, labels=None, annotations=None):
        m = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": iso()}
        if ns is not None:
            m["namespace"] = ns
        if labels:
            m["labels"] = dict(labels)
        if annotations:
            m["annotations"] = dict(annotations)
        return m

    def new_namespace(self, name):
        return {"kind": "Namespace", "apiVersion": "v1",
                "metadata": self.meta(name, labels={"kubernetes.io/metadata.name": name}),
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def new_node(self, name, spec, ready, extra_labels=None, annotations=None):
        cpu, mem, pods = str(spec.get("cpu", "4")), str(spec.get("memory", "8Gi")), str(spec.get("pods", 110))
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": "amd64",
                  "node.kubernetes.io/instance-type": spec.get("instance_type", "kubesim.standard")}
        if spec.get("group"):
            labels[self.group_label] = spec["group"]
        labels.update(spec.get("labels") or {})
        labels.update(extra_labels or {})
        cap = {"cpu": cpu, "memory": fmt_mem(qty(mem)), "pods": pods,
               "ephemeral-storage": "102400000Ki", "hugepages-2Mi": "0"}
        alloc = dict(cap)
        if spec.get("allocatable_cpu"):
            alloc["cpu"] = str(spec["allocatable_cpu"])
        if spec.get("allocatable_memory"):
            alloc["memory"] = fmt_mem(qty(spec["allocatable_memory"]))
        taints = [dict(t) for t in spec.get("taints") or []]
        if not ready:
            taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
        now = iso()
        conds = [{"type": t, "status": "False", "reason": r, "message": m,
                  "lastHeartbeatTime": now, "lastTransitionTime": now}
                 for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                 ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                 ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
        conds.append(self.ready_condition(ready))
        node = {"kind": "Node", "apiVersion": "v1",
                "metadata": self.meta(name, labels=labels, annotations=annotations),
                "spec": {"providerID": "kubesim://" + name},
                "status": {"capacity": cap, "allocatable": alloc, "conditions": conds,
                           "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                         {"type": "Hostname", "address": name}],
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                           "nodeInfo": {"machineID": uuid.uuid4().hex, "systemUUID": str(uuid.uuid4()),
                                        "bootID": str(uuid.uuid4()), "kernelVersion": os.uname().release,
                                        "osImage": "kubesim", "containerRuntimeVersion": "kubesim://1.0",
                                        "kubeletVersion": "v1.32.0-kubesim",
                                        "kubeProxyVersion": "v1.32.0-kubesim",
                                        "operatingSystem": "linux", "architecture": "amd64"}}}
        if taints:
            node["spec"]["taints"] = taints
        return node

    @staticmethod
    def ready_condition(ready):
        now = iso()
        if ready:
            return {"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                    "lastTransitionTime": now}
        return {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                "message": "container runtime network not ready: NetworkReady=false",
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    def new_md(self, md):
        name, ns = md["name"], md.get("namespace", "default")
        cluster = md.get("cluster", "kubesim")
        ann = {}
        if "min" in md:
            ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"] = str(md["min"])
        if "max" in md:
            ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"] = str(md["max"])
        sel = {"cluster.x-k8s.io/cluster-name": cluster, "cluster.x-k8s.io/deployment-name": name}
        node = dict(md.get("node") or {})
        obj = {"kind": "MachineDeployment", "apiVersion": "cluster.x-k8s.io/v1beta1",
               "metadata": self.meta(name, ns, labels={"cluster.x-k8s.io/cluster-name": cluster},
                                     annotations=ann),
               "spec": {"clusterName": cluster, "replicas": int(md.get("replicas", 0)),
                        "selector": {"matchLabels": sel},
                        "template": {"metadata": {"labels": dict(sel)},
                                     "spec": {"clusterName": cluster, "version": "v1.32.0",
                                              "bootstrap": {"dataSecretName": name + "-bootstrap"},
                                              "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                                                                    "kind": "KubesimMachineTemplate",
                                                                    "name": name}}},
                        "strategy": {"type": "RollingUpdate"}},
               "status": {}}
        obj["metadata"]["generation"] = 1
        obj["metadata"].setdefault("annotations", {})["kubesim/node-template"] = json.dumps(node, sort_keys=True)
        self.md_status(obj)
        return obj

    def md_nodes(self, md):
        name = md["metadata"]["name"]
        return [n for n in self.store.list("nodes")
                if (n["metadata"].get("labels") or {}).get("cluster.x-k8s.io/deployment-name") == name]

    def md_status(self, md):
        nodes = self.md_nodes(md) if md["metadata"].get("resourceVersion") else []
        ready = sum(1 for n in nodes if node_ready(n))
        want = int(md["spec"].get("replicas", 0))
        phase = "Running" if len(nodes) == want else ("ScalingUp" if len(nodes) < want else "ScalingDown")
        sel = ",".join("%s=%s" % kv for kv in sorted(md["spec"]["selector"]["matchLabels"].items()))
        md["status"] = {"replicas": len(nodes), "readyReplicas": ready, "availableReplicas": ready,
                        "updatedReplicas": len(nodes), "unavailableReplicas": max(0, want - ready),
                        "observedGeneration": md["metadata"].get("generation", 1), "phase": phase,
                        "selector": sel}

    def add_md_node(self, md, ready=False):
        """Create a Machine and its Node for MachineDeployment md (lock held)."""
        mdname, ns = md["metadata"]["name"], md["metadata"]["namespace"]
        tmpl = json.loads(md["metadata"]["annotations"].get("kubesim/node-template", "{}"))
        name = "%s-%s-%s" % (mdname, rand_suffix(5), rand_suffix(5))
        labels = dict(md["spec"]["selector"]["matchLabels"])
        labels.setdefault(self.group_label, tmpl.get("group") or mdname)
        node = self.new_node(name, tmpl, ready, extra_labels=labels,
                             annotations={"cluster.x-k8s.io/machine": name,
                                          "cluster.x-k8s.io/owner-kind": "MachineSet",
                                          "cluster.x-k8s.io/owner-name": mdname,
                                          "cluster.x-k8s.io/cluster-namespace": ns})
        self.store.add("nodes", node)
        machine = {"kind": "Machine", "apiVersion": "cluster.x-k8s.io/v1beta1",
                   "metadata": self.meta(name, ns, labels=labels),
                   "spec": {"clusterName": md["spec"]["clusterName"], "providerID": "kubesim://" + name,
                            "bootstrap": {"dataSecretName": mdname + "-bootstrap"},
                            "infrastructureRef": md["spec"]["template"]["spec"]["infrastructureRef"]},
                   "status": {"phase": "Running" if ready else "Provisioned",
                              "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": name,
                                          "uid": node["metadata"]["uid"]}}}
        machine["metadata"]["ownerReferences"] = [{"apiVersion": "cluster.x-k8s.io/v1beta1",
                                                   "kind": "MachineDeployment", "name": mdname,
                                                   "uid": md["metadata"]["uid"]}]
        self.store.add(KEY_MACHINE, machine)
        if not ready:
            self.ready_at[name] = time.time() + self.timing["node_ready_delay"]
        self.event(node, "Normal", "RegisteredNode", "Node %s event: Registered Node %s in Controller" % (name, name),
                   "node-controller")
        log("node added", node=name, group=mdname, ready=int(ready))
        return node

    def remove_node(self, name):
        """Delete a node, its Machine and every pod bound to it (lock held)."""
        node = self.store.get("nodes", "", name)
        if node is None:
            return
        for pod in self.store.list("pods"):
            if pod["spec"].get("nodeName") == name:
                self.kill_pod(pod, grace=0)
                self.store.remove("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        mname = (node["metadata"].get("annotations") or {}).get("cluster.x-k8s.io/machine")
        ns = (node["metadata"].get("annotations") or {}).get("cluster.x-k8s.io/cluster-namespace", "default")
        if mname:
            self.store.remove(KEY_MACHINE, ns, mname)
        self.store.remove("nodes", "", name)
        self.ready_at.pop(name, None)
        log("node removed", node=name)

    # ---- events

    def event(self, obj, typ, reason, message, component, host=None, field_path=None):
        """Record a v1 Event about obj; identical events are aggregated (count)."""
        with self.store.lock:
            md = obj["metadata"]
            ns = md.get("namespace") or "default"
            for ev in reversed(self.store.list("events", ns)[-200:]):
                io = ev["involvedObject"]
                if (io.get("uid") == md.get("uid") and ev["reason"] == reason
                        and ev["message"] == message and ev["type"] == typ):
                    def bump(e):
                        e["count"] = e.get("count", 1) + 1
                        e["lastTimestamp"] = iso()
                    self.store.mutate("events", ns, ev["metadata"]["name"], bump)
                    return
            io = {"kind": obj["kind"], "name": md["name"], "uid": md.get("uid", ""),
                  "apiVersion": obj.get("apiVersion", "v1"), "resourceVersion": md.get("resourceVersion", "")}
            if md.get("namespace"):
                io["namespace"] = md["namespace"]
            if field_path:
                io["fieldPath"] = field_path
            now = iso()
            src = {"component": component}
            if host:
                src["host"] = host
            ev = {"kind": "Event", "apiVersion": "v1",
                  "metadata": self.meta("%s.%x" % (md["name"], random.getrandbits(64)), ns),
                  "involvedObject": io, "reason": reason, "message": message, "source": src,
                  "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": typ,
                  "eventTime": None, "reportingComponent": component,
                  "reportingInstance": host or ""}
            self.store.add("events", ev)
            evs = self.store.list("events")
            if len(evs) > MAX_EVENTS:
                evs.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
                for e in evs[:len(evs) - MAX_EVENTS]:
                    self.store.remove("events", e["metadata"]["namespace"], e["metadata"]["name"])

    # ---- pods: admission

    def admit_pod(self, pod, ns):
        """Validate and default a pod being created; raises ApiError 422."""
        md = pod.setdefault("metadata", {})
        name = md.get("name") or ""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            raise invalid("Pod", name, "spec: Required value")
        cs = spec.get("containers")
        if not isinstance(cs, list) or not cs:
            raise invalid("Pod", name, "spec.containers: Required value")
        seen = set()
        for i, c in enumerate(cs):
            if not isinstance(c, dict) or not c.get("name"):
                raise invalid("Pod", name, "spec.containers[%d].name: Required value" % i)
            if not NAME_RE.match(c["name"]) or "." in c["name"] or c["name"] in seen:
                raise invalid("Pod", name, 'spec.containers[%d].name: Invalid value: "%s"' % (i, c["name"]))
            seen.add(c["name"])
            if not c.get("image"):
                raise invalid("Pod", name, "spec.containers[%d].image: Required value" % i)
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for k, v in (res.get(kind) or {}).items():
                    try:
                        if qty(v) < 0:
                            raise ValueError("must be greater than or equal to 0")
                    except ValueError as e:
                        raise invalid("Pod", name, "spec.containers[%d].resources.%s[%s]: Invalid value: %r: %s"
                                      % (i, kind, k, v, e))
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            for k in ("cpu", "memory"):
                if k in req and k in lim and qty(req[k]) > qty(lim[k]):
                    raise invalid("Pod", name, "spec.containers[%d].resources.requests: Invalid value: %r: must be less than or equal to %s limit of %s"
                                  % (i, req[k], k, lim[k]))
            c.setdefault("imagePullPolicy", "Always" if c["image"].endswith(":latest") or ":" not in c["image"].rsplit("/", 1)[-1] else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            if lim and not req:
                res["requests"] = dict(lim)
                c["resources"] = res
            for p in c.get("ports") or []:
                p.setdefault("protocol", "TCP")
        if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
            raise invalid("Pod", name, 'spec.restartPolicy: Unsupported value: "%s"' % spec["restartPolicy"])
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("priority", 0)
        spec.setdefault("enableServiceLinks", True)
        tol = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tol):
                tol.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
        try:
            pod_requests(pod)
        except ValueError as e:
            raise invalid("Pod", name, str(e))
        pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod)}


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
    if all("terminated" in c["state"] for c in css):
        st["phase"] = "Succeeded" if all(c["state"]["terminated"]["exitCode"] == 0 for c in css) else "Failed"
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


class SimPods:
    """Mixin: scheduler and kubelet of Sim."""

    # ---- scheduler

    def schedule_pass(self):
        with self.store.lock:
            pending = [p for p in self.store.list("pods")
                       if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
                       and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"]
            if not pending:
                return
            nodes = self.store.list("nodes")
            used = {n["metadata"]["name"]: [0.0, 0.0, 0] for n in nodes}
            podsby = collections.defaultdict(list)
            for p in self.store.list("pods"):
                nn = p["spec"].get("nodeName")
                if nn in used and not terminal(p):
                    c, m = pod_requests(p)
                    used[nn][0] += c
                    used[nn][1] += m
                    used[nn][2] += 1
                    podsby[nn].append(p)
            pending.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
            for pod in pending:
                self.schedule_one(pod, nodes, used, podsby)

    def schedule_one(self, pod, nodes, used, podsby):
        cpu, mem = pod_requests(pod)
        reasons = collections.Counter()
        fits = []
        for n in nodes:
            name = n["metadata"]["name"]
            labels = n["metadata"].get("labels") or {}
            alloc = n["status"]["allocatable"]
            if n["spec"].get("unschedulable"):
                reasons["node(s) were unschedulable"] += 1
                continue
            bad = [t for t in n["spec"].get("taints") or []
                   if t.get("effect") in ("NoSchedule", "NoExecute")
                   and t.get("key") != "node.kubernetes.io/unschedulable"
                   and not tolerates(pod["spec"].get("tolerations"), t)]
            if bad:
                reasons["node(s) had untolerated taint {%s: %s}" % (bad[0]["key"], bad[0].get("value", ""))] += 1
                continue
            if not node_ready(n):
                reasons["node(s) were not ready"] += 1
                continue
            if not node_affinity_ok(pod, labels):
                reasons["node(s) didn't match Pod's node affinity/selector"] += 1
                continue
            u = used[name]
            short = False
            if u[0] + cpu > qty(alloc["cpu"]) + 1e-9:
                reasons["Insufficient cpu"] += 1
                short = True
            if u[1] + mem > qty(alloc["memory"]):
                reasons["Insufficient memory"] += 1
                short = True
            if u[2] + 1 > int(alloc["pods"]):
                reasons["Too many pods"] += 1
                short = True
            if not short:
                fits.append(n)
        if not fits:
            n = len(nodes)
            msg = "0/%d nodes are available: %s. preemption: 0/%d nodes are available: %d Preemption is not helpful for scheduling." % (
                n, ", ".join("%d %s" % (c, r) for r, c in sorted(reasons.items(), key=lambda x: x[0])) if reasons else "no nodes available to schedule pods", n, n) if n else "no nodes available to schedule pods"
            uid = pod["metadata"]["uid"]
            last = self.sched_msg.get(uid)
            if last and last[0] == msg and time.time() - last[1] < self.timing["unschedulable_event_every"]:
                return
            self.sched_msg[uid] = (msg, time.time())
            self.store.mutate("pods", pod["metadata"]["namespace"], pod["metadata"]["name"],
                              lambda p: set_condition(p, "PodScheduled", "False", "Unschedulable", msg))
            self.event(pod, "Warning", "FailedScheduling", msg, "default-scheduler")
            log("unschedulable", pod=pod["metadata"]["name"], message=repr(msg))
            return
        fits.sort(key=lambda n: (-self.affinity_score(pod, podsby[n["metadata"]["name"]]), n["metadata"]["name"]))
        node = fits[0]["metadata"]["name"]
        used[node][0] += cpu
        used[node][1] += mem
        used[node][2] += 1
        podsby[node].append(pod)
        self.bind(pod, node)

    @staticmethod
    def affinity_score(pod, others):
        score = 0
        terms = (((pod["spec"].get("affinity") or {}).get("podAffinity") or {})
                 .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
        for t in terms:
            sel = selector_from_match((t.get("podAffinityTerm") or {}).get("labelSelector") or {})
            if any(label_match(sel, o["metadata"].get("labels")) for o in others if o is not pod):
                score += int(t.get("weight", 1))
        return score

    def bind(self, pod, node):
        """Assign the pod to node and start its kubelet threads (lock held)."""
        ip = self.alloc_ip()
        ns, name, uid = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["metadata"]["uid"]

        def f(p):
            p["spec"]["nodeName"] = node
            st = p["status"]
            set_condition(p, "PodScheduled", "True")
            set_condition(p, "Initialized", "True")
            set_condition(p, "PodReadyToStartContainers", "True")
            st.update(hostIP="127.0.0.1", hostIPs=[{"ip": "127.0.0.1"}], podIP=ip,
                      podIPs=[{"ip": ip}], startTime=iso())
            st["containerStatuses"] = [
                {"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                 "started": False, "restartCount": 0, "lastState": {},
                 "state": {"waiting": {"reason": "ContainerCreating"}}}
                for c in p["spec"]["containers"]]
            pod_recompute(p)
        self.sched_msg.pop(uid, None)
        pod = self.store.mutate("pods", ns, name, f)
        self.event(pod, "Normal", "Scheduled", "Successfully assigned %s/%s to %s" % (ns, name, node),
                   "default-scheduler")
        log("scheduled", pod=name, node=node, ip=ip)
        self.start_pod(pod)

    def alloc_ip(self):
        while True:
            n = self.ip_next
            self.ip_next += 1
            ip = "127.%d.%d.%d" % (self.ip_b, (n // 250) % 250, n % 250 + 1)
            if ip not in {rt.ip for rt in self.rts.values()}:
                return ip

    def start_pod(self, pod):
        md = pod["metadata"]
        rt = PodRT(md["namespace"], md["name"], md["uid"], pod["spec"]["nodeName"], pod["status"]["podIP"])
        self.rts[md["uid"]] = rt
        for c in pod["spec"]["containers"]:
            t = threading.Thread(target=self.kubelet, args=(rt, copy.deepcopy(c), pod["spec"].get("restartPolicy", "Always")),
                                 name="kubelet-%s-%s" % (md["name"], c["name"]), daemon=True)
            rt.threads.append(t)
            t.start()

    # ---- kubelet

    def pod_of(self, rt):
        with self.store.lock:
            p = self.store.get("pods", rt.ns, rt.name)
            return p if p and p["metadata"]["uid"] == rt.uid else None

    def kev(self, rt, cname, typ, reason, msg):
        with self.store.lock:
            pod = self.pod_of(rt)
            if pod:
                self.event(pod, typ, reason, msg, "kubelet", rt.node, "spec.containers{%s}" % cname)

    def cstatus(self, rt, cname, **kv):
        """Update one container status of the pod (state, ready, restartCount, ...)."""
        def f(p):
            for cs in p["status"].get("containerStatuses") or []:
                if cs["name"] == cname:
                    cs.update(kv)
            pod_recompute(p)
        self.store.mutate("pods", rt.ns, rt.name, f, uid=rt.uid)

    def kubelet(self, rt, c, policy):
        """One container's life: pull, run, probe, watch RSS, restart with back-off, stop."""
        cname, image = c["name"], c["image"]
        backoff = self.timing["backoff_initial"]
        model = self.image_model(image)
        restarts, pulled = 0, False
        if cname in rt.adopt:
            pulled = True
            restarts = rt.adopt[cname].get("restarts", 0)
        while not rt.stop.is_set():
            if cname in rt.adopt:
                pass
            elif not pulled:
                self.kev(rt, cname, "Normal", "Pulling", 'Pulling image "%s"' % image)
                if rt.stop.wait(self.timing["pull_seconds"]):
                    break
                if model is None:
                    self.pull_failed(rt, cname, image, backoff)
                    if rt.stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, self.timing["backoff_max"])
                    continue
                pulled = True
                self.kev(rt, cname, "Normal", "Pulled",
                         'Successfully pulled image "%s" in %dms (%dms including waiting). Image size: 0 bytes.'
                         % (image, self.timing["pull_seconds"] * 1000, self.timing["pull_seconds"] * 1000))
                backoff = self.timing["backoff_initial"]
            else:
                self.kev(rt, cname, "Normal", "Pulled", 'Container image "%s" already present on machine' % image)
            term = self.run_container(rt, c, model, restarts)
            if term is None or rt.stop.is_set():
                break
            again = policy == "Always" or (policy == "OnFailure" and term["exitCode"] != 0)
            if not again:
                self.cstatus(rt, cname, state={"terminated": term}, ready=False, started=False)
                log("container exited", pod=rt.name, container=cname, code=term["exitCode"], reason=term["reason"])
                break
            restarts += 1
            delay = 0 if restarts == 1 else backoff
            if restarts > 1:
                backoff = min(backoff * 2, self.timing["backoff_max"])
            msg = "back-off %gs restarting failed container=%s pod=%s_%s(%s)" % (delay, cname, rt.name, rt.ns, rt.uid)
            self.cstatus(rt, cname, lastState={"terminated": term}, restartCount=restarts, ready=False,
                         started=False, state={"waiting": {"reason": "CrashLoopBackOff", "message": msg}})
            log("container restart", pod=rt.name, container=cname, code=term["exitCode"],
                reason=term["reason"], restarts=restarts, delay=delay)
            if delay:
                self.kev(rt, cname, "Warning", "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)"
                         % (cname, rt.name, rt.ns, rt.uid))
                if rt.stop.wait(delay):
                    break

    def pull_failed(self, rt, cname, image, backoff):
        self.kev(rt, cname, "Warning", "Failed",
                 'Failed to pull image "%s": rpc error: code = NotFound desc = failed to pull and unpack image '
                 '"%s": failed to resolve reference "%s": not found' % (image, image, image))
        self.kev(rt, cname, "Warning", "Failed", "Error: ErrImagePull")
        self.cstatus(rt, cname, state={"waiting": {"reason": "ErrImagePull",
                                                   "message": 'failed to pull and unpack image "%s": not found' % image}})
        if rt.stop.wait(min(1.0, backoff)):
            return
        self.kev(rt, cname, "Normal", "BackOff", 'Back-off pulling image "%s"' % image)
        self.kev(rt, cname, "Warning", "Failed", "Error: ImagePullBackOff")
        self.cstatus(rt, cname, state={"waiting": {"reason": "ImagePullBackOff",
                                                   "message": 'Back-off pulling image "%s"' % image}})

    def container_port(self, c):
        for p in c.get("ports") or []:
            if p.get("containerPort"):
                return int(p["containerPort"])
        return 80

    def host_port(self, port):
        """Port the process really binds: remapped below 1024 when not root (--port-offset)."""
        if port < 1024 and os.geteuid() != 0 and self.args.port_offset:
            return port + self.args.port_offset
        return port

    def log_path(self, rt, cname, n):
        return os.path.join(self.args.state_dir, "logs", "%s_%s_%s" % (rt.ns, rt.name, rt.uid[:8]),
                            "%s.%d.log" % (cname, n))

    def run_container(self, rt, c, model, n):
        """Start the process and watch it; returns its terminated state (None if stopped first)."""
        cname = c["name"]
        port = self.host_port(self.container_port(c))
        argv = [PYTHON, os.path.join(self.args.models_dir, "serve.py"), "--model", model,
                "--host", rt.ip, "--port", str(port)] + [str(a) for a in c.get("args") or []]
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "HOME") if k in os.environ}
        env.update(HOSTNAME=rt.name, PYTHONUNBUFFERED="1", KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(self.args.port))
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif (e.get("valueFrom") or {}).get("fieldRef"):
                fp = e["valueFrom"]["fieldRef"].get("fieldPath")
                env[e["name"]] = {"metadata.name": rt.name, "metadata.namespace": rt.ns,
                                  "status.podIP": rt.ip, "spec.nodeName": rt.node,
                                  "metadata.uid": rt.uid}.get(fp, "")
        path = self.log_path(rt, cname, n)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        probe = c.get("readinessProbe") or None
        adopt = rt.adopt.pop(cname, None)
        if adopt:
            proc, started, cid = Adopted(adopt["pid"]), adopt["started"], adopt["cid"]
            log("container adopted", pod=rt.name, container=cname, pid=proc.pid)
        else:
            cid = "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex
            try:
                with open(path, "ab") as out:
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            env=env, cwd=self.args.models_dir, start_new_session=True)
            except OSError as e:
                self.kev(rt, cname, "Warning", "Failed", "Error: %s" % e)
                return {"exitCode": 128, "reason": "StartError", "message": str(e),
                        "startedAt": iso(), "finishedAt": iso(), "containerID": cid}
            started = time.time()
        with self.store.lock:
            rt.procs[cname] = proc
            rt.started[cname] = started
            rt.cids[cname] = cid
        if not adopt:
            self.kev(rt, cname, "Normal", "Created", "Created container %s" % cname)
            self.kev(rt, cname, "Normal", "Started", "Started container %s" % cname)
            self.cstatus(rt, cname, containerID=cid, started=True, ready=probe is None,
                         imageID="kubesim/%s@sha256:%s" % (image_repo(c["image"]), "0" * 64),
                         state={"running": {"startedAt": iso(started)}})
            log("container started", pod=rt.name, container=cname, pid=proc.pid, ip=rt.ip, port=port)
        limit = None
        lim = (c.get("resources") or {}).get("limits") or {}
        if "memory" in lim:
            limit = qty(lim["memory"])
        oom = self.watch_process(rt, c, proc, probe, limit, port)
        rc = proc.wait()
        cpu = self.sampler.read_stat(proc.pid)
        with self.store.lock:
            rt.procs.pop(cname, None)
            rt.started.pop(cname, None)
            rt.cids.pop(cname, None)
            grp = self.sampler.group(proc.pid)
            self.node_cpu_dead[rt.node] += grp[0] if grp else (cpu[1] if cpu else 0.0)
        code = 128 - rc if rc < 0 else rc
        if oom:
            code = 137
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        term = {"exitCode": code, "reason": reason, "startedAt": iso(started), "finishedAt": iso(),
                "containerID": cid}
        if rc < 0:
            term["signal"] = -rc
        if rt.stop.is_set():
            self.cstatus(rt, cname, state={"terminated": term}, ready=False, started=False)
            return None
        return term

    def watch_process(self, rt, c, proc, probe, limit, port):
        """Poll until the process exits or the pod stops; returns True when OOM-killed."""
        cname = c["name"]
        ready = probe is None
        delay = float((probe or {}).get("initialDelaySeconds", 0))
        period = min(float((probe or {}).get("periodSeconds", 10)), self.timing["probe_period"])
        thresh = int((probe or {}).get("failureThreshold", 3))
        started, next_probe, fails = time.time(), time.time() + delay, 0
        termed = False
        while proc.poll() is None:
            if rt.stop.is_set():
                if not termed:
                    termed = True
                    self.signal_group(proc, signal.SIGTERM)
                if rt.kill_at is not None and time.time() >= rt.kill_at:
                    self.signal_group(proc, signal.SIGKILL)
                time.sleep(0.05)
                continue
            if limit is not None:
                rss = self.group_rss(proc.pid)
                if rss > limit:
                    self.signal_group(proc, signal.SIGKILL)
                    proc.wait()
                    self.kev(rt, cname, "Warning", "OOMKilling",
                             "Memory cgroup out of memory: Killed process %d (python3) total-vm:0kB, anon-rss:%dkB, file-rss:0kB, shmem-rss:0kB, UID:%d pgtables:0kB oom_score_adj:%d"
                             % (proc.pid, rss // 1024, os.geteuid(), 1000))
                    log("oom killed", pod=rt.name, container=cname, rss=rss, limit=int(limit))
                    return True
            if probe is not None and time.time() >= next_probe:
                next_probe = time.time() + period
                err = self.probe(rt, c, probe, port)
                if err is None:
                    fails = 0
                    if not ready:
                        ready = True
                        self.cstatus(rt, cname, ready=True)
                        log("container ready", pod=rt.name, container=cname,
                            ms=int((time.time() - started) * 1000))
                else:
                    fails += 1
                    self.kev(rt, cname, "Warning", "Unhealthy", "Readiness probe failed: %s" % err)
                    if ready and fails >= thresh:
                        ready = False
                        self.cstatus(rt, cname, ready=False)
            rt.stop.wait(self.timing["poll"])
        return False

    @staticmethod
    def signal_group(proc, sig):
        if isinstance(proc, Adopted):
            proc.signalled = int(sig)
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def group_rss(self, pid):
        """RSS of the process group: the leader read now, the others from the last scan."""
        lead = self.sampler.read_stat(pid)
        grp = self.sampler.group(pid)
        lr = lead[2] if lead else 0
        return max(lr, grp[1] if grp else 0)

    def probe(self, rt, c, probe, port):
        hg = probe.get("httpGet")
        if not hg:
            return None
        p = hg.get("port", port)
        if isinstance(p, str) and not p.isdigit():
            p = next((q["containerPort"] for q in c.get("ports") or [] if q.get("name") == p), port)
        p = self.host_port(int(p))
        url = "%s://%s:%d%s" % (hg.get("scheme", "HTTP").lower(), rt.ip, p, hg.get("path", "/"))
        try:
            with urllib.request.urlopen(url, timeout=float(probe.get("timeoutSeconds", 1))) as r:
                if 200 <= r.status < 400:
                    return None
                return "HTTP probe failed with statuscode: %d" % r.status
        except urllib.error.HTTPError as e:
            return "HTTP probe failed with statuscode: %d" % e.code
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ConnectionRefusedError):
                return 'Get "%s": dial tcp %s:%d: connect: connection refused' % (url, rt.ip, p)
            return 'Get "%s": %s' % (url, reason)

    # ---- deletion

    def kill_pod(self, pod, grace):
        """Ask the pod's containers to stop within grace seconds (lock held)."""
        rt = self.rts.get(pod["metadata"]["uid"])
        if rt is None:
            return
        if not rt.stop.is_set():
            for cname in list(rt.procs):
                self.event(pod, "Normal", "Killing", "Stopping container %s" % cname, "kubelet", rt.node,
                           "spec.containers{%s}" % cname)
        deadline = time.time() + grace
        rt.kill_at = deadline if rt.kill_at is None else min(rt.kill_at, deadline)
        rt.stop.set()
        if grace == 0:
            for proc in list(rt.procs.values()):
                self.signal_group(proc, signal.SIGKILL)

    def delete_pod(self, pod, grace):
        """DELETE pods/{name}: graceful unless grace is 0 or the pod never ran (lock held)."""
        md = pod["metadata"]
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        if grace is None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        rt = self.rts.get(uid)
        if grace == 0 or rt is None or not rt.alive():
            if rt:
                self.kill_pod(pod, 0)
            def f(p):
                p["metadata"].setdefault("deletionTimestamp", iso())
                p["metadata"]["deletionGracePeriodSeconds"] = 0
            self.store.mutate("pods", ns, name, f)
            return self.store.remove("pods", ns, name)
        def g(p):
            p["metadata"]["deletionTimestamp"] = iso(time.time() + grace)
            p["metadata"]["deletionGracePeriodSeconds"] = grace
        pod = self.store.mutate("pods", ns, name, g)
        self.kill_pod(pod, grace)
        log("pod deleting", pod=name, grace=grace)
        return pod

    def finalize_deletions(self):
        with self.store.lock:
            for pod in self.store.list("pods"):
                md = pod["metadata"]
                if not md.get("deletionTimestamp"):
                    continue
                rt = self.rts.get(md["uid"])
                if rt is None or not rt.alive():
                    self.store.remove("pods", md["namespace"], md["name"])
                    log("pod deleted", pod=md["name"])
            live = {p["metadata"]["uid"] for p in self.store.list("pods")}
            for uid in [u for u, rt in self.rts.items() if u not in live and not rt.alive()]:
                del self.rts[uid]
            for uid in [u for u in self.sched_msg if u not in live]:
                del self.sched_msg[uid]


class SimCtl:
    """Mixin: node lifecycle, MachineDeployment reconciler, metrics, state file."""

    def controller(self):
        last_sched = last_dump = 0.0
        while not self.stopping.is_set():
            now = time.time()
            try:
                self.nodes_pass()
                self.md_pass()
                if now - last_sched >= self.timing["scheduler_period"]:
                    last_sched = now
                    self.schedule_pass()
                self.finalize_deletions()
                if self.store.dirty and now - last_dump >= 1.0:
                    last_dump = now
                    self.dump()
            except Exception as e:  # keep the control loop alive; the error is a simulator bug
                log("controller error", error=repr(e))
                import traceback
                traceback.print_exc()
            self.stopping.wait(0.05)

    def nodes_pass(self):
        with self.store.lock:
            now = time.time()
            for name, at in list(self.ready_at.items()):
                if now < at:
                    continue
                del self.ready_at[name]

                def ready(n):
                    n["status"]["conditions"] = [c for c in n["status"]["conditions"] if c["type"] != "Ready"]
                    n["status"]["conditions"].append(self.ready_condition(True))
                    n["spec"]["taints"] = [t for t in n["spec"].get("taints") or []
                                           if t.get("key") != "node.kubernetes.io/not-ready"]
                    if not n["spec"]["taints"]:
                        del n["spec"]["taints"]
                node = self.store.mutate("nodes", "", name, ready)
                if node:
                    self.event(node, "Normal", "NodeReady", "Node %s status is now: NodeReady" % name,
                               "kubelet", name)
                    ann = node["metadata"].get("annotations") or {}
                    if ann.get("cluster.x-k8s.io/machine"):
                        self.store.mutate(KEY_MACHINE, ann.get("cluster.x-k8s.io/cluster-namespace", "default"),
                                          ann["cluster.x-k8s.io/machine"],
                                          lambda m: m["status"].update(phase="Running"))
                    log("node ready", node=name)
            for node in self.store.list("nodes"):
                cordoned = bool(node["spec"].get("unschedulable"))
                tainted = any(t.get("key") == "node.kubernetes.io/unschedulable" for t in node["spec"].get("taints") or [])
                if cordoned == tainted:
                    continue

                def fix(n, cordoned=cordoned):
                    ts = [t for t in n["spec"].get("taints") or [] if t.get("key") != "node.kubernetes.io/unschedulable"]
                    if cordoned:
                        ts.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                                   "timeAdded": iso()})
                    if ts:
                        n["spec"]["taints"] = ts
                    else:
                        n["spec"].pop("taints", None)
                self.store.mutate("nodes", "", node["metadata"]["name"], fix)
                name = node["metadata"]["name"]
                self.event(node, "Normal", "NodeNotSchedulable" if cordoned else "NodeSchedulable",
                           "Node %s status is now: %s" % (name, "NodeNotSchedulable" if cordoned else "NodeSchedulable"),
                           "kubelet", name)

    def md_pass(self):
        with self.store.lock:
            for md in self.store.list(KEY_MD):
                want = max(0, int(md["spec"].get("replicas") or 0))
                nodes = self.md_nodes(md)
                if md["metadata"].get("deletionTimestamp"):
                    want = 0
                for _ in range(want - len(nodes)):
                    self.add_md_node(md)
                if len(nodes) > want:
                    for n in self.scale_down_order(md, nodes)[:len(nodes) - want]:
                        self.remove_node(n["metadata"]["name"])
                ns, name = md["metadata"]["namespace"], md["metadata"]["name"]
                if md["metadata"].get("deletionTimestamp") and not self.md_nodes(md):
                    self.store.remove(KEY_MD, ns, name)
                    continue
                self.store.mutate(KEY_MD, ns, name, self.md_status)

    def scale_down_order(self, md, nodes):
        busy = collections.Counter(p["spec"].get("nodeName") for p in self.store.list("pods") if not terminal(p))
        ns = md["metadata"]["namespace"]

        def key(n):
            name = n["metadata"]["name"]
            m = self.store.get(KEY_MACHINE, ns, (n["metadata"].get("annotations") or {}).get("cluster.x-k8s.io/machine", ""))
            marked = "cluster.x-k8s.io/delete-machine" in ((m or {}).get("metadata", {}).get("annotations") or {}) \
                or "cluster.x-k8s.io/delete-machine" in (n["metadata"].get("annotations") or {})
            return (not marked, node_ready(n), busy[name], -parse_iso(n["metadata"]["creationTimestamp"]), name)
        return sorted(nodes, key=key)

    # ---- metrics

    def node_containers(self, node):
        """[(pod, container, pgid, start)] of the processes running on node (lock held)."""
        out = []
        for rt in self.rts.values():
            if rt.node != node:
                continue
            for cname, proc in rt.procs.items():
                out.append((rt, cname, proc.pid, rt.started.get(cname, 0.0)))
        return out

    def resource_metrics(self, node):
        """Prometheus text of GET /api/v1/nodes/{node}/proxy/metrics/resource."""
        with self.store.lock:
            conts = self.node_containers(node)
            dead = self.node_cpu_dead[node]
        ts = int(time.time() * 1000)
        rows, pods = [], collections.OrderedDict()
        for rt, cname, pgid, start in sorted(conts, key=lambda x: (x[0].ns, x[0].name, x[1])):
            g = self.sampler.group(pgid)
            if not g:
                continue
            rows.append((rt, cname, g[0], g[1], start))
            p = pods.setdefault((rt.ns, rt.name), [0.0, 0])
            p[0] += g[0]
            p[1] += g[1]
        ts = int((self.sampler.at or time.time()) * 1000)
        out = []

        def head(name, typ, help_):
            out.append("# HELP %s %s" % (name, help_))
            out.append("# TYPE %s %s" % (name, typ))

        def lab(rt, cname=None):
            if cname is None:
                return '{namespace="%s",pod="%s"}' % (rt[0], rt[1])
            return '{container="%s",namespace="%s",pod="%s"}' % (cname, rt.ns, rt.name)
        head("container_cpu_usage_seconds_total", "counter",
             "[STABLE] Cumulative cpu time consumed by the container in core-seconds")
        for rt, cname, cpu, rss, start in rows:
            out.append("container_cpu_usage_seconds_total%s %.9f %d" % (lab(rt, cname), cpu, ts))
        head("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes")
        for rt, cname, cpu, rss, start in rows:
            out.append("container_memory_working_set_bytes%s %d %d" % (lab(rt, cname), rss, ts))
        head("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds")
        for rt, cname, cpu, rss, start in rows:
            out.append("container_start_time_seconds%s %.9f %d" % (lab(rt, cname), start, ts))
        head("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds")
        out.append("node_cpu_usage_seconds_total %.9f %d" % (dead + sum(r[2] for r in rows), ts))
        head("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes")
        out.append("node_memory_working_set_bytes %d %d" % (NODE_BASE_MEMORY + sum(r[3] for r in rows), ts))
        head("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds")
        for k, v in pods.items():
            out.append("pod_cpu_usage_seconds_total%s %.9f %d" % (lab(k), v[0], ts))
        head("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes")
        for k, v in pods.items():
            out.append("pod_memory_working_set_bytes%s %d %d" % (lab(k), v[1], ts))
        head("scrape_error", "gauge", "[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise")
        out.append("scrape_error 0")
        return "\n".join(out) + "\n"

    def pod_metrics(self, pod):
        rt = self.rts.get(pod["metadata"]["uid"])
        if rt is None or not rt.procs:
            return None
        conts = []
        for cname, proc in sorted(rt.procs.items()):
            g = self.sampler.group(proc.pid)
            conts.append({"name": cname, "usage": {"cpu": fmt_cpu(self.sampler.rate(proc.pid)),
                                                    "memory": fmt_mem(g[1] if g else 0)}})
        md = pod["metadata"]
        return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": md["name"], "namespace": md["namespace"], "creationTimestamp": iso(),
                             "labels": md.get("labels") or {}},
                "timestamp": iso(self.sampler.at or None), "window": "%gs" % self.sampler.period,
                "containers": conts}

    def node_metrics(self, node):
        name = node["metadata"]["name"]
        cpu = mem = 0.0
        for rt, cname, pgid, start in self.node_containers(name):
            g = self.sampler.group(pgid)
            cpu += self.sampler.rate(pgid)
            mem += g[1] if g else 0
        return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": name, "creationTimestamp": iso(),
                             "labels": node["metadata"].get("labels") or {}},
                "timestamp": iso(self.sampler.at or None), "window": "%gs" % self.sampler.period,
                "usage": {"cpu": fmt_cpu(cpu), "memory": fmt_mem(NODE_BASE_MEMORY + mem)}}

    # ---- state file

    def state_path(self):
        return os.path.join(self.args.state_dir, "state.json")

    def dump(self):
        with self.store.lock:
            pods = {}
            for uid, rt in self.rts.items():
                pods[uid] = {"ip": rt.ip, "node": rt.node,
                             "containers": {c: {"pid": p.pid, "started": rt.started.get(c, 0.0),
                                                "cid": rt.cids.get(c, "")}
                                            for c, p in rt.procs.items()}}
            state = {"version": 1, "objects": [[k[0], o] for k, o in sorted(self.store.objs.items())],
                     "runtime": pods, "ip_next": self.ip_next, "ip_b": self.ip_b,
                     "node_cpu_dead": dict(self.node_cpu_dead)}
            self.store.dirty = False
            data = json.dumps(state)
        tmp = self.state_path() + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, self.state_path())

    def restore(self):
        """Load <state-dir>/state.json: objects keep their old resourceVersions (all below this epoch)."""
        try:
            with open(self.state_path()) as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            log("no state restored", error=type(e).__name__)
            return
        with self.store.lock:
            for res, obj in state["objects"]:
                md = obj["metadata"]
                self.store.objs[(res, md.get("namespace", ""), md["name"])] = obj
            self.ip_next, self.ip_b = state.get("ip_next", 1), state.get("ip_b", self.ip_b)
            self.node_cpu_dead.update(state.get("node_cpu_dead") or {})
            for node in self.store.list("nodes"):
                if not node_ready(node):
                    self.ready_at[node["metadata"]["name"]] = time.time() + self.timing["node_ready_delay"]
            for pod in self.store.list("pods"):
                md = pod["metadata"]
                info = (state.get("runtime") or {}).get(md["uid"])
                if not pod["spec"].get("nodeName") or terminal(pod) and info is None:
                    continue
                if info is None:
                    continue
                rt = PodRT(md["namespace"], md["name"], md["uid"], pod["spec"]["nodeName"], pod["status"]["podIP"])
                for cname, ci in info["containers"].items():
                    if Adopted(ci["pid"]).poll() is None and self.cmdline_has(ci["pid"], rt.ip):
                        rt.adopt[cname] = ci
                self.rts[md["uid"]] = rt
                for c in pod["spec"]["containers"]:
                    cs = next((x for x in pod["status"].get("containerStatuses") or [] if x["name"] == c["name"]), {})
                    if "terminated" in (cs.get("state") or {}):
                        continue
                    if c["name"] in rt.adopt:
                        rt.adopt[c["name"]]["restarts"] = cs.get("restartCount", 0)
                    t = threading.Thread(target=self.kubelet, args=(rt, copy.deepcopy(c), pod["spec"].get("restartPolicy", "Always")),
                                         name="kubelet-%s-%s" % (md["name"], c["name"]), daemon=True)
                    rt.threads.append(t)
                    t.start()
                if md.get("deletionTimestamp"):
                    self.kill_pod(pod, max(0.0, parse_iso(md["deletionTimestamp"]) - time.time()))
            log("state restored", objects=len(state["objects"]), adopted=sum(len(r.adopt) for r in self.rts.values()))

    @staticmethod
    def cmdline_has(pid, text):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return text.encode() in f.read().split(b"\0")
        except OSError:
            return False

    def shutdown(self, keep):
        """Stop: dump the state, then kill every pod process unless keep."""
        self.stopping.set()
        if self.args.state_dir:
            self.dump()
        if keep:
            return
        with self.store.lock:
            for rt in self.rts.values():
                rt.stop.set()
                for proc in rt.procs.values():
                    self.signal_group(proc, signal.SIGKILL)


class Simulator(SimCtl, SimPods, Sim):
    pass


# ---------------------------------------------------------------- Table output

def age(ts):
    """kubectl's short human duration of the time since ts."""
    d = int(max(0, time.time() - parse_iso(ts))) if ts else 0
    if d < 120:
        return "%ds" % d
    if d < 600:
        return "%dm%ds" % (d // 60, d % 60) if d % 60 else "%dm" % (d // 60)
    if d < 3 * 3600:
        return "%dm" % (d // 60)
    if d < 48 * 3600:
        return "%dh" % (d // 3600)
    return "%dd" % (d // 86400)


def pod_status_text(pod):
    st = pod.get("status") or {}
    reason = st.get("reason") or st.get("phase", "Pending")
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            t = state["terminated"]
            reason = t.get("reason") or ("Signal:%d" % t["signal"] if t.get("signal") else "ExitCode:%d" % t.get("exitCode", 0))
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def table_columns(key):
    """[(name, type, priority, cell function)] of kubectl's server-side columns."""
    name = ("Name", "string", 0, lambda o: o["metadata"]["name"])
    agec = ("Age", "string", 0, lambda o: age(o["metadata"].get("creationTimestamp")))
    if key == "pods":
        def ready(o):
            css = o["status"].get("containerStatuses") or []
            return "%d/%d" % (sum(1 for c in css if c.get("ready")), len(o["spec"].get("containers") or []))
        return [name, ("Ready", "string", 0, ready), ("Status", "string", 0, pod_status_text),
                ("Restarts", "string", 0, lambda o: str(sum(c.get("restartCount", 0) for c in o["status"].get("containerStatuses") or []))),
                agec, ("IP", "string", 1, lambda o: o["status"].get("podIP") or "<none>"),
                ("Node", "string", 1, lambda o: o["spec"].get("nodeName") or "<none>"),
                ("Nominated Node", "string", 1, lambda o: "<none>"),
                ("Readiness Gates", "string", 1, lambda o: "<none>")]
    if key == "nodes":
        def status(o):
            s = "Ready" if node_ready(o) else "NotReady"
            return s + (",SchedulingDisabled" if o["spec"].get("unschedulable") else "")
        return [name, ("Status", "string", 0, status), ("Roles", "string", 0, lambda o: "<none>"), agec,
                ("Version", "string", 0, lambda o: o["status"]["nodeInfo"]["kubeletVersion"]),
                ("Internal-IP", "string", 1, lambda o: o["status"]["addresses"][0]["address"]),
                ("External-IP", "string", 1, lambda o: "<none>"),
                ("OS-Image", "string", 1, lambda o: o["status"]["nodeInfo"]["osImage"]),
                ("Kernel-Version", "string", 1, lambda o: o["status"]["nodeInfo"]["kernelVersion"]),
                ("Container-Runtime", "string", 1, lambda o: o["status"]["nodeInfo"]["containerRuntimeVersion"])]
    if key == "events":
        return [("Last Seen", "string", 0, lambda o: age(o.get("lastTimestamp"))),
                ("Type", "string", 0, lambda o: o.get("type", "")),
                ("Reason", "string", 0, lambda o: o.get("reason", "")),
                ("Object", "string", 0, lambda o: "%s/%s" % (o["involvedObject"]["kind"].lower(), o["involvedObject"]["name"])),
                ("Message", "string", 0, lambda o: o.get("message", "")),
                ("Count", "integer", 1, lambda o: o.get("count", 1)), (name[0], name[1], 1, name[3])]
    if key == "namespaces":
        return [name, ("Status", "string", 0, lambda o: o["status"]["phase"]), agec]
    if key == KEY_MD:
        st = lambda o, k: (o.get("status") or {}).get(k, 0)  # noqa: E731
        return [name, ("Cluster", "string", 0, lambda o: o["spec"].get("clusterName", "")),
                ("Replicas", "integer", 0, lambda o: st(o, "replicas")),
                ("Ready", "integer", 0, lambda o: st(o, "readyReplicas")),
                ("Updated", "integer", 0, lambda o: st(o, "updatedReplicas")),
                ("Unavailable", "integer", 0, lambda o: st(o, "unavailableReplicas")),
                ("Phase", "string", 0, lambda o: (o.get("status") or {}).get("phase", "")), agec]
    if key == KEY_MACHINE:
        return [name, ("Cluster", "string", 0, lambda o: o["spec"].get("clusterName", "")),
                ("NodeName", "string", 0, lambda o: ((o.get("status") or {}).get("nodeRef") or {}).get("name", "")),
                ("ProviderID", "string", 0, lambda o: o["spec"].get("providerID", "")),
                ("Phase", "string", 0, lambda o: (o.get("status") or {}).get("phase", "")), agec]
    return [name, agec]


def to_table(key, objs, rv, with_columns=True):
    cols = table_columns(key)
    t = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
         "columnDefinitions": [{"name": c[0], "type": c[1], "format": "name" if c[0] == "Name" else "",
                                "description": c[0], "priority": c[2]} for c in cols] if with_columns else None,
         "rows": []}
    for o in objs:
        md = {k: v for k, v in o["metadata"].items() if k != "managedFields"}
        t["rows"].append({"cells": [c[3](o) for c in cols],
                          "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": md}})
    return t


def wants_table(accept):
    return "as=Table" in (accept or "") and ("v=v1;" in accept or accept.endswith("v=v1") or "v=v1," in accept)


# ---------------------------------------------------------------- HTTP

PUBLIC = {"/version", "/healthz", "/livez", "/readyz"}


def rule_match(rules, verb, res, group, ns):
    """rules: "verb resource[/sub] [apiGroup] [ns=namespace]" (the format of
    t/kube/required-permissions.txt); "*" matches any verb/resource/group."""
    for r in rules or []:
        parts = r.split("#")[0].split()
        if len(parts) < 2:
            continue
        rns = [p[3:] for p in parts[2:] if p.startswith("ns=")]
        rg = [p for p in parts[2:] if not p.startswith("ns=")]
        rg = rg[0] if rg else ""
        if rg in ("core", '""'):
            rg = ""
        if (parts[0] in ("*", verb) and parts[1] in ("*", res) and rg in ("*", group)
                and (not rns or rns[0] == ns)):
            return True
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim/1.0"
    timeout = 300
    sim = None  # set by main()

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt, *a):
        if self.sim.args.verbose:
            log("http", line=repr(fmt % a))

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def do_DELETE(self):
        self.handle_api("DELETE")

    # ---- output

    def send_bytes(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, code, obj):
        self.send_bytes(code, json.dumps(obj).encode())

    def start_stream(self, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def client_gone(self):
        """During a stream the client sends nothing: readable means closed."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            return bool(r)
        except (OSError, ValueError):
            return True

    # ---- request

    def handle_api(self, method):
        self.close_connection = False
        try:
            n = int(self.headers.get("Content-Length") or 0)
            self.raw_body = self.rfile.read(n) if n > 0 else b""
            u = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(u.path)
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            self.user = self.authenticate(path)
            self.route(method, path.rstrip("/") or "/", q)
        except ApiError as e:
            self.send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:
            import traceback
            traceback.print_exc()
            try:
                self.send_json(500, ApiError(500, "InternalError", "kubesim: %r" % e).status())
            except OSError:
                self.close_connection = True

    def authenticate(self, path):
        auth = self.headers.get("Authorization", "")
        tok = auth[7:].strip() if auth.startswith("Bearer ") else None
        user = self.sim.tokens.get(tok) if tok else None
        if user is None and path not in PUBLIC:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user or {"name": "system:anonymous"}

    def authorize(self, verb, res, group, ns, name):
        u = self.user
        if rule_match(u.get("deny"), verb, res, group, ns) or ("allow" in u and not rule_match(u["allow"], verb, res, group, ns)):
            base = res.split("/")[0]
            what = ('%s "%s"' % (base if not group else base + "." + group, name)) if name else (base if not group else base + "." + group)
            scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
            raise ApiError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
                           % (what, u.get("name", "unknown"), verb, res, group, scope),
                           {"name": name or "", "group": group, "kind": base})

    def body(self):
        if not self.raw_body:
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        try:
            return json.loads(self.raw_body)
        except ValueError:
            try:
                import yaml
                return yaml.safe_load(self.raw_body)
            except Exception:
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")

    def route(self, method, path, q):
        sim = self.sim
        if path == "/version":
            return self.send_json(200, VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": "127.0.0.1:%d" % sim.args.port}]})
        if path == "/apis":
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [api_group(gv) for gv in RESOURCES if gv[0]]})
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self.openapi_v3(path[len("/openapi/v3"):].strip("/"))
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            gv, rest = ("", parts[1]), parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            gv, rest = (parts[1], parts[2]), parts[3:]
        elif parts[0] == "apis" and len(parts) == 2:
            for g in RESOURCES:
                if g[0] == parts[1]:
                    return self.send_json(200, api_group(g))
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if gv not in RESOURCES:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self.send_json(200, api_resource_list(gv))
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in RESOURCES[gv] and RESOURCES[gv][rest[2]]["ns"]:
            ns, rest = rest[1], rest[2:]
        res = rest[0]
        if res not in RESOURCES[gv]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        d = RESOURCES[gv][res]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        tail = "/".join(rest[3:])
        if d["ns"] and name and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub and sub not in d["subs"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if tail and sub != "proxy":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        watch = q.get("watch", "") in ("1", "true", "True")
        verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
        self.authorize(verb, res + ("/" + sub if sub else ""), gv[0], ns, name)
        if verb not in (d["subs"][sub] if sub else d["verbs"]):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if gv == METRICS:
            return self.metrics_api(res, ns, name, q)
        key = d["store"]
        if method == "GET" and not name:
            lreqs = parse_label_selector(q.get("labelSelector", ""))
            freqs = parse_field_selector(res, q.get("fieldSelector", ""))
            if watch:
                return self.watch(key, ns, lreqs, freqs, q)
            return self.list(key, ns, lreqs, freqs, q)
        if method == "POST" and not name:
            return self.create(key, d, ns, q)
        if sub == "log":
            return self.pod_log(ns, name, q)
        if sub == "proxy":
            return self.node_proxy(name, tail)
        if sub == "scale":
            return self.scale(method, ns, name)
        if method == "GET":
            with sim.store.lock:
                obj = sim.store.get(key, ns, name)
                if obj is None:
                    raise not_found(res, name, gv[0])
                if wants_table(self.headers.get("Accept")) and not sub:
                    return self.send_json(200, to_table(key, [obj], obj["metadata"]["resourceVersion"]))
                return self.send_json(200, obj)
        if method in ("PUT", "PATCH"):
            return self.update(key, res, gv[0], d["kind"], ns, name, sub, method)
        if method == "DELETE":
            return self.delete(key, res, gv[0], ns, name, q)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def openapi_v3(self, gvpath):
        """Just enough OpenAPI v3 for kubectl: each PATCH operation declares the
        fieldValidation parameter, so kubectl validates on the server (and we
        accept the object as sent) instead of downloading full schemas."""
        gvs = {("api/v1" if not g else "apis/%s/%s" % (g, v)): (g, v) for g, v in RESOURCES}
        if not gvpath:
            return self.send_json(200, {"paths": {k: {"serverRelativeURL": "/openapi/v3/%s?hash=kubesim1" % k}
                                                  for k in gvs}})
        if gvpath not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        g, v = gvs[gvpath]
        paths = {}
        for res, d in RESOURCES[(g, v)].items():
            base = "/" + gvpath + ("/namespaces/{namespace}" if d["ns"] else "") + "/" + res
            gvk = {"group": g, "version": v, "kind": d["kind"]}
            params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
            op = {"x-kubernetes-group-version-kind": gvk, "parameters": params,
                  "responses": {"200": {"description": "OK"}}}
            paths[base] = {"post": dict(op, **{"x-kubernetes-action": "post"})}
            paths[base + "/{name}"] = {"patch": dict(op, **{"x-kubernetes-action": "patch"}),
                                       "put": dict(op, **{"x-kubernetes-action": "put"})}
        self.send_json(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
                             "paths": paths, "components": {"schemas": {}}})

    # ---- collection verbs

    def list(self, key, ns, lreqs, freqs, q):
        st = self.sim.store
        with st.lock:
            items = [o for o in st.list(key, ns) if label_match(lreqs, o["metadata"].get("labels")) and field_match(freqs, o)]
            rv = st.rv
            if q.get("resourceVersionMatch") == "Exact" and q.get("resourceVersion") not in (None, "", str(rv)):
                raise gone("too old resource version: %s (%d)" % (q["resourceVersion"], rv))
            start = 0
            if q.get("continue"):
                try:
                    tok = json.loads(base64.urlsafe_b64decode(q["continue"].encode()))
                    start = int(tok["start"])
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "BadRequest", "continue key is not valid")
            items = items[start:]
            meta = {"resourceVersion": str(rv)}
            limit = int(q.get("limit") or 0)
            if limit > 0 and len(items) > limit:
                items = items[:limit]
                meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit, "rv": rv}).encode()).decode()
                meta["remainingItemCount"] = len(st.list(key, ns)) - start - limit
            kind, apiv = KIND_OF[key]
            if wants_table(self.headers.get("Accept")):
                t = to_table(key, items, rv)
                t["metadata"].update(meta)
                body = json.dumps(t).encode()
            else:
                body = json.dumps({"kind": kind + "List", "apiVersion": apiv, "metadata": meta, "items": items}).encode()
        self.send_bytes(200, body)

    def watch(self, key, ns, lreqs, freqs, q):
        st = self.sim.store
        rvp = q.get("resourceVersion", "")
        deadline = time.time() + float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None

        def matches(o):
            return (o is not None and (ns is None or o["metadata"].get("namespace", "") == ns)
                    and label_match(lreqs, o["metadata"].get("labels")) and field_match(freqs, o))
        table = wants_table(self.headers.get("Accept"))
        first = [True]

        def wrap(o):
            if not table:
                return o
            t = to_table(key, [o], o["metadata"]["resourceVersion"], first[0])
            first[0] = False
            return t
        err, initial = None, []
        with st.lock:
            if rvp in ("", "0"):
                initial = [json.dumps({"type": "ADDED", "object": wrap(o)}) for o in st.list(key, ns) if matches(o)]
                since = st.rv
            else:
                try:
                    since = int(rvp)
                except ValueError:
                    raise ApiError(400, "BadRequest", 'invalid resource version "%s"' % rvp)
                if since < st.oldest():
                    err = gone("too old resource version: %d (%d)" % (since, st.oldest() + 1))
                elif since > st.rv:
                    err = ApiError(504, "Timeout", "Too large resource version: %d, current: %d" % (since, st.rv),
                                   {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                    "retryAfterSeconds": 1})
        self.start_stream()
        if err:
            self.chunk((json.dumps({"type": "ERROR", "object": err.status()}) + "\n").encode())
            return self.end_stream()
        for line in initial:
            self.chunk((line + "\n").encode())
        while not self.sim.stopping.is_set():
            if deadline and time.time() >= deadline:
                break
            if self.client_gone():
                self.close_connection = True
                return
            lost = False
            with st.cond:
                if since < st.oldest():
                    lost = True
                    evs = []
                else:
                    evs = [h for h in st.hist if h[0] > since]
                    if not evs:
                        st.cond.wait(0.5)
                        continue
                    since = evs[-1][0]
            if lost:
                self.chunk((json.dumps({"type": "ERROR", "object": gone(
                    "too old resource version: %d (%d)" % (since, st.oldest() + 1)).status()}) + "\n").encode())
                break
            out = []
            for rv, res, ons, typ, obj, old in evs:
                if res != key:
                    continue
                now_m = matches(obj)
                if typ == "MODIFIED":
                    was_m = matches(old)
                    typ = "MODIFIED" if now_m and was_m else "ADDED" if now_m else "DELETED" if was_m else None
                    if typ is None:
                        continue
                elif not now_m:
                    continue
                out.append(json.dumps({"type": typ, "object": wrap(obj)}) + "\n")
            if out:
                self.chunk("".join(out).encode())
        self.end_stream()

    def create(self, key, d, ns, q):
        sim, st = self.sim, self.sim.store
        obj = self.body()
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        kind, apiv = KIND_OF[key]
        if obj.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)"
                           % (obj.get("apiVersion"), apiv))
        obj["kind"], obj["apiVersion"] = kind, apiv
        md = obj.setdefault("metadata", {})
        with st.lock:
            if d["ns"]:
                if md.get("namespace") not in (None, ns):
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
                md["namespace"] = ns
                if not st.get("namespaces", "", ns):
                    raise not_found("namespaces", ns)
            if not md.get("name"):
                if md.get("generateName"):
                    md["name"] = md["generateName"] + rand_suffix()
                else:
                    raise invalid(kind, "", "metadata.name: Required value: name or generateName is required")
            if len(md["name"]) > 253 or not NAME_RE.match(md["name"]):
                raise invalid(kind, md["name"], 'metadata.name: Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\'' % md["name"])
            if st.get(key, ns or "", md["name"]):
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (d["kind"].lower() + "s", md["name"]),
                               {"name": md["name"], "kind": d["kind"].lower() + "s"})
            if key == "pods":
                sim.admit_pod(obj, ns)
            elif key == "nodes":
                tmpl = obj
                new = sim.new_node(md["name"], {}, ready=True, extra_labels=md.get("labels"))
                new["spec"].update(tmpl.get("spec") or {})
                if (tmpl.get("status") or {}).get("capacity"):
                    new["status"]["capacity"].update(tmpl["status"]["capacity"])
                    new["status"]["allocatable"].update(tmpl["status"].get("allocatable") or tmpl["status"]["capacity"])
                obj = new
            elif key == "namespaces":
                obj = sim.new_namespace(md["name"])
            elif key == KEY_MD:
                obj.setdefault("spec", {}).setdefault("replicas", 1)
                obj.setdefault("status", {})
                obj["spec"].setdefault("selector", {"matchLabels": {"cluster.x-k8s.io/deployment-name": md["name"]}})
                obj["spec"].setdefault("clusterName", "kubesim")
                obj["spec"].setdefault("template", {"spec": {}})
                obj["spec"]["template"].setdefault("spec", {}).setdefault("infrastructureRef", {})
                md.setdefault("annotations", {}).setdefault("kubesim/node-template", "{}")
                md["generation"] = 1
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = iso()
            md.pop("resourceVersion", None)
            if q.get("dryRun"):
                return self.send_json(201, obj)
            st.add(key, obj)
            log("created", kind=kind, name=md["name"], ns=ns or "")
            self.send_json(201, obj)

    # ---- object verbs

    def update(self, key, res, group, kind, ns, name, sub, method):
        sim, st = self.sim, self.sim.store
        body = self.body()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        with st.lock:
            cur = st.get(key, ns, name)
            if cur is None:
                raise not_found(res, name, group)
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "the body of the request must be an object")
                new = copy.deepcopy(body)
                brv = (new.get("metadata") or {}).get("resourceVersion")
                if brv and brv != cur["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your changes to the latest version and try again' % (res, name),
                                   {"name": name, "kind": res})
                if (new.get("metadata") or {}).get("name") not in (None, name):
                    raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                                   % (new["metadata"]["name"], name))
            elif ctype == "application/json-patch+json":
                new = json_patch(cur, body)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "patch body must be a JSON object")
                new = merge_patch(cur, body, strategic=ctype.startswith("application/strategic"))
            else:
                raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json')
            for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if k in cur["metadata"]:
                    new.setdefault("metadata", {})[k] = cur["metadata"][k]
            new["kind"], new["apiVersion"] = cur["kind"], cur["apiVersion"]
            if sub == "status":
                final = copy.deepcopy(cur)
                final["status"] = new.get("status", {})
            else:
                final = new
                final["status"] = copy.deepcopy(cur.get("status", {}))
                if key == "pods" and final.get("spec") != cur["spec"]:
                    raise invalid("Pod", name, "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
                if key == KEY_MD:
                    r = (final.get("spec") or {}).get("replicas", 0)
                    if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                        raise invalid(kind, name, "spec.replicas: Invalid value: %r: must be greater than or equal to 0" % (r,))
                if final.get("spec") != cur.get("spec") and "generation" in cur["metadata"]:
                    final["metadata"]["generation"] = cur["metadata"]["generation"] + 1
            final["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if final != cur:
                final = st.replace(key, final)
                log("updated", kind=kind, name=name, how=method if method == "PUT" else ctype.split("/")[1])
            self.send_json(200, final)

    def delete(self, key, res, group, ns, name, q):
        sim, st = self.sim, self.sim.store
        opts = {}
        if self.raw_body:
            try:
                opts = json.loads(self.raw_body) or {}
            except ValueError:
                raise ApiError(400, "BadRequest", "DeleteOptions body is not JSON")
        grace = q.get("gracePeriodSeconds", opts.get("gracePeriodSeconds"))
        if grace is not None:
            try:
                grace = max(0, int(grace))
            except (TypeError, ValueError):
                raise ApiError(400, "BadRequest", "invalid gracePeriodSeconds")
        with st.lock:
            cur = st.get(key, ns, name)
            if cur is None:
                raise not_found(res, name, group)
            pre = (opts.get("preconditions") or {})
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise ApiError(409, "Conflict", "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (pre["uid"], cur["metadata"]["uid"]))
            if key == "pods":
                obj = sim.delete_pod(cur, grace)
            elif key == "nodes":
                obj = copy.deepcopy(cur)
                sim.remove_node(name)
            elif key == KEY_MACHINE:
                obj = copy.deepcopy(cur)
                nref = (cur.get("status") or {}).get("nodeRef") or {}
                if nref.get("name"):
                    sim.remove_node(nref["name"])
                st.remove(key, ns, name)
            elif key == KEY_MD:
                obj = st.mutate(key, ns, name, lambda m: m["metadata"].setdefault("deletionTimestamp", iso()))
            elif key == "namespaces":
                for p in st.list("pods", name):
                    sim.delete_pod(p, 0)
                obj = st.remove(key, ns, name)
            else:
                obj = st.remove(key, ns, name)
            log("deleted", res=res, name=name, ns=ns or "", grace=grace)
            self.send_json(200, obj)

    # ---- subresources

    def pod_log(self, ns, name, q):
        sim, st = self.sim, self.sim.store
        with st.lock:
            pod = st.get("pods", ns, name)
            if pod is None:
                raise not_found("pods", name)
            names = [c["name"] for c in pod["spec"]["containers"]]
            cname = q.get("container") or (names[0] if len(names) == 1 else None)
            if cname is None:
                raise ApiError(400, "BadRequest", "a container name must be specified for pod %s, choose one of: [%s]"
                               % (name, " ".join(names)))
            if cname not in names:
                raise ApiError(400, "BadRequest", "container %s is not valid for pod %s" % (cname, name))
            cs = next((c for c in pod["status"].get("containerStatuses") or [] if c["name"] == cname), None)
            prev = q.get("previous") in ("1", "true", "True")
            if cs is None or ("waiting" in cs["state"] and cs["restartCount"] == 0 and not cs.get("lastState")):
                why = (cs or {}).get("state", {}).get("waiting", {}).get("reason", "ContainerCreating")
                raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: %s' % (cname, name, why))
            n = cs["restartCount"]
            uid = pod["metadata"]["uid"]
            rt = PodRT(ns, name, uid, "", "")
            if prev:
                if n == 0:
                    raise ApiError(400, "BadRequest", 'previous terminated container "%s" in pod "%s" not found' % (cname, name))
                n -= 1
            elif not os.path.exists(sim.log_path(rt, cname, n)) and n > 0:
                n -= 1
            path = sim.log_path(rt, cname, n)
        follow = q.get("follow") in ("1", "true", "True")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        if q.get("tailLines"):
            t = int(q["tailLines"])
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-t:]) if t > 0 else b""
        if q.get("limitBytes"):
            data = data[:int(q["limitBytes"])]
        if not follow:
            return self.send_bytes(200, data, "text/plain")
        self.start_stream("text/plain")
        self.chunk(data)
        pos = os.path.getsize(path) if os.path.exists(path) else 0
        while not self.client_gone():
            with open(path, "rb") as f:
                f.seek(pos)
                more = f.read()
            pos += len(more)
            self.chunk(more)
            with st.lock:
                rtl = sim.rts.get(uid)
                running = rtl is not None and cname in rtl.procs
            if not running and not more:
                break
            time.sleep(0.2)
        self.end_stream()

    def node_proxy(self, name, tail):
        sim, st = self.sim, self.sim.store
        with st.lock:
            node = st.get("nodes", "", name)
            if node is None:
                raise not_found("nodes", name)
            err = (node["metadata"].get("annotations") or {}).get("kubesim/proxy-error")
            ready = node_ready(node)
        if err:
            code = int(err) if err.isdigit() else 503
            raise ApiError(code, "ServiceUnavailable" if code == 503 else "InternalError",
                           "error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused")
        if not ready and name in sim.ready_at:
            raise ApiError(503, "ServiceUnavailable",
                           "error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused")
        if tail == "metrics/resource":
            return self.send_bytes(200, sim.resource_metrics(name).encode(), "text/plain; version=0.0.4; charset=utf-8")
        if tail in ("healthz", ""):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        self.send_bytes(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def scale(self, method, ns, name):
        st = self.sim.store

        def scale_of(md):
            return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {"name": name, "namespace": ns, "uid": md["metadata"]["uid"],
                                 "resourceVersion": md["metadata"]["resourceVersion"],
                                 "creationTimestamp": md["metadata"]["creationTimestamp"]},
                    "spec": {"replicas": md["spec"].get("replicas", 0)},
                    "status": {"replicas": (md.get("status") or {}).get("replicas", 0),
                               "selector": (md.get("status") or {}).get("selector", "")}}
        with st.lock:
            md = st.get(KEY_MD, ns, name)
            if md is None:
                raise not_found("machinedeployments", name, "cluster.x-k8s.io")
            if method == "GET":
                return self.send_json(200, scale_of(md))
            body = self.body()
            cur = scale_of(md)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if method == "PUT":
                new = body
                brv = ((body or {}).get("metadata") or {}).get("resourceVersion")
                if brv and brv != md["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on machinedeployments.cluster.x-k8s.io "%s": the object has been modified; please apply your changes to the latest version and try again' % name)
            elif ctype == "application/json-patch+json":
                new = json_patch(cur, body)
            else:
                new = merge_patch(cur, body)
            r = ((new or {}).get("spec") or {}).get("replicas")
            if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                raise invalid("Scale", name, "spec.replicas: Invalid value: %r: must be greater than or equal to 0" % (r,))

            def f(m):
                if m["spec"].get("replicas") != r:
                    m["spec"]["replicas"] = r
                    m["metadata"]["generation"] = m["metadata"].get("generation", 1) + 1
            md = st.mutate(KEY_MD, ns, name, f)
            log("scaled", md=name, replicas=r)
            self.send_json(200, scale_of(md))

    def metrics_api(self, res, ns, name, q):
        sim, st = self.sim, self.sim.store
        lreqs = parse_label_selector(q.get("labelSelector", ""))
        with st.lock:
            if res == "pods":
                if name:
                    pod = st.get("pods", ns, name)
                    m = sim.pod_metrics(pod) if pod else None
                    if m is None:
                        raise ApiError(404, "NotFound", 'podmetrics.metrics.k8s.io "%s/%s" not found' % (ns, name),
                                       {"name": name, "group": "metrics.k8s.io", "kind": "pods"})
                    return self.send_json(200, m)
                items = [m for m in (sim.pod_metrics(p) for p in st.list("pods", ns)
                                     if label_match(lreqs, p["metadata"].get("labels"))) if m]
                return self.send_json(200, {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                            "metadata": {}, "items": items})
            if name:
                node = st.get("nodes", "", name)
                if node is None:
                    raise ApiError(404, "NotFound", 'nodemetrics.metrics.k8s.io "%s" not found' % name,
                                   {"name": name, "group": "metrics.k8s.io", "kind": "nodes"})
                return self.send_json(200, sim.node_metrics(node))
            items = [sim.node_metrics(n) for n in st.list("nodes") if label_match(lreqs, n["metadata"].get("labels"))]
            return self.send_json(200, {"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                        "metadata": {}, "items": items})


# ---------------------------------------------------------------- main

def make_cert(state_dir):
    """Self-signed certificate for 127.0.0.1/localhost (also the CA for clients)."""
    cert, key = os.path.join(state_dir, "tls.crt"), os.path.join(state_dir, "tls.key")
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=kubesim", "-keyout", key, "-out", cert,
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-addext", "basicConstraints=critical,CA:TRUE"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API simulator for modelhub tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (see --ready-file)")
    p.add_argument("--tls", action="store_true", help="serve HTTPS")
    p.add_argument("--cert", help="PEM certificate (default: self-signed in --state-dir)")
    p.add_argument("--key", help="PEM key")
    p.add_argument("--config", help="JSON: nodes, machinedeployments, namespaces, users, timing")
    p.add_argument("--token", help="Bearer token with full access")
    p.add_argument("--models-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
    p.add_argument("--state-dir", required=True, help="logs, state.json, generated certificate")
    p.add_argument("--restore", action="store_true", help="load <state-dir>/state.json (a restarted API server)")
    p.add_argument("--keep-processes", action="store_true", help="leave pod processes running on exit (for --restore)")
    p.add_argument("--ready-file", help="write the port here once listening")
    p.add_argument("--history", type=int, default=1000, help="watch events kept for resuming")
    p.add_argument("--ip-octet", type=int, default=0, help="second octet of pod IPs 127.B.x.y (default from pid)")
    p.add_argument("--port-offset", type=int, default=0,
                   help="when not root, container ports below 1024 are bound at port+offset")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = p.parse_args(argv)
    cfg = {}
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
    args.models_dir = os.path.abspath(args.models_dir)
    os.makedirs(args.state_dir, exist_ok=True)
    sim = Simulator(args, cfg)
    Handler.sim = sim
    httpd = Server((args.host, args.port), Handler)
    args.port = httpd.server_address[1]
    if args.tls:
        cert, key = (args.cert, args.key) if args.cert else make_cert(args.state_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    if args.restore:
        sim.restore()
    sim.bootstrap()
    sim.sampler.scan()
    threading.Thread(target=sim.sampler.run, args=(sim.stopping,), name="sampler", daemon=True).start()
    threading.Thread(target=sim.controller, name="controller", daemon=True).start()

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % args.port)
        os.replace(args.ready_file + ".tmp", args.ready_file)
    log("ready", port=args.port, tls=int(args.tls), epoch=sim.store.epoch, models=",".join(sorted(sim.models)))
    print("ready %d" % args.port, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        sim.shutdown(args.keep_processes)
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
