# leaderfreeze.py — the frozen-leader scenario of issue 15, shared by
# t/368-leader-freeze.t (a 25 s freeze, in `make check`) and
# t/912-leader-freeze-long.t (60 s, in `make check-long`).
#
# Three modelhubd replicas (local backend) on one database under a steady
# load of small requests. The replica holding the hub lease (leader_lease,
# sql/012) gets SIGSTOP on its whole process group for freeze_s seconds.
# Checked: another replica holds the lease within 30 s with a larger token;
# no work lease stays overdue (max seen < 30 s, none at the end); on SIGCONT
# the old leader logs that it lost leadership before any janitor write and
# the lease stays with the new leader; every request COMPLETED with one
# result per input and no duplicates; no instance of a replica that was not
# frozen is LOST, and (freeze + the 10 s beat interval shorter than
# hub.replica_stale_seconds) none of the frozen one either; a longer freeze
# makes the frozen replica look dead, and its idle instances LOST is right.
import os
import re
import signal
import subprocess
import threading
import time

import flows                   # noqa: E402
from stack import Stack        # noqa: E402


def run(t, freeze_s, stale=30):
    s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "5",
                                  "hub.lease_seconds": "3",
                                  "hub.replica_stale_seconds": str(stale)})
    s.add_demo_models()
    s.sql("UPDATE model SET max_instances = 2 WHERE id = 'eos3b5e'")
    argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load", "--host", "{host}",
            "--port", "{port}", "--cpu-per-input", "0.05", "--mib-per-input", "0"]
    s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds)"
          " VALUES ('slow', $1::text[], 3, 30)", flows.argv_literal(argv))
    names = ["rep-a", "rep-b", "rep-c"]
    hubs, logs = {}, {}
    for n in names:
        env = s.env({"MODELHUB_HUB_REPLICA_ID": n,
                     "MODELHUB_HUB_SHM_NAME": "/modelhub-%s-%d" % (n, os.getpid())})
        logs[n] = os.path.join(s.tmp, "log", "hubd-%s.log" % n)
        with open(logs[n], "ab") as lf:
            hubs[n] = subprocess.Popen([s.bin("modelhubd"), "-c", s.config_path], stdout=lf,
                                       stderr=lf, env=env, cwd=s.tmp, start_new_session=True)

    def stop_all():
        for p in hubs.values():
            try:
                os.killpg(p.pid, signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=40)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def lease():
        r = s.sql("SELECT split_part(holder, ':', 1), token,"
                  " extract(epoch FROM expires_at - clock_timestamp()) FROM leader_lease"
                  " WHERE name = 'hub'")
        return (r[0][0], int(r[0][1]), float(r[0][2])) if r else None

    deadline = time.time() + 30
    while time.time() < deadline and not lease():
        time.sleep(0.2)
    first = lease()
    t.ok(first and first[0] in names, "one replica holds the hub lease (%s)" % (first,))
    if not first:
        stop_all()
        return
    anon = s.anon()
    ids, inputs, stop = [], {}, threading.Event()

    def load():
        k = 0
        while not stop.is_set():
            # every 8th request: 20 inputs of 50 ms each on 'slow' (4 chunks)
            model, n = ("slow", 20) if k % 8 == 0 else ("eos3b5e", 1 + k % 4)
            inp = ["C" * (1 + (k + j) % 6) for j in range(n)]
            r = s.api("POST", "/api/requests", token=anon, json={"model_id": model, "inputs": inp})
            rid = (r.json or {}).get("id")
            if rid:
                ids.append(rid)
                inputs[rid] = len(inp)
            k += 1
            time.sleep(0.3)

    th = threading.Thread(target=load)
    th.start()
    time.sleep(5)
    leader = first[0]
    # freeze it while it runs a request (best effort, up to 20 s)
    deadline = time.time() + 20
    busy = []
    while time.time() < deadline and not busy:
        busy = s.sql("SELECT id FROM work_request WHERE status = 'RUNNING' AND runner_id LIKE $1",
                     leader + "/%")
        time.sleep(0.05)
    os.killpg(hubs[leader].pid, signal.SIGSTOP)
    t.diag("frozen %s while it ran requests %s" % (leader, [r[0] for r in busy]))
    t0 = time.time()
    took, worst, new = None, 0.0, None
    while time.time() - t0 < freeze_s:
        cur = lease()
        if cur and cur[0] != leader and took is None:
            took, new = time.time() - t0, cur
        od = s.sql("SELECT coalesce(max(extract(epoch FROM clock_timestamp() - lease_expires_at)), 0)"
                   " FROM work_request WHERE status = 'RUNNING'")
        worst = max(worst, float(od[0][0]))
        time.sleep(0.5)
    t.ok(took is not None and took <= 30, "another replica leads within 30 s (%s s, %s)" % (
        None if took is None else round(took, 1), new))
    t.ok(new and new[1] > first[1], "  with a larger fencing token (%s > %s)" % (
        new and new[1], first[1]))
    t.ok(worst < 30, "  no work lease stayed overdue (worst %.1f s)" % worst)
    size = os.path.getsize(logs[leader])
    os.killpg(hubs[leader].pid, signal.SIGCONT)
    deadline = time.time() + 20
    after = ""
    while time.time() < deadline and not re.search(r'janitor token=\d+ msg="leadership lost', after):
        time.sleep(0.2)
        with open(logs[leader]) as f:
            f.seek(size)
            after = f.read()
    m = re.search(r'janitor token=\d+ msg="leadership lost[^"]*"', after)
    t.ok(m, "the old leader steps down on waking (%s)" % (m and m.group(0)))
    pre = after[:m.start()] if m else after
    t.ok(not re.search(r"janitor (requests|instances)=", pre), "  without a janitor write before")
    time.sleep(3)
    cur = lease()
    t.ok(cur and cur[0] == new[0] and cur[2] > 0, "  the lease stays with the new leader (%s)" % (cur,))
    stop.set()
    th.join()
    arr = "{" + ",".join(map(str, ids)) + "}"
    deadline = time.time() + 180   # a loaded machine runs 'slow' slowly
    while time.time() < deadline and s.sql(
            "SELECT count(*) FROM work_request WHERE id = ANY($1::bigint[])"
            " AND status IN ('QUEUED', 'RUNNING')", arr) != [("0",)]:
        time.sleep(0.5)
    st = s.sql("SELECT status, count(*) FROM work_request WHERE id = ANY($1::bigint[]) GROUP BY status", arr)
    t.is_(st, [("COMPLETED", str(len(ids)))], "all %d requests COMPLETED" % len(ids))
    for r in s.sql("SELECT id, model_id, status, attempts, runner_id, lease_expires_at - now()"
                   " FROM work_request WHERE id = ANY($1::bigint[]) AND status <> 'COMPLETED'", arr):
        t.diag("not completed: %s" % (r,))
    want = sum(inputs.values())
    got = s.sql("SELECT count(*), count(DISTINCT (request_id, ordinal)) FROM work_request_result"
                " WHERE request_id = ANY($1::bigint[])", arr)
    t.is_(got, [(str(want), str(want))], "  one result per input, none twice")
    lost = s.sql("SELECT replica_id, count(*) FROM model_instance WHERE termination_reason = 'LOST'"
                 " GROUP BY replica_id ORDER BY 1")
    t.is_([r for r in lost if r[0] != leader], [], "  no instance of a live replica marked LOST")
    # the dealer beats hub_server every 10 s: a replica frozen for
    # freeze_s looks dead after stale - 10 s at worst
    if freeze_s + 10 < stale:
        t.is_(lost, [], "  none of the frozen one either (frozen %d s, stale after %d s)" % (freeze_s, stale))
    else:
        t.diag("frozen replica's instances marked LOST by the new leader: %s" % (lost,))
    stop_all()
