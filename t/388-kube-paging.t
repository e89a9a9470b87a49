#!/usr/bin/python3
# 388-kube-paging.t — every list request of the kubernetes backend pages with limit/continue (kube.list_page, here 2 objects a page against the simulator): the scraper's node list reaches all five nodes, the pod watch's list (a restarted kubewatch child) finds every model pod, the events watch's relist (the simulator forgot the watch history: 410) every Pod event, and the autoscaler's node list (cluster_node_list, GET /api/autoscaler) every node.
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, kube_config, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
NODES = ["node-%s" % c for c in "abcde"]
sim = KubeSim(base_config(nodes=[{"name": n, "cpu": "2", "memory": "4Gi", "pods": 20, "group": "static"}
                                 for n in NODES]), tls=True).start()
cfg = {"hub.runners": "2", "kube.list_page": "2", "kube.scrape_nodes": "all", "metrics.interval_ms": "500"}
cfg.update(kube_config(sim))
s = Stack(hubd=False, config=cfg)
s.add_demo_models()
s.start_hubd()
anon, admin = s.anon(), s.admin_token


def hubd_log():
    with open(s.logs["hubd"], errors="replace") as f:
        return f.read()


def last(pattern):
    found = re.findall(pattern, hubd_log())
    return int(found[-1]) if found else None


# ---- the scraper's node list, 2 nodes a page
def sampled():
    r = s.api("GET", "/api/nodes", token=admin)
    got = sorted(n["name"] for n in (r.json or {}).get("items", []) if n.get("last_sample_at_ms"))
    return got if got == NODES else None


t.is_(wait_for(sampled, 30), NODES, "the scraper lists (paged) and samples all five nodes")

# ---- three model pods, then a relist of pods and events
rids = [submit(s, anon, m, ["CCO"]) for m in ("eos3b5e", "descriptors", "eos3b5e-async")]
t.is_([wait_done(s, r, 60)[0] for r in rids], ["COMPLETED"] * 3, "three requests on three pods")
pods = int(s.sql("SELECT count(*) FROM model_instance WHERE state <> 'TERMINATED'")[0][0])
t.is_(pods, 3, "  three live instances")
evs = [e for e in sim.api("GET", "/api/v1/namespaces/modelhub/events").json()["items"]
       if e["involvedObject"].get("kind") == "Pod"]
t.ok(len(evs) > 2, "  the simulator holds %d Pod events (more than a page)" % len(evs))
relists = hubd_log().count('msg="pods listed"')
# the events watch: history gone, its resume point is 410, it relists; the
# pod watch: its child restarted by the supervisor lists again
sim.api("POST", "/kubesim/compact")
sim.api("POST", "/kubesim/drop-watches")
kw = s.pid_of("kubewatch")
t.ok(kw, "the kubewatch child (%s)" % kw)
os.kill(kw, signal.SIGKILL)
t.ok(wait_for(lambda: hubd_log().count('msg="pods listed"') > relists, 30), "a new kubewatch lists the pods again")
t.is_(last(r'pods=(\d+) rv=\S+ msg="pods listed"'), 3, "  the paged pod list found all three pods")
t.ok(wait_for(lambda: (last(r'events=(\d+) rv=\S+ msg="events listed"') or 0) >= len(evs), 30),
     "  the paged events list found every Pod event (%s of %d)"
     % (last(r'events=(\d+) rv=\S+ msg="events listed"'), len(evs)))
r = submit(s, anon, "eos3b5e", ["O"])
t.is_(wait_done(s, r, 60)[0], "COMPLETED", "the watch goes on after the relist")

# ---- the autoscaler's node list (cluster_node_list), paged
s.stop_hubd()
G = "autoscale.group."
s.set_config(**{"autoscale.groups": "ng", "autoscale.period_seconds": "1", G + "ng.mode": "external",
                G + "ng.node_label": "modelhub.io/node-group=ng", G + "ng.cpu_m": "2000",
                G + "ng.memory_mib": "4096", G + "ng.max": "3"})
s.start_hubd()


def as_nodes():
    r = s.api("GET", "/api/autoscaler", token=admin)
    return sorted(n["name"] for n in (((r.json or {}).get("snapshot") or {}).get("nodes") or []))


t.is_(wait_for(lambda: as_nodes() == NODES, 30) and as_nodes(), NODES,
      "the autoscaler's node list (paged) has all five nodes")
t.done()
