"""kubesim_autoscaler.py — an "external autoscaler" inside the simulator: it
behaves like cluster-autoscaler (or Karpenter) seen from outside the engine,
so modelhub's `external` autoscaling mode can be tested without one.

Runs in: the kubesim.py process, called from the controller thread (tick()).
Called by: kubesim_cluster.SimCtl.controller when the config has an
  "external_autoscaler" object.
Owns: its node groups (config), the nodes it is provisioning (not yet
  registered), per-node idle clocks, the last event per pending pod.
Shared state: the simulator's Store (nodes, pods, events, the
  kube-system/cluster-autoscaler-status ConfigMap), always under Store.lock.
  Its writes do not go through the HTTP API, so the audit log
  (GET /kubesim/audit) lists only what API clients (modelhub) wrote.

Config ("external_autoscaler"):
  engine            "cluster-autoscaler" (default) or "karpenter"
  groups            [{"name", "min", "max", "node": {cpu, memory, pods, labels, taints}}]
  provision_seconds delay between the decision and the node registering (then
                    the simulator's node_ready_delay until Ready)
  scale_down_idle   seconds a node stays removable before it is removed
  scale_down_utilization  a node whose requests are below this fraction of its
                    allocatable, and whose pods may all be evicted and fit on
                    other nodes, is removable too (cluster-autoscaler's rule);
                    pods annotated cluster-autoscaler.kubernetes.io/safe-to-evict
                    "false" or karpenter.sh/do-not-disrupt "true" block it
  event_every       seconds between repeated events for one pending pod

What it emits, as the engines do:
  cluster-autoscaler: pod events TriggeredScaleUp "pod triggered scale-up:
    [{ng 0->2 (max: 3)}]" and NotTriggerScaleUp "pod didn't trigger scale-up:
    <count reason, ...>"; the status ConfigMap kube-system/cluster-autoscaler-status
    (data.status, the YAML text of cluster-autoscaler >= 1.30); node taint
    ToBeDeletedByClusterAutoscaler before removal.
  karpenter: pod events Nominated "Pod should schedule on: nodeclaim/<name>"
    and FailedScheduling (source karpenter) "Failed to schedule pod, ...";
    node taint karpenter.sh/disrupted before removal.
"""

import collections
import time

from kubesim_core import (log, iso, node_affinity_ok, node_ready, pod_requests, qty, rand_suffix,
                          terminal, tolerates)

STATUS_NS, STATUS_NAME = "kube-system", "cluster-autoscaler-status"


def no_evict(pod):
    ann = pod["metadata"].get("annotations") or {}
    return (ann.get("cluster-autoscaler.kubernetes.io/safe-to-evict") == "false"
            or ann.get("karpenter.sh/do-not-disrupt") == "true")


def unschedulable(pod):
    if pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp") or terminal(pod):
        return False
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "PodScheduled":
            return c.get("status") == "False" and c.get("reason") == "Unschedulable"
    return False


class Shape:
    """What one node of a group offers: labels, taints, allocatable."""

    def __init__(self, name, spec, group_label):
        self.labels = dict(spec.get("labels") or {})
        self.labels[group_label] = spec.get("group") or name
        self.taints = [dict(t) for t in spec.get("taints") or []]
        self.cpu = qty(spec.get("cpu", "4"))
        self.mem = qty(spec.get("memory", "8Gi"))
        self.pods = int(spec.get("pods", 110))

    def refuses(self, pod):
        """Why a new node of this shape cannot take pod (a scheduler
        predicate's wording), or None when it can."""
        bad = [t for t in self.taints if t.get("effect") in ("NoSchedule", "NoExecute")
               and not tolerates(pod["spec"].get("tolerations"), t)]
        if bad:
            return "node(s) had untolerated taint {%s: %s}" % (bad[0]["key"], bad[0].get("value", ""))
        if not node_affinity_ok(pod, self.labels):
            return "node(s) didn't match Pod's node affinity/selector"
        cpu, mem = pod_requests(pod)
        if cpu > self.cpu + 1e-9:
            return "Insufficient cpu"
        if mem > self.mem:
            return "Insufficient memory"
        return None


class ExternalAutoscaler:
    def __init__(self, sim, cfg):
        self.sim, self.cfg = sim, cfg
        self.engine = cfg.get("engine", "cluster-autoscaler")
        self.groups = {}
        for g in cfg.get("groups") or []:
            self.groups[g["name"]] = {"min": int(g.get("min", 0)), "max": int(g.get("max", 10)),
                                      "spec": dict(g.get("node") or {}),
                                      "shape": Shape(g["name"], g.get("node") or {}, sim.group_label)}
        self.provision = float(cfg.get("provision_seconds", 2.0))
        self.idle = float(cfg.get("scale_down_idle", 5.0))
        self.util = float(cfg.get("scale_down_utilization", 0.5))
        self.every = float(cfg.get("event_every", 10.0))
        self.upcoming = {}  # node name -> {"group", "at", "cpu", "mem", "pods"} (room left)
        self.claims = {}  # pod uid -> node name it was counted on
        self.removable_since = {}  # node name -> time it became removable
        self.last_event = {}  # pod uid -> (reason, message, time)
        self.last_status = None
        self.last_scale_up = {}  # group -> time
        self.last_tick = 0.0

    # ---- the loop

    def tick(self):
        now = time.time()
        if now - self.last_tick < 0.3:
            return
        self.last_tick = now
        with self.sim.store.lock:
            self.register(now)
            self.scale_up(now)
            self.scale_down(now)
            if self.engine == "cluster-autoscaler":
                self.write_status(now)

    def group_nodes(self, name):
        gl = self.sim.group_label
        return [n for n in self.sim.store.list("nodes")
                if (n["metadata"].get("labels") or {}).get(gl) == name
                and (n["metadata"].get("annotations") or {}).get("kubesim/external-autoscaler")]

    def size(self, name):
        return len(self.group_nodes(name)) + sum(1 for u in self.upcoming.values() if u["group"] == name)

    # ---- scale up

    def register(self, now):
        """Provisioned nodes join the cluster (NotReady, then Ready)."""
        for name, u in list(self.upcoming.items()):
            if now < u["at"]:
                continue
            del self.upcoming[name]
            g = self.groups[u["group"]]
            extra = dict(g["shape"].labels)
            if self.engine == "karpenter":
                extra["karpenter.sh/nodepool"] = u["group"]
                extra["karpenter.sh/registered"] = "true"
            node = self.sim.new_node(name, g["spec"], False, extra_labels=extra,
                                     annotations={"kubesim/external-autoscaler": u["group"]})
            self.sim.store.add("nodes", node)
            self.sim.ready_at[name] = now + self.sim.timing["node_ready_delay"]
            self.sim.event(node, "Normal", "RegisteredNode",
                           "Node %s event: Registered Node %s in Controller" % (name, name), "node-controller")
            log("external autoscaler: node registered", node=name, group=u["group"])
        live = set(self.upcoming) | {n["metadata"]["name"] for n in self.sim.store.list("nodes")
                                     if not node_ready(n)}
        for uid in [u for u, n in self.claims.items() if n not in live]:
            del self.claims[uid]

    def take_room(self, room, pod):
        cpu, mem = pod_requests(pod)
        if room["cpu"] + 1e-9 < cpu or room["mem"] < mem or room["pods"] < 1:
            return False
        room["cpu"] -= cpu
        room["mem"] -= mem
        room["pods"] -= 1
        return True

    def scale_up(self, now):
        pods = sorted((p for p in self.sim.store.values("pods") if unschedulable(p)),
                      key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        grew = collections.Counter()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid in self.claims:
                continue
            home = next((n for n, u in self.upcoming.items()
                         if self.groups[u["group"]]["shape"].refuses(pod) is None and self.take_room(u, pod)), None)
            if home:
                self.claims[uid] = home
                continue
            reasons = collections.Counter()
            best = None
            for name, g in sorted(self.groups.items()):
                why = g["shape"].refuses(pod)
                if why is None and self.size(name) >= g["max"]:
                    why = "max node group size reached"
                if why:
                    reasons[why] += 1
                    continue
                cpu, mem = pod_requests(pod)
                waste = (1 - cpu / g["shape"].cpu) + (1 - mem / g["shape"].mem)
                if best is None or waste < best[0]:
                    best = (waste, name)
            if best is None:
                self.refuse(pod, reasons, now)
                continue
            name = best[1]
            before = self.size(name)
            node = self.provision_node(name, now)
            self.take_room(self.upcoming[node], pod)
            self.claims[uid] = node
            grew[name] += 1
            self.trigger(pod, name, before, node, now)
        for name, n in grew.items():
            self.last_scale_up[name] = now
            log("external autoscaler: scale-up", group=name, nodes=n, size=self.size(name))

    def provision_node(self, group, now):
        g = self.groups[group]
        prefix = "nodeclaim" if self.engine == "karpenter" else "ca"
        name = "%s-%s-%s" % (group, prefix, rand_suffix(6))
        self.upcoming[name] = {"group": group, "at": now + self.provision, "cpu": g["shape"].cpu,
                               "mem": g["shape"].mem, "pods": g["shape"].pods}
        return name

    def pod_event(self, pod, typ, reason, msg, now):
        uid = pod["metadata"]["uid"]
        last = self.last_event.get(uid)
        if last and last[0] == reason and last[1] == msg and now - last[2] < self.every:
            return
        self.last_event[uid] = (reason, msg, now)
        self.sim.event(pod, typ, reason, msg, "karpenter" if self.engine == "karpenter" else "cluster-autoscaler")

    def trigger(self, pod, group, before, node, now):
        if self.engine == "karpenter":
            self.pod_event(pod, "Normal", "Nominated", "Pod should schedule on: nodeclaim/%s" % node, now)
        else:
            self.pod_event(pod, "Normal", "TriggeredScaleUp", "pod triggered scale-up: [{%s %d->%d (max: %d)}]"
                           % (group, before, before + 1, self.groups[group]["max"]), now)

    def refuse(self, pod, reasons, now):
        if self.engine == "karpenter":
            cpu, mem = pod_requests(pod)
            msg = ("Failed to schedule pod, incompatible with nodepools %s, no instance type satisfied "
                   "resources {\"cpu\":\"%dm\",\"memory\":\"%dMi\",\"pods\":\"1\"}"
                   % (", ".join('"%s"' % g for g in sorted(self.groups)), int(cpu * 1000), int(mem / 1048576)))
            self.pod_event(pod, "Warning", "FailedScheduling", msg, now)
            return
        text = ", ".join("%d %s" % (c, r) for r, c in sorted(reasons.items())) or "no node groups"
        self.pod_event(pod, "Normal", "NotTriggerScaleUp", "pod didn't trigger scale-up: %s" % text, now)

    # ---- scale down

    def fits_elsewhere(self, pods, node, nodes, used):
        """Whether pods could all move to other Ready, schedulable nodes."""
        room = {}
        for n in nodes:
            name = n["metadata"]["name"]
            if name == node or not node_ready(n) or n["spec"].get("unschedulable") or n["spec"].get("taints"):
                continue
            a = n["status"]["allocatable"]
            room[name] = {"cpu": qty(a["cpu"]) - used[name][0], "mem": qty(a["memory"]) - used[name][1],
                          "pods": int(a["pods"]) - used[name][2]}
        for p in pods:
            if not any(self.take_room(r, p) for r in room.values()):
                return False
        return True

    def removable(self, node, nodes, podsby, used):
        name = node["metadata"]["name"]
        pods = podsby.get(name, [])
        if not pods:
            return True
        if any(no_evict(p) for p in pods):
            return False
        a = node["status"]["allocatable"]
        util = max(used[name][0] / max(qty(a["cpu"]), 1e-9), used[name][1] / max(qty(a["memory"]), 1.0))
        return util < self.util and self.fits_elsewhere(pods, name, nodes, used)

    def scale_down(self, now):
        nodes = self.sim.store.list("nodes")
        podsby = collections.defaultdict(list)
        used = collections.defaultdict(lambda: [0.0, 0.0, 0])
        for p in self.sim.store.values("pods"):
            nn = p["spec"].get("nodeName")
            if nn and not terminal(p):
                podsby[nn].append(p)
                c, m = pod_requests(p)
                used[nn][0] += c
                used[nn][1] += m
                used[nn][2] += 1
        seen = set()
        for gname, g in self.groups.items():
            members = [n for n in self.group_nodes(gname) if node_ready(n)]
            size = self.size(gname)
            for node in members:
                name = node["metadata"]["name"]
                seen.add(name)
                if not self.removable(node, nodes, podsby, used) or now - self.last_scale_up.get(gname, 0) < self.idle:
                    self.removable_since.pop(name, None)
                    continue
                since = self.removable_since.setdefault(name, now)
                if now - since < self.idle or size <= g["min"]:
                    continue
                self.remove(node, podsby.get(name, []))
                size -= 1
        for name in [n for n in self.removable_since if n not in seen]:
            del self.removable_since[name]

    def remove(self, node, pods):
        name = node["metadata"]["name"]
        key = "karpenter.sh/disrupted" if self.engine == "karpenter" else "ToBeDeletedByClusterAutoscaler"

        def taint(n):
            n["spec"]["taints"] = (n["spec"].get("taints") or []) + [
                {"key": key, "value": str(int(time.time())), "effect": "NoSchedule", "timeAdded": iso()}]
        self.sim.store.mutate("nodes", "", name, taint)
        comp = "karpenter" if self.engine == "karpenter" else "cluster-autoscaler"
        for p in pods:
            self.sim.event(p, "Normal", "ScaleDown", "deleting pod for node scale down", comp)
            self.sim.delete_pod(p, 0)
        self.sim.event(node, "Normal", "ScaleDown", "node removed by %s" % comp, comp)
        self.sim.remove_node(name)
        self.removable_since.pop(name, None)
        log("external autoscaler: node removed", node=name, evicted=len(pods))

    # ---- cluster-autoscaler's status ConfigMap

    def status_text(self, now):
        nodes = self.sim.store.list("nodes")
        ready = sum(1 for n in nodes if node_ready(n))
        up = "InProgress" if self.upcoming else "NoActivity"
        down = "CandidatesPresent" if self.removable_since else "NoCandidates"
        lines = ["time: %s" % iso(now), "autoscalerStatus: Running", "clusterWide:", "  health:",
                 "    status: Healthy", "    nodeCounts:", "      registered:",
                 "        total: %d" % len(nodes), "        ready: %d" % ready,
                 "        notStarted: %d" % (len(nodes) - ready), "  scaleUp:", "    status: %s" % up,
                 "  scaleDown:", "    status: %s" % down, "nodeGroups:"]
        for name, g in sorted(self.groups.items()):
            members = self.group_nodes(name)
            gup = sum(1 for u in self.upcoming.values() if u["group"] == name)
            lines += ["- name: %s" % name, "  health:", "    status: Healthy", "    nodeCounts:",
                      "      registered:", "        total: %d" % len(members),
                      "        ready: %d" % sum(1 for n in members if node_ready(n)),
                      "    cloudProviderTarget: %d" % (len(members) + gup),
                      "    minSize: %d" % g["min"], "    maxSize: %d" % g["max"],
                      "  scaleUp:", "    status: %s" % ("InProgress" if gup else "NoActivity"),
                      "  scaleDown:", "    status: %s" % (
                          "CandidatesPresent" if any(n["metadata"]["name"] in self.removable_since
                                                     for n in members) else "NoCandidates")]
        return "\n".join(lines) + "\n"

    def write_status(self, now):
        text = self.status_text(0)
        if text == self.last_status:
            return
        self.last_status = text
        data = {"status": self.status_text(now)}
        st = self.sim.store
        if not st.get("namespaces", "", STATUS_NS):
            return
        if st.get("configmaps", STATUS_NS, STATUS_NAME):
            st.mutate("configmaps", STATUS_NS, STATUS_NAME, lambda c: c.update(data=data))
        else:
            cm = {"kind": "ConfigMap", "apiVersion": "v1",
                  "metadata": self.sim.meta(STATUS_NAME, STATUS_NS,
                                            annotations={"cluster-autoscaler.kubernetes.io/last-updated": iso(now)}),
                  "data": data}
            st.add("configmaps", cm)
