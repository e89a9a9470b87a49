"""kubestack.py — a modelhub stack with hub.backend = kubernetes pointed at a
kubesim simulator, for the t/36x-kube-*.t tests.

Runs in: t/36x test scripts under /usr/bin/python3.
Called by: t/360-kube-flow.t, t/361-kube-failures.t, t/362-kube-watch.t,
  t/363-kube-nodes.t, bench/scrape.
Owns: one KubeSim (simtest.py) and one Stack (t/lib/stack.py); both stopped at
  exit by their own atexit handlers.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from simtest import KubeSim, base_config  # noqa: E402,F401
from stack import Stack  # noqa: E402

NS = "modelhub"


def kube_config(sim, ns=NS, **extra):
    cfg = {"hub.backend": "kubernetes", "kube.server": sim.url, "kube.token": sim.token,
           "kube.namespace": ns, "kube.grace_seconds": "1"}
    if sim.tls:
        cfg["kube.ca_file"] = sim.ca
    cfg.update(extra)
    return cfg


def start(sim_config=None, tls=True, hub=None, hubd=True, ns=NS):
    """(sim, stack) with the demo models registered and modelhubd running."""
    sim = KubeSim(sim_config or base_config(), tls=tls).start()
    cfg = {"hub.runners": "2"}
    cfg.update(kube_config(sim, ns))
    cfg.update(hub or {})
    s = Stack(hubd=False, config=cfg)
    s.add_demo_models()
    if hubd:
        s.start_hubd()
    return sim, s


def submit(s, token, model, inputs, **kw):
    body = {"model_id": model, "inputs": inputs}
    body.update(kw)
    r = s.api("POST", "/api/requests", token=token, json=body)
    return (r.json or {}).get("id")


def wait_done(s, rid, timeout=60):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = s.sql("SELECT status, failure_reason, failure_detail FROM work_request WHERE id = $1",
                   rid)[0]
        if st[0] in ("COMPLETED", "FAILED", "CANCELLED"):
            return st
        time.sleep(0.1)
    return st


def records(s, token, rid):
    r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=token)
    return [x.get("record") for x in (r.json or {}).get("results", [])]


def pods(sim, selector="app.kubernetes.io/managed-by%3Dmodelhub", ns=NS):
    r = sim.api("GET", "/api/v1/namespaces/%s/pods?labelSelector=%s" % (ns, selector))
    return r.json().get("items", []) if r.status == 200 else []


def wait_for(fn, timeout=30, every=0.1):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() >= end:
            return None
        time.sleep(every)
