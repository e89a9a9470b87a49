#!/usr/bin/python3
# 384-kube-rollout.t — a rolling update of three hub replicas on the simulator: while 20 requests run, each replica is stopped (SIGTERM, as the kubelet does) and replaced by a new one with a new replica id (a new pod name), one by one; no request is lost or fails, the warm pods of each stopped replica are handed over and adopted by the remaining ones (none deleted, none LOST), and no model pod is left to a replica that is gone.
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, kube_config, pods, records, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
sim = KubeSim(base_config(), tls=True).start()
cfg = {"hub.runners": "2", "hub.lease_seconds": "4", "kube.replica_dead_seconds": "15",
       "hub.shutdown_seconds": "20"}
cfg.update(kube_config(sim))
s = Stack(hubd=False, config=cfg)
s.add_demo_models()
anon = s.anon()
replicas = {}   # replica id -> Popen


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
    replicas[rid] = subprocess.Popen([s.bin("modelhubd"), "-c", conf], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, env=env, cwd=s.tmp, start_new_session=True)


tag = s.config["hub.replica_id"]
for i in range(3):
    start_replica("%s-v1-%d" % (tag, i))
time.sleep(1)
rids = [submit(s, anon, ("eos3b5e", "descriptors")[i % 2], ["C" * (1 + i % 5), "CCO", "c1ccccc1"])
        for i in range(20)]
t.ok(all(rids), "20 requests submitted")
wait_for(lambda: s.sql("SELECT count(*) FROM work_request WHERE status = 'RUNNING'")[0][0] != "0", 30)

# the rollout: one old replica stops, a new one (new pod name) starts, next
for i in range(3):
    old = "%s-v1-%d" % (tag, i)
    p = replicas.pop(old)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(60)
    t.is_(rc, 0, "replica %d of 3 stopped cleanly (SIGTERM)" % (i + 1))
    start_replica("%s-v2-%d" % (tag, i))
    time.sleep(2)

done = [wait_done(s, r, 120) for r in rids]
states = [d[0] if d else None for d in done]
t.is_(states.count("COMPLETED"), 20, "every request completed (%s)" % sorted(set(map(str, states))))
t.is_([d for d in done if d and d[0] == "FAILED"], [], "  none failed")
counts = [len(records(s, anon, r)) for r in rids]
t.is_(sorted(set(counts)), [3], "  each with exactly one result per input (%s)" % sorted(set(counts)))
live = set(replicas)
gone = lambda: [p["metadata"]["name"] for p in pods(sim)  # noqa: E731
                if (p["metadata"].get("annotations") or {}).get("modelhub/server") not in live]
t.ok(wait_for(lambda: not gone(), 30), "no model pod left to a replica that is gone (%s)" % gone())


def kinds():
    return {k: int(n) for k, n in s.sql("SELECT kind, count(*) FROM instance_event"
                                        " WHERE kind IN ('HANDED_OVER', 'ADOPTED', 'STOP_SHUTDOWN', 'STOP_ABANDONED_CALL')"
                                        " GROUP BY kind")}


def ownerless():
    return s.sql("SELECT id, state, coalesce(replica_id, '-') FROM model_instance WHERE state <> 'TERMINATED'"
                 " AND (replica_id IS NULL OR replica_id NOT IN (%s))" % ", ".join("'%s'" % r for r in replicas))


wait_for(lambda: not ownerless(), 20)
k = kinds()
t.ok(k.get("HANDED_OVER", 0) >= 1 and k.get("ADOPTED", 0) >= k.get("HANDED_OVER", 0),
     "stopped replicas handed their warm pods over, the remaining ones adopted them (%s)" % k)
t.is_(ownerless(), [], "  every active instance belongs to a running replica")
t.is_(k.get("STOP_SHUTDOWN", 0) + k.get("STOP_ABANDONED_CALL", 0), 0,
      "  no serving or warm pod deleted by the rollout")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE termination_reason = 'LOST'")[0][0], "0",
      "  no instance marked LOST")
for p in replicas.values():
    p.send_signal(signal.SIGTERM)
t.ok(all(p.wait(60) == 0 for p in replicas.values()), "new replicas stop cleanly")
t.done()
