#!/usr/bin/python3
# 365-kube-replicas.t — two hub replicas on one database and one cluster: each pod carries its replica's modelhub/server annotation; a replica never deletes the other's live pods; when a replica dies (SIGKILL) the survivor adopts its warm (IDLE) instances after kube.replica_dead_seconds — row, modelhub/server annotation, ADOPTED event, never LOST — and serves the next request on the adopted pod.
import os
import signal
import subprocess
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
sim = KubeSim(base_config(), tls=True).start()
cfg = {"hub.runners": "1", "kube.replica_dead_seconds": "15", "hub.lease_seconds": "4"}
cfg.update(kube_config(sim))
s = Stack(hubd=False, config=cfg)
s.add_demo_models()
anon = s.anon()

# replica B: its own config (replica id, segment, var dir -> pod table), same DB and cluster
b_tag = s.config["hub.replica_id"] + "b"
b_var = os.path.join(s.tmp, "var-b")
os.makedirs(b_var)
b_conf = os.path.join(s.tmp, "modelhub-b.conf")
with open(b_conf, "w") as f:
    for k, v in sorted(dict(s.config, **{"hub.replica_id": b_tag, "hub.shm_name": "/modelhub-" + b_tag,
                                         "hub.var_dir": b_var}).items()):
        f.write("%s = %s\n" % (k, v))
b_log = open(os.path.join(s.tmp, "log", "hubd-b.log"), "ab")
env = s.env()
env["MODELHUB_CONFIG"] = b_conf
b = subprocess.Popen([s.bin("modelhubd"), "-c", b_conf], stdin=subprocess.DEVNULL, stdout=b_log,
                     stderr=b_log, env=env, cwd=s.tmp, start_new_session=True)
time.sleep(0.5)

rid = submit(s, anon, "eos3b5e", ["CCO"])
st = wait_done(s, rid, 60)
t.is_(st[0], "COMPLETED", "replica B serves a request")
iid, name, rep = s.sql("SELECT id, name, replica_id FROM model_instance ORDER BY id LIMIT 1")[0]
t.is_(rep, b_tag, "  instance row of replica B")
pod = sim.pod(name)
t.is_(((pod or {}).get("metadata", {}).get("annotations") or {}).get("modelhub/server"), b_tag,
      "  pod annotated modelhub/server = B")

# replica A joins; B's warm pod is left alone
s.start_hubd()
time.sleep(5)
t.ok(sim.pod(name) is not None, "replica A does not touch B's live pod")
t.is_(s.sql("SELECT state FROM model_instance WHERE id = $1", iid)[0][0], "IDLE", "  B's instance still IDLE")

# B dies hard: its pod outlives it
os.killpg(b.pid, signal.SIGKILL)
b.wait()
t.ok(sim.pod(name) is not None, "B killed: its pod is still running")
a_tag = s.config["hub.replica_id"]
row = wait_for(lambda: (lambda r: r if r[1] == a_tag else None)(
    s.sql("SELECT state, replica_id, coalesce(termination_reason, '-') FROM model_instance WHERE id = $1", iid)[0]),
    60)
t.is_(row, ("IDLE", a_tag, "-"), "A adopts B's warm instance once B stopped beating (not LOST)")
t.is_(s.sql("SELECT detail->>'by', detail->>'from' FROM instance_event WHERE instance_id = $1 AND kind = 'ADOPTED'",
            iid), [(a_tag, b_tag)], "  ADOPTED event (by A, from B)")
t.ok(wait_for(lambda: ((sim.pod(name) or {}).get("metadata", {}).get("annotations") or {}).get("modelhub/server")
              == a_tag, 15), "  its pod kept, annotated modelhub/server = A")
rid = submit(s, anon, "eos3b5e", ["O"])
st = wait_done(s, rid, 60)
t.is_(st[0], "COMPLETED", "A serves the next request")
t.is_(s.sql("SELECT id FROM model_instance WHERE $1 = ANY (request_ids)", rid), [(iid,)],
      "  on the adopted pod (no new instance)")
with open(s.logs["hubd"], errors="replace") as f:
    t.ok("not deleting another replica's pod" not in f.read(), "no delete of a foreign pod was attempted by a runner")
t.done()
