#!/usr/bin/python3
# 209-runner-pg-outage.t — PostgreSQL goes away in the middle of a request
# (stopped for a few seconds, then started again): modelhubd and its
# children survive, the runner abandons the request to its lease (a
# database error is not the model's fault), the janitor requeues it, and it
# completes with every result exactly once; new requests work afterwards.
# Also: an ASYNC model server that crashes during a job is an instance
# failure (retried on a new instance), not a bad batch.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "10", "hub.lease_seconds": "3"})
anon = s.anon()


def add_model(mid, *args, mode="SYNC"):
    argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--host", "{host}", "--port", "{port}"] + list(args)
    s.sql("INSERT INTO model (id, execution_mode, local_command) VALUES ($1, $2, $3::text[])",
          mid, mode, flows.argv_literal(argv))


add_model("slow", "--model", "load", "--cpu-per-input", "0.1", "--mib-per-input", "0")
add_model("crash-async", "--model", "eos3b5e", "--crash-after-calls", "3", mode="ASYNC")
s.start_hubd()
hub_pid = s.pid_of("hubd")


def submit(model, inputs):
    r = s.api("POST", "/api/requests", token=anon, json={"model_id": model, "inputs": inputs})
    return (r.json or {}).get("id")


def wait(rid, timeout=90):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        try:
            st = s.sql("SELECT status, failure_reason, attempts FROM work_request WHERE id = $1", rid)[0]
        except Exception:
            st = None
        if st and st[0] in ("COMPLETED", "FAILED", "CANCELLED"):
            return st
        time.sleep(0.2)
    return st


# ---- ASYNC server crash during a job: instance failure, retried
rid = submit("crash-async", ["C" * (1 + i % 5) for i in range(30)])
st = wait(rid)
t.is_(st and st[0], "COMPLETED", "ASYNC server crash during a job: retried on a new instance (%s)" % (st,))
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal), count(*) FILTER (WHERE error IS NOT NULL)"
            " FROM work_request_result WHERE request_id = $1", rid), [("30", "30", "0")],
      "  30 results, none blamed on an input")

# ---- Postgres outage mid-request
rid = submit("slow", ["CC"] * 60)          # 6 chunks of 1 s
deadline = time.time() + 30
while time.time() < deadline and int(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1",
                                            rid)[0][0]) < 10:
    time.sleep(0.1)
s.stop_postgres("fast")
time.sleep(4)
s.start_postgres()
st = wait(rid)
t.is_(st and st[0], "COMPLETED", "request completes after a Postgres outage (%s)" % (st,))
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1", rid),
      [("60", "60")], "  60 results, no duplicates")
alive = True
try:
    os.kill(hub_pid, 0)
except OSError:
    alive = False
t.ok(alive, "modelhubd survived the outage")
rid = submit("slow", ["C"] * 3)
st = wait(rid)
t.is_(st and st[0], "COMPLETED", "a new request completes afterwards")
t.done()
