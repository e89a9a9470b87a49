#!/usr/bin/python3
# 360-kube-flow.t — work requests with hub.backend = kubernetes against kubesim (TLS, CA file): SYNC and ASYNC complete with correct values, pods carry the labels/annotations/resources, state comes from the watch, events and logs are recorded, pods are deleted by name when idle.
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import pods, records, start, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
sim, s = start(hub={"kube.live_log_seconds": "1"})
anon = s.anon()
# count the pod log reads (a "delay" fault alone answers normally, counting down)
LOGS = 100000
sim.api("POST", "/kubesim/faults", [{"method": "GET", "path": "/pods/[^/]+/log", "delay": 0.001, "count": LOGS},
                                    {"method": "GET", "path": "/events$", "delay": 0.001, "count": LOGS}])


def reads(i):
    return LOGS - sim.api("GET", "/kubesim/faults").json()["items"][i]["count"]


def log_reads():
    return reads(0)


# ---- SYNC
rid = submit(s, anon, "eos3b5e", ["CCO", "c1ccccc1", "not_a_smiles"])
st = wait_done(s, rid, 60)
t.is_(st[0], "COMPLETED", "SYNC request completes on a pod (%s)" % (st,))
recs = records(s, anon, rid)
t.ok(recs and abs(recs[0]["mol_weight"] - 46.07) < 0.01, "  CCO -> 46.07")
t.ok(recs and abs(recs[1]["mol_weight"] - 78.11) < 0.01, "  benzene -> 78.11")
t.ok(recs and (recs[2] is None or recs[2].get("mol_weight") is None), "  invalid SMILES -> null record")

inst = s.sql("SELECT id, backend, name, address, node, replica_id, state FROM model_instance"
             " WHERE model_id = 'eos3b5e' ORDER BY id")
t.is_(len(inst), 1, "  one instance")
iid, backend, name, address, node, replica, state = inst[0]
t.is_(backend, "kubernetes", "  backend kubernetes")
t.like(name or "", r"^eos3b5e-[0-9]+$", "  pod named <model>-<instance id>")
t.like(address or "", r"^127\.\d+\.\d+\.\d+:80$", "  address = pod IP + model port (%s)" % address)
t.is_(node, "node-a", "  node from the pod")
p = sim.pod(name)
t.ok(p is not None, "  pod exists in the cluster")
md = (p or {}).get("metadata", {})
lab, ann = md.get("labels") or {}, md.get("annotations") or {}
t.is_(lab.get("app.kubernetes.io/managed-by"), "modelhub", "  label managed-by")
t.is_(lab.get("modelhub/model"), "eos3b5e", "  label modelhub/model")
t.is_(lab.get("modelhub/instance"), iid, "  label modelhub/instance")
t.is_(ann.get("modelhub/request"), str(rid), "  annotation modelhub/request")
t.is_(ann.get("modelhub/server"), replica, "  annotation modelhub/server = replica")
c0 = (p or {}).get("spec", {}).get("containers", [{}])[0]
t.is_(c0.get("image"), "modelhub/eos3b5e:latest", "  image with the model's tag")
t.is_(c0.get("resources"), {"requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"cpu": "1000m", "memory": "512Mi"}},
      "  requests/limits from the model (memory request not forced to the limit)")
t.is_(c0.get("readinessProbe", {}).get("httpGet", {}).get("path"), "/healthz", "  readiness probe /healthz")
# kubewatch inserts the streamed events once a second
kinds = wait_for(lambda: (lambda k: k if "Scheduled" in k and "Started" in k else None)(
    [k for (k,) in s.sql("SELECT kind FROM instance_event WHERE instance_id = $1 AND source = 'k8s'"
                         " ORDER BY id", iid)]), 5)
t.ok(kinds, "  k8s events recorded as instance events within 5 s (%s)" % kinds)
t.ok(kinds and kinds.index("Scheduled") < kinds.index("Pulling") < kinds.index("Started"),
     "  in the order they happened")
snap = s.sql("SELECT snapshot->'pod'->'metadata'->>'name', snapshot->'pod_state'->>'phase'"
             " FROM model_instance WHERE id = $1", iid)[0]
t.is_(snap, (name, "Running"), "  pod snapshot stored")

time.sleep(4)   # over a reconcile pass (3 s) and kube.live_log_seconds (1)
t.is_(log_reads(), 0, "  nobody views its log: the running pod's log is not read")
r = s.api("GET", "/api/instances/%s/logs" % iid, token=s.admin_token)
t.is_(r.status, 200, "  an admin asks for the log of the running pod")
live = wait_for(lambda: s.sql("SELECT text FROM instance_log WHERE instance_id = $1", iid), 10)
t.ok(live and "model" in live[0][0], "  its tail is refreshed into instance_log (%d log reads)" % log_reads())
r = s.api("GET", "/api/instances/%s/logs" % iid, token=s.admin_token)
t.ok(r.status == 200 and b"model" in r.body, "  and served on the next view")

# ---- ASYNC (same image, another model row)
rid2 = submit(s, anon, "eos3b5e-async", ["CCO", "O"])
st = wait_done(s, rid2, 60)
t.is_(st[0], "COMPLETED", "ASYNC request completes on a pod (%s)" % (st,))
recs = records(s, anon, rid2)
t.ok(recs and abs(recs[0]["mol_weight"] - 46.07) < 0.01 and abs(recs[1]["mol_weight"] - 18.02) < 0.01,
     "  values correct")

# ---- warm reuse: the IDLE pod serves the next request
rid3 = submit(s, anon, "eos3b5e", ["CCCC"])
st = wait_done(s, rid3, 60)
t.is_(st[0], "COMPLETED", "second SYNC request completes")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'")[0][0], "1",
      "  served by the warm pod (no new instance)")

# ---- idle stop deletes the pod by name; logs are kept
s.sql("UPDATE model SET idle_seconds = 0 WHERE id = 'eos3b5e'")
s.sql("UPDATE model_instance SET stop_requested = true WHERE id = $1", iid)
row = wait_for(lambda: (lambda r: r if r[0] == "TERMINATED" else None)(
    s.sql("SELECT state, termination_reason FROM model_instance WHERE id = $1", iid)[0]), 30)
t.ok(row, "stop requested: instance TERMINATED (%s)" % (row,))
t.ok(wait_for(lambda: sim.pod(name) is None, 20), "  its pod deleted")
log = s.sql("SELECT text FROM instance_log WHERE instance_id = $1", iid)
t.ok(log and "model" in (log[0][0] or ""), "  pod log stored in instance_log")
left = [x["metadata"]["name"] for x in pods(sim)]
t.ok(name not in left, "  not listed any more")

# ---- no GET-per-pod loops: the simulator's access log shows list/watch only
st = wait_done(s, submit(s, anon, "descriptors", ["CCO"]), 60)
t.is_(st[0], "COMPLETED", "descriptors request completes")
time.sleep(0.5)
hubd_log = open(s.logs["hubd"], errors="replace").read()
t.ok("kubewatch" in hubd_log and "pods listed" in hubd_log, "kubewatch child listed pods")
t.ok("events listed" in hubd_log, "kubeevents child listed the Pod events")
pods_seen = s.sql("SELECT count(*) FROM model_instance")[0][0]
# the events watch opened at start-up (before the counter): later requests
# are reconnects at most, never a list per pod or per pod change (the
# kubewatch's list per change and the monitor's 5 s poll per pod made 19)
t.ok(reads(1) <= 2, "events: %d requests since start-up for %s pods and their changes (one watch)"
     % (reads(1), pods_seen))

# ---- kubeevents has no Postgres connection: its events reach kubewatch over
# the supervisor's stream, and wait there while kubewatch is away
apps = sorted(a for (a,) in s.sql("SELECT application_name FROM pg_stat_activity"
                                  " WHERE datname = current_database() AND application_name <> ''"))
t.ok("kubewatch" in apps and "kubeevents" not in apps,
     "kubewatch has a connection, kubeevents none (%s)" % apps)
kw = s.pids_of("modelhubd: kubewatch")
t.is_(len(kw), 1, "one kubewatch child")
os.kill(kw[0], signal.SIGSTOP)
# meanwhile the runner creates the pod and waits for the watch (no per-pod
# GETs): the pod starts, its events go into the stream
rid = submit(s, anon, "eos3b5e", ["CCO"])
iid2 = wait_for(lambda: (lambda r: r[0][0] if r else None)(
    s.sql("SELECT id FROM model_instance WHERE model_id = 'eos3b5e' AND id > $1 ORDER BY id DESC LIMIT 1",
          iid)), 30)
pod2 = "eos3b5e-%s" % iid2
started = wait_for(lambda: any(e["reason"] == "Started" for e in sim.events(pod2)), 30)
t.ok(started, "  pod %s started while kubewatch is stopped" % pod2)
time.sleep(1.5)  # kubeevents has had the events for a while
ev_of = "SELECT kind FROM instance_event WHERE instance_id = $1 AND source = 'k8s'"
t.is_(s.sql(ev_of, iid2), [], "  its events are not recorded while kubewatch is stopped")
os.kill(kw[0], signal.SIGKILL)
got = wait_for(lambda: (lambda k: k if "Scheduled" in k and "Started" in k else None)(
    [x for (x,) in s.sql(ev_of, iid2)]), 30)
t.ok(got, "  recorded by the restarted kubewatch from the stream (%s)" % (got,))
st = wait_done(s, rid, 60)
t.is_(st[0], "COMPLETED", "  and the request completes (%s)" % (st,))
t.done()
