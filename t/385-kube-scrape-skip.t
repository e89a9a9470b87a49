#!/usr/bin/python3
# 385-kube-scrape-skip.t — the scraper scrapes only nodes that run model pods (issue 15): of three simulated nodes only the one holding the model pod is sampled, the others are never fetched; once the pod is gone its node slot is freed.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, kube_config, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
NS = "modelhub-models"
cfg = base_config(namespaces=[NS],
                  nodes=[{"name": "node-%s" % c, "cpu": "2", "memory": "4Gi", "pods": 20, "group": "static"}
                         for c in "abc"])
sim = KubeSim(cfg).start()
hub = {"hub.runners": "1", "metrics.interval_ms": "500", "kube.node_slot_keep_seconds": "3"}
hub.update(kube_config(sim, NS))
s = Stack(hubd=False, config=hub)
s.add_demo_models()
s.sql("UPDATE model SET idle_seconds = 30 WHERE id = 'descriptors'")
s.start_hubd()
anon, admin = s.anon(), s.admin_token


def hubd_log():
    with open(s.logs["hubd"], errors="replace") as f:
        return f.read()


def sampled():
    r = s.api("GET", "/api/nodes", token=admin)
    return {n["name"] for n in (r.json or {}).get("items", [])
            if n["name"].startswith("node-") and n.get("last_sample_at_ms")}


# before any model pod: nothing to scrape
time.sleep(3)
t.is_(sampled(), set(), "no model pod yet: no node sampled")

rid = submit(s, anon, "descriptors", ["CCO", "c1ccccc1"])
st = wait_done(s, rid, 90)
t.is_(st[0], "COMPLETED", "request completes on a pod (%s)" % (st,))
node = wait_for(lambda: (s.sql("SELECT node FROM model_instance WHERE model_id = 'descriptors'"
                               " AND node IS NOT NULL") or [[None]])[0][0], 20)
t.ok(node and node.startswith("node-"), "the pod runs on %s" % node)
got = wait_for(lambda: sampled() if node in sampled() else None, 30)
t.is_(got, {node}, "only the node running the model pod is sampled")
time.sleep(3)
t.is_(sampled(), {node}, "  the other two stay unscraped")

# the instance is stopped: its node leaves the scrape set, the slot is freed
iid = s.sql("SELECT id FROM model_instance WHERE model_id = 'descriptors' AND state <> 'TERMINATED'")[0][0]
t.status(s.api("POST", "/api/instances/%s/stop" % iid, token=admin), 202, "stop the instance")
gone = wait_for(lambda: s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'descriptors'"
                              " AND state <> 'TERMINATED'")[0][0] == "0" or None, 90)
t.ok(gone, "the idle instance ended")
t.ok(wait_for(lambda: node not in sampled() or None, 40), "its node slot is freed (no model pod on it)")
t.ok("node slot freed (no longer scraped)" in hubd_log(), "  logged")
t.done()
