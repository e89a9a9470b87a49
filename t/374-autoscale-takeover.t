#!/usr/bin/python3
# 374-autoscale-takeover.t — the leader changes in the middle of a scale-up: the second replica's autoscaler counts the machines its predecessor asked for and never scales again for the same pods; the old leader, woken with its stale lease token, writes nothing (fenced).
"""Two modelhubd replicas (rep-a, rep-b) on one database against kubesim.
node-a (1 CPU) is too small for eos3b5e (1.5 CPU); md-small makes 2-CPU
nodes, provisioned 8 s after a scale. Two requests need two pods, so two
nodes. As soon as the leading replica's autoscaler has scaled md-small to 2,
its janitor and autoscaler are stopped (SIGSTOP: the lease lapses while the
machines are still provisioning; its runners keep driving their requests).
The other replica takes the lease within a few seconds and its autoscaler
runs passes over the same pending pods: md-small must stay at 2 (the
provisioning machines are counted), both requests complete on the new
nodes. Then the old leader's autoscaler is woken first, its janitor still
stopped (it still believes its old token): for several passes it must not
store a decision or its snapshot, nor touch the cluster."""

import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import base_config, kube_config, submit, wait_done  # noqa: E402
from simtest import KubeSim, need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
MD = "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-small"
sim = KubeSim(base_config(
    nodes=[{"name": "node-a", "cpu": "1", "memory": "2Gi", "group": "static"}],
    machinedeployments=[{"name": "md-small", "namespace": "default", "replicas": 0,
                         "provision_seconds": 8.0, "node": {"cpu": "2", "memory": "4Gi"}}]),
    tls=True).start()
G = "autoscale.group."
cfg = {"hub.runners": "2", "autoscale.groups": "small", "autoscale.period_seconds": "1",
       G + "small.machinedeployment": "default/md-small", G + "small.cpu_m": "2000",
       G + "small.memory_mib": "4096", G + "small.max": "3",
       G + "small.scale_down_idle_seconds": "600",
       "hub.leader_lease_seconds": "3", "hub.provision_timeout": "120"}
cfg.update(kube_config(sim))
s = Stack(hubd=False, config=cfg)
s.add_demo_models()
s.sql("UPDATE model SET cpu_request_m = 1500, cpu_limit_m = 2000, max_instances = 2,"
      " idle_seconds = 60 WHERE id = 'eos3b5e'")
hubs = {}
for n in ("rep-a", "rep-b"):
    env = s.env({"MODELHUB_HUB_REPLICA_ID": n,
                 "MODELHUB_HUB_SHM_NAME": "/modelhub-%s-%d" % (n, os.getpid())})
    lf = open(os.path.join(s.tmp, "log", "hubd-%s.log" % n), "ab")
    hubs[n] = subprocess.Popen([s.bin("modelhubd"), "-c", s.config_path], stdout=lf, stderr=lf,
                               env=env, cwd=s.tmp, start_new_session=True)


def children(pid, comm):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/comm" % d) as f:
                c = f.read().strip()
        except OSError:
            continue
        if int(st.rsplit(")", 1)[1].split()[1]) == pid and c == comm:
            out.append(int(d))
    return out


def stop_all():
    for p in hubs.values():
        try:
            os.killpg(p.pid, signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=40)
        except (OSError, subprocess.TimeoutExpired):
            pass


def lease():
    r = s.sql("SELECT split_part(holder, ':', 1), token FROM leader_lease WHERE name = 'hub'"
              " AND expires_at > clock_timestamp()")
    return (r[0][0], int(r[0][1])) if r else None


def replicas():
    r = sim.api("GET", MD)
    return r.json()["spec"]["replicas"] if r.status == 200 else -1


seen = {"max": 0}
stop = threading.Event()


def sample():
    while not stop.is_set():
        seen["max"] = max(seen["max"], replicas())
        time.sleep(0.1)


try:
    deadline = time.time() + 30
    while time.time() < deadline and not lease():
        time.sleep(0.2)
    first = lease()
    t.ok(first is not None, "one replica leads (%s)" % (first,))
    leader = first[0] if first else "rep-a"
    other = "rep-b" if leader == "rep-a" else "rep-a"
    threading.Thread(target=sample, daemon=True).start()
    anon = s.anon()
    ids = [submit(s, anon, "eos3b5e", ["CCO", "CCCO"]) for _ in range(2)]
    t.ok(all(ids), "two requests queued")
    deadline = time.time() + 40
    while time.time() < deadline and replicas() < 2:
        time.sleep(0.05)
    t.is_(replicas(), 2, "the leader (%s) scaled md-small to 2 for the two pods" % leader)
    frozen = children(hubs[leader].pid, "mh-janitor") + children(hubs[leader].pid, "mh-autoscaler")
    auto_old = children(hubs[leader].pid, "mh-autoscaler")
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    t0 = time.time()
    t.is_(len(frozen), 2, "the leader's janitor and autoscaler stopped mid-scale")
    took = None
    while time.time() - t0 < 20:
        cur = lease()
        if cur and cur[0] == other:
            took = time.time() - t0
            break
        time.sleep(0.2)
    t.ok(took is not None, "%s takes the lease (%.1f s)" % (other, took or -1))
    takeover = s.sql("SELECT clock_timestamp()")[0][0]
    # the new leader's autoscaler runs passes while the machines provision
    deadline = time.time() + 20
    while time.time() < deadline and not s.sql(
            "SELECT 1 FROM autoscaler_status WHERE replica = $1 AND updated_at > $2::timestamptz",
            other, takeover):
        time.sleep(0.2)
    t.ok(s.sql("SELECT 1 FROM autoscaler_status WHERE replica = $1 AND updated_at > $2::timestamptz",
               other, takeover), "the new leader's autoscaler is running passes")
    sts = [wait_done(s, rid, timeout=90) for rid in ids]
    t.is_([x[0] for x in sts], ["COMPLETED", "COMPLETED"], "both requests complete on the new nodes")
    t.is_(seen["max"], 2, "md-small never went past 2 across the takeover (max seen %d)" % seen["max"])
    # The two pods may go Pending in one pass or in two (one node each):
    # what matters is two machines in all, all asked by the first leader.
    up = s.sql("SELECT replica, count FROM autoscaler_decision WHERE action = 'scale_up'")
    t.is_(sum(int(c) for _, c in up), 2, "two machines asked for in all (%s)" % (up,))
    t.ok(up and all(r == leader for r, _ in up), "  all by the first leader, none by %s" % other)

    # the old leader's autoscaler wakes with its stale token (janitor still stopped)
    old_status = s.sql("SELECT updated_at FROM autoscaler_status WHERE replica = $1", leader)
    for pid in auto_old:
        os.kill(pid, signal.SIGCONT)
    time.sleep(5)
    t.is_(s.sql("SELECT updated_at FROM autoscaler_status WHERE replica = $1", leader), old_status,
          "the woken old leader stored no snapshot (fenced)")
    t.is_(s.sql("SELECT count(*) FROM autoscaler_decision WHERE replica = $1 AND at > $2::timestamptz",
                leader, takeover), [("0",)], "nor any decision")
    t.is_(replicas(), 2, "nor changed the group")
    for pid in frozen:
        os.kill(pid, signal.SIGCONT)
finally:
    stop.set()
    stop_all()
    sim.stop()
t.done()
