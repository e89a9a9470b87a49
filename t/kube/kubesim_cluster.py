"""kubesim_cluster.py — the simulated cluster behind the API: nodes, the
scheduler, one "kubelet" thread per container running the demo model as a
real process, MachineDeployment reconciliation, resource metrics from /proc,
and the state file.

Runs in: the kubesim.py process (t/kube/); threads: controller, sampler, one
  kubelet thread per container.
Called by: kubesim.py (main: Simulator, start threads) and kubesim_api.py
  (admission, deletion, metrics, events).
Owns: the pod processes (one process group each, killed on delete, node
  removal and exit unless --keep-processes), their log files under
  <state-dir>/logs/, <state-dir>/state.json.
Locking: Store.lock (an RLock) around every object change; never held while
  sleeping, starting a process or probing a pod over HTTP.
"""

import collections
import copy
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid

from kubesim_autoscaler import ExternalAutoscaler
from kubesim_core import (
    ApiError, KEY_MACHINE, KEY_MD, MAX_EVENTS, NAME_RE, NODE_BASE_MEMORY, PAGE, PYTHON, SYNTHETIC_IMAGE, Store,
    TICKS, TIMING_DEFAULTS, fmt_cpu, fmt_mem, image_repo, invalid, iso, label_match,
    log, node_affinity_ok, node_ready, parse_iso, pod_recompute, pod_requests,
    qos_class, qty, rand_suffix, selector_from_match, set_condition, terminal, tolerates)


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

def die_with_parent():
    """In the child before exec: SIGKILL when the simulator (the spawning
    kubelet thread) dies, so a killed simulator leaves no model processes
    behind (not used with --keep-processes)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


SETPRIV = shutil.which("setpriv")


def spawn_argv(argv, keep):
    """(argv, preexec_fn) for a container process that dies with the
    simulator: setpriv --pdeathsig KILL (util-linux) execs it with the
    parent-death signal set, so Popen can vfork; a preexec_fn forces a full
    fork with the GIL held, 198 ms of stalled simulator per pod against 9 ms
    (a 300 MB process with 300 threads), which at 500 pods stalled every
    thread for over a minute. The preexec_fn is the fallback."""
    if keep:
        return argv, None
    if SETPRIV:
        return [SETPRIV, "--pdeathsig", "KILL", "--"] + argv, None
    return argv, die_with_parent


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

    def wait(self, timeout=None):
        end = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if end is not None and time.time() >= end:
                raise subprocess.TimeoutExpired("adopted pid %d" % self.pid, timeout)
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
        self.synth = {}  # container -> (start, cpu cores, memory bytes) of a synthetic container
        self.restarts0 = {}  # container -> restartCount to continue from after a restore

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
        self.ip_used = set()  # pod addresses in use (self.rts, plus ones being bound)
        self.ip_b = args.ip_octet or (16 + os.getpid() % 200)
        self.ready_at = {}  # node name -> time it becomes Ready
        self.provision_at = {}  # (ns, Machine name) -> time its Node registers
        self.sched_msg = {}  # pod uid -> (message, time of last FailedScheduling)
        self.node_rts = {}  # node name -> pod uid -> PodRT (metrics per node)
        self.watch_gen = 0  # bumped by /kubesim/drop-watches; open watches then end
        self.open_watches = 0
        self.deleting = set()  # (ns, name, uid) of pods terminating gracefully
        self.req_cache = {}  # pod uid -> (cpu, memory) requests
        self.ev_index = {}  # (involved uid, reason, message, type) -> (ns, name) of the Event
        self.ev_order = collections.deque()  # (ns, name, aggregation key), oldest first
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
        self.audit = []  # write requests seen, oldest first (GET /kubesim/audit)
        self.audit_lock = threading.Lock()
        self.faults = []  # injected faults (POST /kubesim/faults), first match wins
        ext = cfg.get("external_autoscaler")
        self.ext = ExternalAutoscaler(self, ext) if ext else None

    # ---- audit log and fault injection (tests)

    def audit_write(self, user, verb, res, group, ns, name, allowed):
        """Record one write request (also refused ones) in memory and in
        <state-dir>/audit.jsonl: tests prove from it who wrote what."""
        rec = {"at": iso(), "user": user, "verb": verb, "resource": res, "group": group,
               "namespace": ns or "", "name": name or "", "allowed": bool(allowed)}
        with self.audit_lock:
            self.audit.append(rec)
            with open(os.path.join(self.args.state_dir, "audit.jsonl"), "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")

    def set_faults(self, faults):
        with self.audit_lock:
            self.faults = [dict(f, re=re.compile(f["path"]), count=int(f.get("count", 1))) for f in faults]

    def take_fault(self, method, path):
        """The injected fault matching this request (its count decremented), or None."""
        with self.audit_lock:
            for f in self.faults:
                if f["count"] > 0 and f.get("method", method) == method and f["re"].search(path):
                    f["count"] -= 1
                    return f
        return None

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
        if "provision_seconds" in md:
            node["provision_seconds"] = md["provision_seconds"]
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

    def md_machines(self, md):
        """Machines of md, with or without a Node yet (provisioning)."""
        name = md["metadata"]["name"]
        return [m for m in self.store.list(KEY_MACHINE, md["metadata"].get("namespace"))
                if (m["metadata"].get("labels") or {}).get("cluster.x-k8s.io/deployment-name") == name]

    def md_status(self, md):
        machines = self.md_machines(md) if md["metadata"].get("resourceVersion") else []
        nodes = self.md_nodes(md) if machines else []
        ready = sum(1 for n in nodes if node_ready(n))
        want = int(md["spec"].get("replicas", 0))
        have = len(machines)
        phase = "Running" if have == want else ("ScalingUp" if have < want else "ScalingDown")
        sel = ",".join("%s=%s" % kv for kv in sorted(md["spec"]["selector"]["matchLabels"].items()))
        md["status"] = {"replicas": have, "readyReplicas": ready, "availableReplicas": ready,
                        "updatedReplicas": have, "unavailableReplicas": max(0, want - ready),
                        "observedGeneration": md["metadata"].get("generation", 1), "phase": phase,
                        "selector": sel}

    def md_template(self, md):
        return json.loads(md["metadata"]["annotations"].get("kubesim/node-template", "{}"))

    def add_md_node(self, md, ready=False):
        """Create a Machine for MachineDeployment md (lock held). Its Node
        registers at once, or after the template's provision_seconds (the
        cloud creating the machine); then it turns Ready after node_ready_delay."""
        mdname, ns = md["metadata"]["name"], md["metadata"]["namespace"]
        tmpl = self.md_template(md)
        name = "%s-%s-%s" % (mdname, rand_suffix(5), rand_suffix(5))
        labels = dict(md["spec"]["selector"]["matchLabels"])
        machine = {"kind": "Machine", "apiVersion": "cluster.x-k8s.io/v1beta1",
                   "metadata": self.meta(name, ns, labels=labels),
                   "spec": {"clusterName": md["spec"]["clusterName"], "providerID": "kubesim://" + name,
                            "bootstrap": {"dataSecretName": mdname + "-bootstrap"},
                            "infrastructureRef": md["spec"]["template"]["spec"]["infrastructureRef"]},
                   "status": {"phase": "Provisioning"}}
        machine["metadata"]["ownerReferences"] = [{"apiVersion": "cluster.x-k8s.io/v1beta1",
                                                   "kind": "MachineDeployment", "name": mdname,
                                                   "uid": md["metadata"]["uid"]}]
        self.store.add(KEY_MACHINE, machine)
        delay = 0.0 if ready else float(tmpl.get("provision_seconds", self.timing["provision_seconds"]))
        if delay > 0:
            self.provision_at[(ns, name)] = time.time() + delay
            log("machine provisioning", machine=name, group=mdname, seconds=delay)
            return None
        return self.register_machine_node(md, machine, ready)

    def register_machine_node(self, md, machine, ready):
        """The Node of a provisioned Machine joins the cluster (lock held)."""
        mdname, ns = md["metadata"]["name"], md["metadata"]["namespace"]
        name = machine["metadata"]["name"]
        tmpl = self.md_template(md)
        labels = dict(md["spec"]["selector"]["matchLabels"])
        labels.setdefault(self.group_label, tmpl.get("group") or mdname)
        node = self.new_node(name, tmpl, ready, extra_labels=labels,
                             annotations={"cluster.x-k8s.io/machine": name,
                                          "cluster.x-k8s.io/owner-kind": "MachineSet",
                                          "cluster.x-k8s.io/owner-name": mdname,
                                          "cluster.x-k8s.io/cluster-namespace": ns})
        self.store.add("nodes", node)

        def provisioned(m):
            m["status"].update(phase="Running" if ready else "Provisioned",
                               nodeRef={"apiVersion": "v1", "kind": "Node", "name": name,
                                        "uid": node["metadata"]["uid"]})
        self.store.mutate(KEY_MACHINE, ns, name, provisioned)
        if not ready:
            self.ready_at[name] = time.time() + self.timing["node_ready_delay"]
        self.event(node, "Normal", "RegisteredNode", "Node %s event: Registered Node %s in Controller" % (name, name),
                   "node-controller")
        log("node added", node=name, group=mdname, ready=int(ready))
        return node

    def remove_machine(self, ns, mname):
        """Delete a Machine and its Node, if it has one (lock held)."""
        m = self.store.get(KEY_MACHINE, ns, mname)
        if m is None:
            return
        nref = (m.get("status") or {}).get("nodeRef") or {}
        if nref.get("name"):
            self.remove_node(nref["name"])
        self.store.remove(KEY_MACHINE, ns, mname)
        self.provision_at.pop((ns, mname), None)

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
            agg = (md.get("uid"), reason, message, typ)
            known = self.ev_index.get(agg)
            if known:
                def bump(e):
                    e["count"] = e.get("count", 1) + 1
                    e["lastTimestamp"] = iso()
                if self.store.mutate("events", known[0], known[1], bump):
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
            self.index_event(ev, agg)
            while len(self.ev_order) > MAX_EVENTS:
                ens, ename, eagg = self.ev_order.popleft()
                if self.ev_index.get(eagg) == (ens, ename):
                    del self.ev_index[eagg]
                self.store.remove("events", ens, ename)

    def index_event(self, ev, agg=None):
        """Remember ev for aggregation and for trimming the oldest beyond MAX_EVENTS."""
        if agg is None:
            agg = (ev["involvedObject"].get("uid"), ev.get("reason"), ev.get("message"), ev.get("type"))
        key = (ev["metadata"]["namespace"], ev["metadata"]["name"])
        self.ev_index[agg] = key
        self.ev_order.append(key + (agg,))

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


class SimPods:
    """Mixin: scheduler and kubelet of Sim."""

    # ---- scheduler

    def schedule_pass(self):
        with self.store.lock:
            pods = self.store.values("pods")
            pending = [p for p in pods
                       if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
                       and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"]
            if not pending:
                return
            nodes = self.store.list("nodes")
            used = {n["metadata"]["name"]: [0.0, 0.0, 0] for n in nodes}
            podsby = collections.defaultdict(list)
            for p in pods:
                nn = p["spec"].get("nodeName")
                if nn in used and not terminal(p):
                    uid = p["metadata"]["uid"]
                    if uid not in self.req_cache:
                        self.req_cache[uid] = pod_requests(p)  # the spec is immutable
                    c, m = self.req_cache[uid]
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
        ip = self.alloc_ip([self.container_port(c) for c in pod["spec"]["containers"]
                            if image_repo(c["image"]) != SYNTHETIC_IMAGE])
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

    def alloc_ip(self, ports=()):
        """Next free loopback address 127.B.x.y. Another simulator (parallel
        tests) may use the same B: an address whose ports cannot be bound is skipped."""
        used = self.ip_used
        for _ in range(62500):
            n = self.ip_next
            self.ip_next = n % 62499 + 1
            ip = "127.%d.%d.%d" % (self.ip_b, n // 250, n % 250 + 1)
            if ip in used or not all(self.port_free(ip, self.host_port(p)) for p in ports):
                continue
            used.add(ip)
            return ip
        raise ApiError(500, "InternalError", "kubesim: no free pod address")

    @staticmethod
    def port_free(ip, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict; a listener is
        try:
            s.bind((ip, port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def start_pod(self, pod):
        md = pod["metadata"]
        rt = PodRT(md["namespace"], md["name"], md["uid"], pod["spec"]["nodeName"], pod["status"]["podIP"])
        self.add_rt(rt)
        for c in pod["spec"]["containers"]:
            if image_repo(c["image"]) == SYNTHETIC_IMAGE:
                self.start_synthetic(rt, c)
                continue
            t = threading.Thread(target=self.kubelet, args=(rt, copy.deepcopy(c), pod["spec"].get("restartPolicy", "Always")),
                                 name="kubelet-%s-%s" % (md["name"], c["name"]), daemon=True)
            rt.threads.append(t)
            t.start()

    def add_rt(self, rt):
        self.ip_used.add(rt.ip)
        self.rts[rt.uid] = rt
        self.node_rts.setdefault(rt.node, {})[rt.uid] = rt

    def start_synthetic(self, rt, c, started=None):
        """A container without a process (image kubesim/synthetic): running and
        ready at once; its usage comes from env KUBESIM_CPU_MILLICORES (CPU
        rate, default 100) and KUBESIM_MEMORY_MIB (working set, default 64).
        For load and scrape benchmarks with thousands of pods (lock held)."""
        env = {e["name"]: e.get("value", "") for e in c.get("env") or []}
        try:
            cores = float(env.get("KUBESIM_CPU_MILLICORES", 100)) / 1000.0
            mem = float(env.get("KUBESIM_MEMORY_MIB", 64)) * 1048576
        except ValueError:
            cores, mem = 0.1, 64 * 1048576
        fresh = started is None
        started = started or time.time()
        rt.synth[c["name"]] = (started, cores, mem)
        if fresh:
            cid = "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex
            self.cstatus(rt, c["name"], containerID=cid, started=True, ready=True,
                         imageID="%s@sha256:%s" % (SYNTHETIC_IMAGE, "0" * 64),
                         state={"running": {"startedAt": iso(started)}})
            self.kev(rt, c["name"], "Normal", "Started", "Started container %s" % c["name"])

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
        restarts, pulled, last = rt.restarts0.get(cname, 0), cname in rt.adopt, None
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
            term = self.run_container(rt, c, model, restarts, last)
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
            log("container restart", pod=rt.name, container=cname, code=term["exitCode"],
                reason=term["reason"], restarts=restarts, delay=delay)
            if not delay:
                # as the kubelet: the first restart is immediate, the status shows
                # the terminated state until the new container runs (run_container
                # then sets lastState and restartCount)
                self.cstatus(rt, cname, state={"terminated": term}, ready=False, started=False)
                last = term
                continue
            last = None
            msg = "back-off %gs restarting failed container=%s pod=%s_%s(%s)" % (delay, cname, rt.name, rt.ns, rt.uid)
            self.cstatus(rt, cname, lastState={"terminated": term}, restartCount=restarts, ready=False,
                         started=False, state={"waiting": {"reason": "CrashLoopBackOff", "message": msg}})
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

    def server_argv(self):
        """The model server of --models-dir: an executable `serve` there (a
        compiled server, bench/concurrency's), else python3 serve.py; a
        Python start-up per pod (~40 ms of CPU) is most of the simulator's
        machine time at 500 pods."""
        exe = os.path.join(self.args.models_dir, "serve")
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return [exe]
        return [PYTHON, os.path.join(self.args.models_dir, "serve.py")]

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

    def run_container(self, rt, c, model, n, last=None):
        """Start the process and watch it; returns its terminated state (None if
        stopped first). n is the restart count; last the previous run's terminated
        state when it was restarted at once (becomes lastState now)."""
        cname = c["name"]
        port = self.host_port(self.container_port(c))
        argv = self.server_argv() + ["--model", model,
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
                    run, pre = spawn_argv(argv, self.args.keep_processes)
                    proc = subprocess.Popen(run, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            env=env, cwd=self.args.models_dir, start_new_session=True,
                                            preexec_fn=pre)
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
            extra = {"lastState": {"terminated": last}, "restartCount": n} if last else {}
            self.cstatus(rt, cname, containerID=cid, started=True, ready=probe is None,
                         imageID="kubesim/%s@sha256:%s" % (image_repo(c["image"]), "0" * 64),
                         state={"running": {"startedAt": iso(started)}}, **extra)
            log("container started", pod=rt.name, container=cname, pid=proc.pid, ip=rt.ip, port=port)
        limit = None
        lim = (c.get("resources") or {}).get("limits") or {}
        if "memory" in lim:
            limit = qty(lim["memory"])
        why = self.watch_process(rt, c, proc, probe, limit, port)
        oom = why == "oom"
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
        """Poll until the process exits or the pod stops; returns "oom" when
        OOM-killed, "liveness" when killed for a failing liveness probe, else None."""
        cname = c["name"]
        ready = probe is None
        delay = float((probe or {}).get("initialDelaySeconds", 0))
        period = min(float((probe or {}).get("periodSeconds", 10)), self.timing["probe_period"])
        # Once ready, the pod's own period (up to 2 s): the cap only speeds up
        # readiness; 500 ready pods probed every 0.5 s cost the simulator a core.
        period_ready = max(period, min(float((probe or {}).get("periodSeconds", 10)), 2.0))
        thresh = int((probe or {}).get("failureThreshold", 3))
        started, next_probe, fails = time.time(), time.time() + delay, 0
        live = c.get("livenessProbe") or None
        next_live = time.time() + float((live or {}).get("initialDelaySeconds", 0))
        live_period = min(float((live or {}).get("periodSeconds", 10)), self.timing["probe_period"])
        live_thresh, live_fails = int((live or {}).get("failureThreshold", 3)), 0
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
                    return "oom"
            if live is not None and time.time() >= next_live:
                next_live = time.time() + live_period
                err = self.probe(rt, c, live, port)
                live_fails = 0 if err is None else live_fails + 1
                if err is not None:
                    self.kev(rt, cname, "Warning", "Unhealthy", "Liveness probe failed: %s" % err)
                if live_fails >= live_thresh:
                    self.kev(rt, cname, "Normal", "Killing",
                             "Container %s failed liveness probe, will be restarted" % cname)
                    self.signal_group(proc, signal.SIGTERM)
                    try:
                        proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        self.signal_group(proc, signal.SIGKILL)
                        proc.wait()
                    log("liveness kill", pod=rt.name, container=cname)
                    return "liveness"
            if probe is not None and time.time() >= next_probe:
                next_probe = time.time() + (period_ready if ready else period)
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
            # until ready at timing.poll (readiness is the start-up's last step)
            rt.stop.wait(self.poll_period() if ready else self.timing["poll"])
        return None

    def poll_period(self):
        """The watchdog's period: timing.poll, stretched with the number of
        running containers (2 ms each, at most 1 s: the kubelet's PLEG relists
        every second) so hundreds of pods do not spin the simulator's GIL."""
        return max(self.timing["poll"], min(1.0, 0.002 * len(self.rts)))

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
        if hg.get("scheme", "HTTP").upper() == "HTTP":
            return self.probe_http(url, rt.ip, p, hg.get("path", "/"), float(probe.get("timeoutSeconds", 1)))
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

    @staticmethod
    def probe_http(url, ip, port, path, timeout):
        """The kubelet's httpGet probe over a plain socket: one GET, the status
        line read (200-399 passes). urllib took 3.2x the CPU (290 against 90 us
        a probe), which adds up at hundreds of pods."""
        try:
            with socket.create_connection((ip, port), timeout=timeout) as s:
                s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: kube-probe/1.29\r\n"
                           "Accept: */*\r\nConnection: close\r\n\r\n" % (path, ip, port)).encode())
                head = b""
                while b"\r\n" not in head and len(head) < 4096:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    head += chunk
        except ConnectionRefusedError:
            return 'Get "%s": dial tcp %s:%d: connect: connection refused' % (url, ip, port)
        except socket.timeout:
            return 'Get "%s": context deadline exceeded (Client.Timeout exceeded while awaiting headers)' % url
        except OSError as e:
            return 'Get "%s": %s' % (url, e)
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[1].isdigit():
            return 'Get "%s": malformed HTTP response' % url
        code = int(parts[1])
        if 200 <= code < 400:
            return None
        return "HTTP probe failed with statuscode: %d" % code

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
        self.deleting.add((ns, name, uid))
        self.kill_pod(pod, grace)
        log("pod deleting", pod=name, grace=grace)
        return pod

    def evict_pod(self, ns, name, message):
        """Kubelet eviction under node pressure: the containers are killed at
        once and the pod ends Failed with reason Evicted (it stays until
        deleted, as a real evicted pod does). False when there is no such pod."""
        with self.store.lock:
            pod = self.store.get("pods", ns, name)
            if pod is None:
                return False
            self.kill_pod(pod, 0)

            def f(p):
                p["status"]["phase"] = "Failed"
                p["status"]["reason"] = "Evicted"
                p["status"]["message"] = message
                set_condition(p, "Ready", "False", "PodFailed")
            pod = self.store.mutate("pods", ns, name, f)
            self.event(pod, "Warning", "Evicted", message, "kubelet", pod["spec"].get("nodeName"))
        log("pod evicted", pod=name)
        return True

    def set_node_ready(self, name, ready):
        """The kubelet of node name stops or resumes posting Ready. False when
        there is no such node."""
        taint = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}

        def f(n):
            n["status"]["conditions"] = [c for c in n["status"]["conditions"] if c["type"] != "Ready"]
            n["status"]["conditions"].append(self.ready_condition(ready))
            ts = [t for t in n["spec"].get("taints") or [] if t.get("key") != taint["key"]]
            if not ready:
                ts.append(dict(taint, timeAdded=iso()))
            if ts:
                n["spec"]["taints"] = ts
            else:
                n["spec"].pop("taints", None)
        with self.store.lock:
            node = self.store.mutate("nodes", "", name, f)
            if node is None:
                return False
            self.event(node, "Normal", "NodeReady" if ready else "NodeNotReady",
                       "Node %s status is now: %s" % (name, "NodeReady" if ready else "NodeNotReady"),
                       "node-controller", name)
        log("node readiness set", node=name, ready=int(ready))
        return True

    def finalize_deletions(self):
        """Remove terminating pods whose containers have all stopped."""
        with self.store.lock:
            for key in list(self.deleting):
                ns, name, uid = key
                pod = self.store.get("pods", ns, name)
                if pod is None or pod["metadata"]["uid"] != uid:
                    self.deleting.discard(key)
                    continue
                rt = self.rts.get(uid)
                if rt is None or not rt.alive():
                    self.store.remove("pods", ns, name)
                    self.deleting.discard(key)
                    log("pod deleted", pod=name)

    def forget_gone(self):
        """Drop runtime records of pods that no longer exist (every second)."""
        with self.store.lock:
            live = {p["metadata"]["uid"] for p in self.store.values("pods")}
            for uid in [u for u, rt in self.rts.items() if u not in live and not rt.alive()]:
                rt = self.rts.pop(uid)
                self.node_rts.get(rt.node, {}).pop(uid, None)
                self.ip_used.discard(rt.ip)
            for d in (self.sched_msg, self.req_cache):
                for uid in [u for u in d if u not in live]:
                    del d[uid]


class SimCtl:
    """Mixin: node lifecycle, MachineDeployment reconciler, metrics, state file."""

    def controller(self):
        last_sched = last_dump = last_gc = 0.0
        while not self.stopping.is_set():
            now = time.time()
            try:
                self.nodes_pass()
                self.md_pass()
                if now - last_sched >= self.timing["scheduler_period"]:
                    last_sched = now
                    self.schedule_pass()
                if self.ext:
                    self.ext.tick()
                self.finalize_deletions()
                if now - last_gc >= 1.0:
                    last_gc = now
                    self.forget_gone()
                if self.args.persist and self.store.dirty and now - last_dump >= 1.0:
                    last_dump = now
                    self.dump()
            except Exception as e:  # keep the control loop alive; the error is a simulator bug
                log("controller error", "error", error=repr(e))
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
            now = time.time()
            for (ns, mname), at in list(self.provision_at.items()):
                m = self.store.get(KEY_MACHINE, ns, mname)
                md = m and self.store.get(KEY_MD, ns, m["metadata"]["ownerReferences"][0]["name"])
                if not md:
                    del self.provision_at[(ns, mname)]
                elif now >= at:
                    del self.provision_at[(ns, mname)]
                    self.register_machine_node(md, m, False)
            for md in self.store.list(KEY_MD):
                want = max(0, int(md["spec"].get("replicas") or 0))
                machines = self.md_machines(md)
                if md["metadata"].get("deletionTimestamp"):
                    want = 0
                for _ in range(want - len(machines)):
                    self.add_md_node(md)
                ns, name = md["metadata"]["namespace"], md["metadata"]["name"]
                if len(machines) > want:
                    for m in self.scale_down_order(md, machines)[:len(machines) - want]:
                        self.remove_machine(ns, m["metadata"]["name"])
                if md["metadata"].get("deletionTimestamp") and not self.md_machines(md):
                    self.store.remove(KEY_MD, ns, name)
                    continue
                self.store.mutate(KEY_MD, ns, name, self.md_status)

    def scale_down_order(self, md, machines):
        """Machines to delete first, as Cluster API's MachineSet picks them:
        the ones marked cluster.x-k8s.io/delete-machine (on the Machine; the
        simulator also accepts the mark on its Node), then machines without a
        Ready node, then the least busy, newest first."""
        busy = collections.Counter(p["spec"].get("nodeName") for p in self.store.list("pods") if not terminal(p))

        def key(m):
            nname = ((m.get("status") or {}).get("nodeRef") or {}).get("name", "")
            n = self.store.get("nodes", "", nname) if nname else None
            marked = "cluster.x-k8s.io/delete-machine" in (m["metadata"].get("annotations") or {}) \
                or "cluster.x-k8s.io/delete-machine" in ((n or {}).get("metadata", {}).get("annotations") or {})
            return (not marked, bool(n and node_ready(n)), busy[nname], -parse_iso(m["metadata"]["creationTimestamp"]),
                    m["metadata"]["name"])
        return sorted(machines, key=key)

    # ---- metrics

    def usage(self, rt, cname):
        """(cpu seconds, working set bytes, cpu cores now, start time) of one
        running container, or None (process not seen by a /proc scan yet)."""
        if cname in rt.synth:
            start, cores, mem = rt.synth[cname]
            return cores * max(0.0, time.time() - start), mem, cores, start
        proc = rt.procs.get(cname)
        g = self.sampler.group(proc.pid) if proc else None
        if not g:
            return None
        return g[0], g[1], self.sampler.rate(proc.pid), rt.started.get(cname, 0.0)

    def node_containers(self, node):
        """[(PodRT, container, usage)] of the containers running on node, sorted."""
        with self.store.lock:
            rts = sorted(self.node_rts.get(node, {}).values(), key=lambda r: (r.ns, r.name))
            out = []
            for rt in rts:
                for cname in sorted(set(rt.procs) | set(rt.synth)):
                    u = self.usage(rt, cname)
                    if u:
                        out.append((rt, cname, u))
            return out

    def resource_metrics(self, node):
        """Prometheus text of GET /api/v1/nodes/{node}/proxy/metrics/resource."""
        rows = self.node_containers(node)
        with self.store.lock:
            dead = self.node_cpu_dead[node]
        pods = collections.OrderedDict()
        for rt, cname, u in rows:
            p = pods.setdefault((rt.ns, rt.name), [0.0, 0])
            p[0] += u[0]
            p[1] += u[1]
        ts = int(time.time() * 1000)
        out = []

        def head(name, typ, help_):
            out.append("# HELP %s %s" % (name, help_))
            out.append("# TYPE %s %s" % (name, typ))

        def lab(rt, cname):
            return '{container="%s",namespace="%s",pod="%s"}' % (cname, rt.ns, rt.name)
        head("container_cpu_usage_seconds_total", "counter",
             "[STABLE] Cumulative cpu time consumed by the container in core-seconds")
        out.extend("container_cpu_usage_seconds_total%s %.9f %d" % (lab(rt, c), u[0], ts) for rt, c, u in rows)
        head("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes")
        out.extend("container_memory_working_set_bytes%s %d %d" % (lab(rt, c), u[1], ts) for rt, c, u in rows)
        head("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds")
        out.extend("container_start_time_seconds%s %.9f %d" % (lab(rt, c), u[3], ts) for rt, c, u in rows)
        head("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds")
        out.append("node_cpu_usage_seconds_total %.9f %d" % (dead + sum(u[0] for _, _, u in rows), ts))
        head("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes")
        out.append("node_memory_working_set_bytes %d %d" % (NODE_BASE_MEMORY + sum(u[1] for _, _, u in rows), ts))
        head("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds")
        out.extend('pod_cpu_usage_seconds_total{namespace="%s",pod="%s"} %.9f %d' % (k[0], k[1], v[0], ts)
                   for k, v in pods.items())
        head("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes")
        out.extend('pod_memory_working_set_bytes{namespace="%s",pod="%s"} %d %d' % (k[0], k[1], v[1], ts)
                   for k, v in pods.items())
        head("scrape_error", "gauge", "[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise")
        out.append("scrape_error 0")
        return "\n".join(out) + "\n"

    def pod_metrics(self, pod):
        rt = self.rts.get(pod["metadata"]["uid"])
        if rt is None:
            return None
        conts = []
        for cname in sorted(set(rt.procs) | set(rt.synth)):
            u = self.usage(rt, cname)
            if u:
                conts.append({"name": cname, "usage": {"cpu": fmt_cpu(u[2]), "memory": fmt_mem(u[1])}})
        if not conts:
            return None
        md = pod["metadata"]
        return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": md["name"], "namespace": md["namespace"], "creationTimestamp": iso(),
                             "labels": md.get("labels") or {}},
                "timestamp": iso(self.sampler.at or None), "window": "%gs" % self.sampler.period,
                "containers": conts}

    def node_metrics(self, node):
        name = node["metadata"]["name"]
        rows = self.node_containers(name)
        cpu = sum(u[2] for _, _, u in rows)
        mem = sum(u[1] for _, _, u in rows)
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
                pods[uid] = {"ip": rt.ip, "node": rt.node, "synth": rt.synth,
                             "containers": {c: {"pid": p.pid, "started": rt.started.get(c, 0.0),
                                                "cid": rt.cids.get(c, "")}
                                            for c, p in rt.procs.items()}}
            state = {"version": 1, "objects": [[res, o] for res in sorted(self.store.objs)
                                               for o in self.store.list(res)],
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
                self.store.put_raw(res, obj)
            self.ip_next, self.ip_b = state.get("ip_next", 1), state.get("ip_b", self.ip_b)
            self.node_cpu_dead.update(state.get("node_cpu_dead") or {})
            for ev in sorted(self.store.values("events"), key=lambda e: int(e["metadata"]["resourceVersion"])):
                self.index_event(ev)
            for node in self.store.list("nodes"):
                if not node_ready(node):
                    self.ready_at[node["metadata"]["name"]] = time.time() + self.timing["node_ready_delay"]
            for m in self.store.list(KEY_MACHINE):
                if not (m.get("status") or {}).get("nodeRef"):
                    self.provision_at[(m["metadata"]["namespace"], m["metadata"]["name"])] = \
                        time.time() + self.timing["provision_seconds"]
            for pod in self.store.list("pods"):
                md = pod["metadata"]
                info = (state.get("runtime") or {}).get(md["uid"])
                if md.get("deletionTimestamp"):
                    self.deleting.add((md["namespace"], md["name"], md["uid"]))
                if info is None or not pod["spec"].get("nodeName"):
                    continue
                rt = PodRT(md["namespace"], md["name"], md["uid"], pod["spec"]["nodeName"], pod["status"]["podIP"])
                rt.synth = {c: tuple(v) for c, v in (info.get("synth") or {}).items()}
                for cname, ci in info["containers"].items():
                    if Adopted(ci["pid"]).poll() is None and self.cmdline_has(ci["pid"], rt.ip):
                        rt.adopt[cname] = ci
                self.add_rt(rt)
                for c in pod["spec"]["containers"]:
                    if c["name"] in rt.synth:
                        continue
                    cs = next((x for x in pod["status"].get("containerStatuses") or [] if x["name"] == c["name"]), {})
                    if "terminated" in (cs.get("state") or {}):
                        continue
                    rt.restarts0[c["name"]] = cs.get("restartCount", 0)
                    if c["name"] not in rt.adopt and "running" in (cs.get("state") or {}):
                        # the process died with the simulator: a restart, as after a node reboot
                        rt.restarts0[c["name"]] += 1
                        self.cstatus(rt, c["name"], ready=False, started=False,
                                     restartCount=rt.restarts0[c["name"]],
                                     lastState={"terminated": {
                                         "exitCode": 137, "reason": "ContainerStatusUnknown",
                                         "message": "The container could not be located when the pod was terminated",
                                         "startedAt": cs["state"]["running"].get("startedAt"),
                                         "finishedAt": iso(), "containerID": cs.get("containerID", "")}},
                                     state={"waiting": {"reason": "ContainerCreating"}})
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
        if self.args.persist:
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
