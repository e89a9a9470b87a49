#!/usr/bin/python3
# 383-kube-scrape-mode.t — kube.scrape chooses the metrics source and so the RBAC the hub needs (deploy/k8s/components/scrape-*): metrics-server never calls the node proxy, kubelet never calls metrics.k8s.io and does not fall back when the proxy is forbidden; switched with a SIGHUP.
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, kube_config, wait_for  # noqa: E402
from simtest import TOP, need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
NS = "modelhub-models"
PERMS = os.path.join(TOP, "t", "kube", "required-permissions.txt")
cfg = base_config(
    namespaces=[NS],
    nodes=[{"name": "node-%s" % c, "cpu": "2", "memory": "4Gi", "pods": 20, "group": "static"} for c in "ab"],
    # what components/scrape-metrics-server and components/scrape-kubelet grant
    users=[{"token": "ms-token", "name": "system:serviceaccount:modelhub:modelhub",
            "allow_file": PERMS, "deny": ["get nodes/proxy"]},
           {"token": "kl-token", "name": "system:serviceaccount:modelhub:modelhub",
            "allow_file": PERMS, "deny": ["list nodes metrics.k8s.io", "list pods metrics.k8s.io"]}])
sim = KubeSim(cfg, tls=True).start()
tokfile = os.path.join(sim.tmp, "token")


def use_token(tok):
    with open(tokfile + ".new", "w") as f:
        f.write(tok + "\n")
    os.rename(tokfile + ".new", tokfile)


use_token("ms-token")
hub = {"hub.runners": "1", "metrics.interval_ms": "500", "kube.scrape_nodes": "all", "kube.scrape": "metrics-server",
       "kube.token": None, "kube.token_file": tokfile}
hub.update(kube_config(sim, NS))
hub["kube.token"] = None
s = Stack(hubd=False, config=hub)
s.start_hubd()
admin = s.admin_token


def log_from(pos):
    with open(s.logs["hubd"], errors="replace") as f:
        return f.read()[pos:]


def log_end():
    return os.path.getsize(s.logs["hubd"])


def samples():
    r = s.api("GET", "/api/nodes", token=admin)
    return {n["name"]: n.get("last_sample_at_ms") or 0 for n in (r.json or {}).get("items", [])
            if n["name"].startswith("node-")}


def fresh_after(before):
    now = samples()
    return now if len(now) == 2 and all(v > before.get(k, 0) for k, v in now.items()) else None


# ---- metrics-server: proxy forbidden for this token, never called
t.ok(wait_for(lambda: fresh_after({}), 20), "kube.scrape = metrics-server: both nodes sampled (metrics.k8s.io)")
time.sleep(1.5)
log = log_from(0)
t.ok("API call refused" not in log and "forbidden" not in log,
     "  no node proxy call was made (the token would have been refused)")

# ---- kubelet: metrics.k8s.io forbidden for this token, never called
s.set_config(**{"kube.scrape": "kubelet"})
use_token("kl-token")
os.kill(s.procs["hubd"].pid, signal.SIGHUP)
time.sleep(1.5)
pos, before = log_end(), samples()
t.ok(wait_for(lambda: fresh_after(before), 20), "kube.scrape = kubelet (after SIGHUP): nodes sampled through the proxy")
time.sleep(1.5)
t.ok("API call refused" not in log_from(pos), "  no metrics.k8s.io call was made (the token would have been refused)")

# ---- kubelet with the proxy forbidden: an error, no fallback
use_token("ms-token")
pos = log_end()
t.ok(wait_for(lambda: "nodes/proxy forbidden (kube.scrape = kubelet)" in log_from(pos), 20),
     "kubelet mode, proxy forbidden: logged as an error")
time.sleep(1.5)
t.ok("using metrics.k8s.io" not in log_from(pos), "  and no fallback to metrics.k8s.io")
t.done()
