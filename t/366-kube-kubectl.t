#!/usr/bin/python3
# 366-kube-kubectl.t — with hub.backend = kubernetes, what the hub does is
# visible to the real kubectl: its model pods (labels, annotations,
# resources), their events and logs; a `kubectl delete pod` mid-life is
# handled; a dropped watch connection (network cut, no final chunk) is
# reconnected and the next request completes.
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import base_config, records, start, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
sim, s = start(base_config(), tls=True, hub={"hub.runners": "1"})
anon = s.anon()
s.sql("UPDATE model SET idle_seconds = 600 WHERE id = 'eos3b5e'")


def hubd_log():
    with open(s.logs["hubd"], errors="replace") as f:
        return f.read()


def kubectl(*args):
    return sim.kubectl(*args)


rid = submit(s, anon, "eos3b5e", ["CCO", "c1ccccc1"])
st = wait_done(s, rid, 90)
t.is_(st[0], "COMPLETED", "request completed on a pod")
inst_id, pod = s.sql("SELECT id, name FROM model_instance WHERE model_id = 'eos3b5e'")[0]

rc, out, err = kubectl("get", "pods", "-n", "modelhub", "-l",
                       "app.kubernetes.io/managed-by=modelhub", "-o", "json")
t.is_(rc, 0, "kubectl get pods -l managed-by=modelhub (%s)" % err.strip()[:200])
items = json.loads(out or "{}").get("items", [])
mine = [p for p in items if p["metadata"]["name"] == pod]
t.is_(len(mine), 1, "kubectl sees the hub's pod %s" % pod)
p = mine[0] if mine else {"metadata": {}, "spec": {"containers": [{}]}}
labels = p["metadata"].get("labels", {})
t.is_(labels.get("modelhub/model"), "eos3b5e", "  label modelhub/model")
t.is_(labels.get("modelhub/instance"), str(inst_id), "  label modelhub/instance")
ann = p["metadata"].get("annotations", {})
t.is_(ann.get("modelhub/request"), str(rid), "  annotation modelhub/request")
t.ok(ann.get("modelhub/server"), "  annotation modelhub/server")
res = p["spec"]["containers"][0].get("resources", {})
model = s.sql("SELECT cpu_request_m, memory_request_mib, memory_limit_mib FROM model"
              " WHERE id = 'eos3b5e'")[0]
t.is_(res.get("requests", {}).get("cpu"), "%sm" % model[0], "  cpu request from the model")
t.is_(res.get("requests", {}).get("memory"), "%sMi" % model[1], "  memory request (not forced = limit)")
t.is_(res.get("limits", {}).get("memory"), "%sMi" % model[2], "  memory limit from the model")
rc, out, _ = kubectl("get", "pod", pod, "-n", "modelhub")
t.ok(rc == 0 and "Running" in out, "kubectl get pod shows it Running")
rc, out, _ = kubectl("get", "events", "-n", "modelhub",
                     "--field-selector", "involvedObject.name=" + pod)
t.ok(rc == 0 and "Started" in out, "kubectl get events shows its events")
hub_events = s.sql("SELECT count(*) FROM instance_event WHERE instance_id = $1 AND source = 'k8s'",
                   inst_id)[0][0]
t.ok(int(hub_events) >= 1, "the same k8s events are in the instance history (%s)" % hub_events)

# ---- a network cut of every watch: the hub reconnects and carries on
r = sim.api("POST", "/kubesim/drop-watches")
t.ok(r.status == 200 and r.json().get("dropped", 0) >= 1, "watch connections cut")
t.ok(wait_for(lambda: "watch" in hubd_log() and
              ("watch stream broke" in hubd_log() or "watch reconnecting" in hubd_log()), 20),
     "the hub notices the cut")
rid2 = submit(s, anon, "eos3b5e", ["O"])
st = wait_done(s, rid2, 90)
t.is_(st[0], "COMPLETED", "a request after the cut completes")
rec = records(s, anon, rid2)
t.ok(rec and abs(rec[0]["mol_weight"] - 18.015) < 0.01, "  with the right value")

# ---- kubectl delete pod: the instance ends and the next request gets a new pod
rc, out, err = kubectl("delete", "pod", pod, "-n", "modelhub", "--wait=false")
t.is_(rc, 0, "kubectl delete pod (%s)" % err.strip()[:200])
row = wait_for(lambda: (lambda r: r if r and r[0][0] == "TERMINATED" else None)(
    s.sql("SELECT state FROM model_instance WHERE id = $1", inst_id)), 30)
t.ok(row, "the deleted pod's instance is TERMINATED")
rid3 = submit(s, anon, "eos3b5e", ["CCO"])
st = wait_done(s, rid3, 90)
t.is_(st[0], "COMPLETED", "the next request completes on a new pod")
names = [n for (n,) in s.sql("SELECT name FROM model_instance WHERE model_id = 'eos3b5e'"
                             " ORDER BY id")]
t.ok(len(names) == 2 and names[1] != pod, "  a new pod (%s)" % names)
rc, out, _ = kubectl("logs", names[-1], "-n", "modelhub")
t.ok(rc == 0 and out.strip(), "kubectl logs of the new pod")
t.done()
