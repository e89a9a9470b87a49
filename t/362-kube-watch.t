#!/usr/bin/python3
# 362-kube-watch.t — the pod watch survives the API server: a simulator restart that keeps its pods (new resourceVersion epoch -> 410 -> relist) leaves the warm pod usable; a restart that loses them ends the instance and the next request gets a new pod; the watch reconnects with back-off while the server is down.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, kube_config, records, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
sim = KubeSim(base_config(), tls=True, keep_processes=True).start()
cfg = {"hub.runners": "1", "kube.orphan_grace_seconds": "2"}
cfg.update(kube_config(sim))
s = Stack(hubd=False, config=cfg)
s.add_demo_models()
s.start_hubd()
anon = s.anon()


def hubd_log():
    with open(s.logs["hubd"], errors="replace") as f:
        return f.read()


def run(inputs=("CCO",), timeout=60):
    rid = submit(s, anon, "eos3b5e", list(inputs))
    return rid, wait_done(s, rid, timeout)


rid, st = run()
t.is_(st[0], "COMPLETED", "request on a fresh pod")
inst = s.sql("SELECT id, name FROM model_instance WHERE model_id = 'eos3b5e'")
t.is_(len(inst), 1, "  one instance (IDLE, warm)")
pod = inst[0][1]
lists0 = hubd_log().count("pods listed")

# ---- API server restart that keeps the pods (processes adopted)
sim.stop()
time.sleep(2.0)
t.ok("watch stream broke" in hubd_log() or "watch reconnecting" in hubd_log(),
     "server down: the watch notices the broken stream")
sim.restore = True
sim.start()
t.ok(wait_for(lambda: hubd_log().count("pods listed") > lists0, 30),
     "server back in a new epoch: 410 -> relist")
t.ok(sim.pod(pod) is not None, "  the warm pod survived the restart")
rid, st = run(["O"])
t.is_(st[0], "COMPLETED", "next request completes after the restart")
t.ok(abs(records(s, anon, rid)[0]["mol_weight"] - 18.02) < 0.01, "  correct value")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'")[0][0], "1",
      "  on the same warm pod")

# ---- a restart that loses every pod (no state, processes killed)
lists1 = hubd_log().count("pods listed")
sim.keep = False
sim.stop()
sim.restore = False
import shutil  # noqa: E402
shutil.rmtree(sim.state_dir, ignore_errors=True)
sim.start()
t.ok(wait_for(lambda: hubd_log().count("pods listed") > lists1, 30), "empty server: relisted")
row = wait_for(lambda: (lambda r: r if r[0] == "TERMINATED" else None)(
    s.sql("SELECT state, termination_reason, termination_detail FROM model_instance WHERE name = $1",
          pod)[0]), 30)
t.ok(row, "  the vanished pod's instance TERMINATED (%s)" % (row,))
s.sql("UPDATE model SET idle_seconds = 0 WHERE id = 'eos3b5e'")
rid, st = run(["CCO"])
t.is_(st[0], "COMPLETED", "next request completes on a new pod (%s)" % (st,))
names = [n for (n,) in s.sql("SELECT name FROM model_instance WHERE model_id = 'eos3b5e' ORDER BY id")]
t.ok(len(names) == 2 and names[1] != pod, "  a second instance with a new pod (%s)" % names)
t.ok("watch reconnecting" in hubd_log(), "reconnects were logged with back-off")

# ---- a runner dies while its pod is IDLE: pods outlive runners, so the
# kubewatch child ends the row after idle_seconds + kube.orphan_grace_seconds
import signal  # noqa: E402
s.sql("UPDATE model SET idle_seconds = 3 WHERE id = 'eos3b5e'")
rid, st = run(["CC"])
t.is_(st[0], "COMPLETED", "request on a pod that will idle")
iid, name = s.sql("SELECT id, name FROM model_instance WHERE model_id = 'eos3b5e' ORDER BY id DESC LIMIT 1")[0]
os.kill(s.pid_of("runner"), signal.SIGKILL)
row = wait_for(lambda: (lambda r: r if r[0] == "TERMINATED" else None)(
    s.sql("SELECT state, termination_reason FROM model_instance WHERE id = $1", iid)[0]), 30)
t.is_(row, ("TERMINATED", "IDLE"), "runner killed: the orphaned IDLE instance is ended (IDLE)")
t.ok(wait_for(lambda: sim.pod(name) is None, 30), "  its pod deleted")
t.ok(s.sql("SELECT length(text) > 0 FROM instance_log WHERE instance_id = $1", iid) == [("t",)],
     "  its log kept")
t.done()
