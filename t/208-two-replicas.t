#!/usr/bin/python3
# 208-two-replicas.t — two modelhubd replicas on one database: work is
# shared without duplicates, max_instances holds across replicas (per-model
# advisory lock), and when one replica dies outright (SIGKILL of its whole
# process group) its running requests are requeued by the other replica's
# janitor after the lease, its instance rows become LOST once its hub_server
# heartbeat is stale (freeing the model's only instance slot), and the
# request completes on the surviving replica.
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "5", "hub.lease_seconds": "3",
                              "hub.replica_stale_seconds": "15",
                              # one anonymous caller submits 60 at once (quotas: t/135)
                              "quota.anon.requests_in_flight": "0"})
s.add_demo_models()
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load", "--host", "{host}",
        "--port", "{port}", "--cpu-per-input", "0.1", "--mib-per-input", "0"]
s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds)"
      " VALUES ('slow', $1::text[], 1, 0)", flows.argv_literal(argv))
s.sql("UPDATE model SET max_instances = 1 WHERE id = 'eos3b5e'")
s.start_hubd()
env = s.env({"MODELHUB_HUB_REPLICA_ID": "replica-b",
             "MODELHUB_HUB_SHM_NAME": "/modelhub-b-%d" % os.getpid()})
log_b = os.path.join(s.tmp, "log", "hubd-b.log")
with open(log_b, "ab") as lf:
    hub_b = subprocess.Popen([s.bin("modelhubd"), "-c", s.config_path], stdout=lf, stderr=lf,
                             env=env, cwd=s.tmp, start_new_session=True)
anon = s.anon()


def submit(model, inputs):
    r = s.api("POST", "/api/requests", token=anon, json={"model_id": model, "inputs": inputs})
    return (r.json or {}).get("id")


def wait_all(ids, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = s.sql("SELECT count(*) FROM work_request WHERE id = ANY($1::bigint[])"
                     " AND status IN ('QUEUED', 'RUNNING')", "{" + ",".join(map(str, ids)) + "}")
        if left == [("0",)]:
            return True
        time.sleep(0.2)
    return False


ids = []
lock = threading.Lock()


def client(k):
    for j in range(8):
        rid = submit("eos3b5e", ["C" * (1 + (k + j) % 6) for _ in range(1 + j % 4)])
        with lock:
            ids.append(rid)


threads = [threading.Thread(target=client, args=(k,)) for k in range(5)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.ok(wait_all(ids), "40 requests finished with two replicas")
t.is_(s.sql("SELECT status, count(*) FROM work_request WHERE model_id = 'eos3b5e' GROUP BY status"),
      [("COMPLETED", "40")], "  all COMPLETED")
t.is_(s.sql("SELECT count(*) - count(DISTINCT (request_id, ordinal)) FROM work_request_result"), [("0",)],
      "  no duplicate results")
over = s.sql("SELECT count(*) FROM model_instance a JOIN model_instance b ON b.model_id = a.model_id"
             " AND b.id <> a.id AND b.started_at <= a.started_at"
             " AND (b.terminated_at IS NULL OR b.terminated_at > a.started_at)"
             " WHERE a.model_id = 'eos3b5e'")
t.is_(over, [("0",)], "  max_instances 1 held across replicas (no overlapping instances)")
t.is_(sorted(r[0] for r in s.sql("SELECT replica_id FROM hub_server")), sorted([s.config["hub.replica_id"], "replica-b"]),
      "  both replicas registered")

# ---- replica B dies outright while running a request
rid = None
for _ in range(20):
    rid = submit("slow", ["CC"] * 40)          # 8 chunks of 0.5 s
    deadline = time.time() + 20
    while time.time() < deadline:
        row = s.sql("SELECT status, runner_id FROM work_request WHERE id = $1", rid)[0]
        if row[0] == "RUNNING" or row[0] == "COMPLETED":
            break
        time.sleep(0.05)
    if row[0] == "RUNNING" and row[1].startswith("replica-b/"):
        break
    # taken by replica A: let it finish and try again
    wait_all([rid], 60)
    rid = None
t.ok(rid, "a request running on replica B")
if rid:
    # kill once B's instance is serving it (RUNNING alone can be seen
    # between the claim and the instance row)
    deadline = time.time() + 20
    while time.time() < deadline and not s.sql(
            "SELECT 1 FROM model_instance WHERE replica_id = 'replica-b' AND model_id = 'slow'"
            " AND state = 'BUSY' AND current_request_id = $1", rid):
        time.sleep(0.05)
    os.killpg(hub_b.pid, signal.SIGKILL)
    hub_b.wait(timeout=10)
    ok = wait_all([rid], 90)
    row = s.sql("SELECT status, attempts, runner_id FROM work_request WHERE id = $1", rid)[0]
    t.is_(row[0], "COMPLETED", "requeued by replica A's janitor and completed (%s)" % (row,))
    t.ok((row[2] or "").startswith(s.config["hub.replica_id"] + "/"), "  by replica A")
    t.is_(s.sql("SELECT DISTINCT termination_reason FROM model_instance WHERE replica_id = 'replica-b'"
                " AND model_id = 'slow'"), [("LOST",)], "  replica B's instance row is LOST")
    t.is_(row[1], "2", "  second attempt")
    t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
                rid), [("40", "40")], "  40 results, no duplicates")
else:
    for _ in range(5):
        t.fail("skipped: no request ran on replica B")
t.done()
