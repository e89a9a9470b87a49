#!/usr/bin/python3
# 386-kube-adopt.t — warm model pods outlive the hub replica that started them: a replica stopped with SIGTERM (a rollout, a drain) hands its IDLE instances over instead of deleting their pods; a replica that runs on (here one started afterwards) adopts them (row, modelhub/server annotation, ADOPTED event) and serves the next request on the same pod; a replica stopping hands the instances it adopted over in turn; an adopted instance idles out after its model's idle_seconds and stops when an admin asks, its pod deleted each time; the janitor never marks the handed-over rows LOST.
import os
import signal
import subprocess
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
sim = KubeSim(base_config(), tls=True).start()
cfg = {"hub.runners": "2", "hub.lease_seconds": "4", "kube.replica_dead_seconds": "60",
       "hub.replica_stale_seconds": "5"}
cfg.update(kube_config(sim))
s = Stack(hubd=False, config=cfg)
s.add_demo_models()
s.sql("UPDATE model SET idle_seconds = 600 WHERE id = 'eos3b5e'")
s.sql("UPDATE model SET idle_seconds = 12 WHERE id = 'descriptors'")
anon = s.anon()
procs = {}


def start_replica(rid):
    var = os.path.join(s.tmp, "var-" + rid)
    os.makedirs(var, exist_ok=True)
    conf = os.path.join(s.tmp, "modelhub-%s.conf" % rid)
    with open(conf, "w") as f:
        for k, v in sorted(dict(s.config, **{"hub.replica_id": rid, "hub.shm_name": "/modelhub-" + rid,
                                             "hub.var_dir": var}).items()):
            f.write("%s = %s\n" % (k, v))
    log = open(os.path.join(s.tmp, "log", "hubd-%s.log" % rid), "ab")
    s.logs["hubd-" + rid] = log.name
    env = s.env()
    env["MODELHUB_CONFIG"] = conf
    procs[rid] = subprocess.Popen([s.bin("modelhubd"), "-c", conf], stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log, env=env, cwd=s.tmp, start_new_session=True)


def row(iid):
    return s.sql("SELECT state, coalesce(replica_id, '-'), coalesce(termination_reason, '-') "
                 "FROM model_instance WHERE id = $1", iid)[0]


def server_of(name):
    p = sim.pod(name)
    return ((p or {}).get("metadata", {}).get("annotations") or {}).get("modelhub/server")


def events(iid, kind):
    return s.sql("SELECT detail->>'by', coalesce(detail->>'from', '') FROM instance_event "
                 "WHERE instance_id = $1 AND kind = $2", iid, kind)


tag = s.config["hub.replica_id"]
a, b = tag + "-a", tag + "-b"
start_replica(a)
time.sleep(0.5)
r1 = submit(s, anon, "eos3b5e", ["CCO"])
r2 = submit(s, anon, "descriptors", ["CCO"])
t.is_([wait_done(s, r, 60)[0] for r in (r1, r2)], ["COMPLETED"] * 2, "replica A serves one request per model")
inst = dict(s.sql("SELECT model_id, id FROM model_instance ORDER BY id"))
names = dict(s.sql("SELECT model_id, name FROM model_instance ORDER BY id"))
t.is_(sorted(inst), ["descriptors", "eos3b5e"], "  one instance each")
e_id, d_id = inst["eos3b5e"], inst["descriptors"]
t.ok(wait_for(lambda: row(e_id)[0] == "IDLE" and row(d_id)[0] == "IDLE", 10), "  both IDLE (warm)")

# ---- A stops as in a rollout: its warm pods stay, handed over
procs[a].send_signal(signal.SIGTERM)
t.is_(procs.pop(a).wait(60), 0, "replica A stopped cleanly (SIGTERM)")
t.ok(sim.pod(names["eos3b5e"]) is not None and sim.pod(names["descriptors"]) is not None,
     "  its two pods were not deleted")
t.is_([row(e_id), row(d_id)], [("IDLE", "-", "-")] * 2, "  rows IDLE with no owner (handed over)")
t.is_([x[0] for x in events(e_id, "HANDED_OVER")], [a], "  HANDED_OVER event by A")
with open(s.logs["hubd-" + a], errors="replace") as f:
    t.ok("handed over to the remaining replicas" in f.read(), "  A's runner logged the hand-over")
time.sleep(7)   # past hub.replica_stale_seconds, nobody running: still nobody's, not LOST
t.is_(row(e_id)[2], "-", "  not ended while no replica runs")

# ---- B comes up and adopts them
start_replica(b)
t.ok(wait_for(lambda: row(e_id)[1] == b and row(d_id)[1] == b, 20), "replica B adopts both instances")
t.is_(row(e_id)[0], "IDLE", "  still IDLE, not restarted")
t.is_(events(e_id, "ADOPTED"), [(b, a)], "  ADOPTED event (by B, from A)")
t.ok(wait_for(lambda: server_of(names["eos3b5e"]) == b, 15), "  pod annotation modelhub/server moved to B")
r3 = submit(s, anon, "eos3b5e", ["c1ccccc1"])
st = wait_done(s, r3, 60)
t.is_(st[0], "COMPLETED", "B serves the next request (%s)" % (st,))
recs = records(s, anon, r3)
t.ok(recs and abs(recs[0]["mol_weight"] - 78.11) < 0.01, "  correct value (%s)" % (recs,))
served = s.sql("SELECT id FROM model_instance WHERE $1 = ANY (request_ids)", r3)
t.is_(served, [(e_id,)], "  on the adopted pod (no new instance)")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'")[0][0], "1", "  one eos3b5e instance in all")

# ---- an adopted instance idles out (descriptors: idle_seconds 12), its pod deleted
t.ok(wait_for(lambda: row(d_id)[0] == "TERMINATED", 40), "adopted idle instance ended after idle_seconds")
t.is_(row(d_id)[2], "IDLE", "  reason IDLE")
t.ok(wait_for(lambda: sim.pod(names["descriptors"]) is None, 20), "  its pod deleted")

# ---- B stops in turn: the instance it adopted (no runner owns it) goes on to C
wait_for(lambda: row(e_id)[0] == "IDLE", 20)
procs[b].send_signal(signal.SIGTERM)
t.is_(procs.pop(b).wait(60), 0, "replica B stopped cleanly (SIGTERM)")
t.is_(row(e_id), ("IDLE", "-", "-"), "  the adopted instance handed over again")
t.is_(sorted(x[0] for x in events(e_id, "HANDED_OVER")), sorted([a, b]), "  HANDED_OVER by B's kubewatch")
t.ok(sim.pod(names["eos3b5e"]) is not None, "  its pod still there")
c = tag + "-c"
start_replica(c)
t.ok(wait_for(lambda: row(e_id)[1] == c, 20), "replica C adopts it")
t.is_(sorted(events(e_id, "ADOPTED")), sorted([(b, a), (c, b)]), "  ADOPTED event (by C, from B)")

# ---- an admin stops the adopted eos3b5e instance
s.sql("UPDATE model_instance SET stop_requested = true WHERE id = $1", e_id)
t.ok(wait_for(lambda: row(e_id)[0] == "TERMINATED", 20), "stop of an adopted instance ends it")
t.is_(row(e_id)[2], "STOPPED", "  reason STOPPED")
t.ok(wait_for(lambda: sim.pod(names["eos3b5e"]) is None, 20), "  its pod deleted")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE termination_reason = 'LOST'")[0][0], "0",
      "no instance was ever marked LOST")

procs[c].send_signal(signal.SIGTERM)
t.is_(procs.pop(c).wait(60), 0, "replica C stops cleanly")
t.done()
