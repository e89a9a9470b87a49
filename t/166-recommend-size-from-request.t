#!/usr/bin/python3
# 166-recommend-size-from-request.t — "size instances from the request" (opt-in per model, sql/014): a new instance starts with the recommendation of its request's size bucket, a call size whose memory does not fit the node gets a smaller chunk, both recorded on the instance and honoured by the runner; without the opt-in the model's values stand.
"""Finished instances of the load model are seeded in instance_metrics:
three that served 5-input requests (5-input calls; peak 150 MiB, busy
100 MiB / 40 m, peak 80 m) and three that served 300-input requests in
calls of 100 (peak 1800 MiB). recommend.max_mem_mib is 1024, so the
100-input call bucket (2080 MiB) does not fit the largest node and a large
request is sent in calls of 10, the largest chunk of the next call bucket
with data. idle_seconds 0: every request gets a new instance."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"hub.runners": "1", "recommend.max_mem_mib": "1024",
                             "recommend.max_cpu_m": "4000"})
adm = s.admin_token
MODEL_RES = (100, 1000, 512, 2048)
model = {
    "id": "sized", "execution_mode": "SYNC",
    "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
                      "--cpu-per-input", "0.001", "--mib-per-input", "0.5", "--base-mib", "40",
                      "--host", "{host}", "--port", "{port}"],
    "cpu_request_m": MODEL_RES[0], "cpu_limit_m": MODEL_RES[1],
    "memory_request_mib": MODEL_RES[2], "memory_limit_mib": MODEL_RES[3],
    "max_instances": 1, "idle_seconds": 0,
}
r = s.api("POST", "/api/models", json=model, token=adm)
t.status(r, 201, "register the load model")
t.is_((r.json or {}).get("size_from_request"), False, "size_from_request is off by default")


def seed(req_inputs, call_inputs, cpu_busy, cpu_max, mem_busy, mem_max):
    # one statement: the monitor persists TERMINATED rows it finds without metrics
    s.sql("WITH i AS (INSERT INTO model_instance (model_id, backend, state, termination_reason,"
          " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, terminated_at)"
          " VALUES ('sized', 'local', 'TERMINATED', 'IDLE', $5, $6, $7, $8, now()) RETURNING id)"
          " INSERT INTO instance_metrics (instance_id, model_id, sample_count, cpu_min_m,"
          " cpu_max_m, cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib, cpu_request_m,"
          " cpu_limit_m, memory_request_mib, memory_limit_mib, input_count, termination_reason,"
          " busy_samples, cpu_busy_m, mem_busy_mib, request_inputs, call_inputs)"
          " SELECT i.id, 'sized', 20, 0, $1, $2, 30, $3, $4, $5, $6, $7, $8, $9, 'IDLE', 15, $2,"
          " $4, $9, $10 FROM i",
          cpu_max, cpu_busy, mem_max, mem_busy, *MODEL_RES, req_inputs, call_inputs)


for _ in range(3):
    seed(5, 5, 40, 80, 100, 150)
    seed(300, 100, 500, 900, 1200, 1800)

rep = s.api("GET", "/api/recommendations?model_id=sized", token=adm).json or {}
RES = ("cpu_request_m", "cpu_limit_m", "memory_request_mib", "memory_limit_mib")


def bucket(key, label):
    for b in rep.get(key, []):
        if b.get("inputs") == label:
            return b
    return {}


small = tuple(bucket("by_input_size", "1-10").get("resources", {}).get(n, {}).get("recommended")
              for n in RES)
large = tuple(bucket("by_input_size", "101-1000").get("resources", {}).get(n, {}).get("recommended")
              for n in RES)
t.diag("bucket 1-10: %s; bucket 101-1000: %s" % (small, large))
t.ok(bucket("by_input_size", "1-10").get("enough_data") and small[3] and small[3] < 512,
     "the 1-10 bucket recommends a small instance (%s)" % (small,))
t.ok(bucket("by_call_size", "11-100").get("resources", {}).get("memory_limit_mib", {})
     .get("capped"), "the 100-input call bucket's memory is capped at the 1024 MiB node")


def submit(n):
    r = s.api("POST", "/api/requests", json={"model_id": "sized",
                                             "inputs": ["C" * (1 + i % 4) for i in range(n)]},
              token=adm)
    if r.status != 201:
        t.fail("submit %d inputs: %s %s" % (n, r.status, r.text[:200]))
        return None, {}
    rid = r.json["id"]
    deadline = time.time() + 90
    st = {}
    while time.time() < deadline:
        st = s.api("GET", "/api/requests/%s" % rid, token=adm).json or {}
        if st.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.3)
    return rid, st


def instance_of(rid):
    rows = s.sql("SELECT id, cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
                 " sized_inputs, chunk_size FROM model_instance WHERE $1 = ANY(request_ids)", rid)
    return rows[0] if rows else (None,) * 7


def ints(row):
    return tuple(None if v is None else int(v) for v in row)


# ---- without the opt-in: the model's values
rid, st = submit(5)
t.is_(st.get("status"), "COMPLETED", "opt-out: request completed")
row = ints(instance_of(rid))
t.is_(row[1:5], MODEL_RES, "opt-out: the instance ran with the model's values")
t.is_(row[5:], (None, None), "opt-out: not sized, no chunk of its own")

# ---- the opt-in is validated and stored
ver = (s.api("GET", "/api/models/sized", token=adm).json or {}).get("version")
r = s.api("PATCH", "/api/models/sized", json={"size_from_request": "yes", "version": ver}, token=adm)
t.status(r, 422, "size_from_request must be a boolean")
t.ok("size_from_request" in str((r.json or {}).get("error", {})), "  the error names the field")
r = s.api("PATCH", "/api/models/sized", json={"size_from_request": True, "version": ver}, token=adm)
t.status(r, 200, "opt in")
t.is_((s.api("GET", "/api/models/sized", token=adm).json or {}).get("size_from_request"), True,
      "GET shows size_from_request true")
t.is_(ints(s.sql("SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib"
                 " FROM model WHERE id = 'sized'")[0]), MODEL_RES,
      "opting in leaves the model's values as they are")

# ---- a small request: the 1-10 bucket, calls of at most its size
rid, st = submit(5)
t.is_(st.get("status"), "COMPLETED", "sized small request completed")
row = ints(instance_of(rid))
t.is_(row[1:5], small, "its instance started with the 1-10 bucket's recommendation")
t.is_(row[5:], (5, 5), "  recorded: sized for 5 inputs, calls of at most 5")
inst = s.api("GET", "/api/instances/%s" % row[0], token=adm).json or {}
snap = ((inst.get("instance") or inst).get("snapshot") or {}).get("sized_from_request") or {}
t.is_((snap.get("inputs"), snap.get("chunk_size"), snap.get("memory_limit_mib")),
      (5, 5, small[3]), "  and shown by the instances API (%s)" % snap)

# ---- a large request: the 101-1000 bucket, calls of 10 (100 would not fit)
rid, st = submit(300)
t.is_(st.get("status"), "COMPLETED", "sized large request completed")
row = ints(instance_of(rid))
t.is_(row[1:5], large, "its instance started with the 101-1000 bucket's recommendation")
t.ok(row[4] <= 1024, "  within the 1024 MiB node (%s MiB)" % row[4])
t.is_(row[5:], (300, 10), "  recorded: sized for 300 inputs, calls of 10")
t.is_((st.get("model_calls"), st.get("extra_calls")), (30, 0),
      "the runner sent 30 calls of 10 (%s)" % ((st.get("model_calls"), st.get("extra_calls")),))

# ---- what the monitor persists for sized instances
deadline = time.time() + 30
rows = []
while time.time() < deadline:
    rows = s.sql("SELECT im.sized_from_request, im.call_inputs FROM instance_metrics im"
                 " WHERE im.instance_id = $1", row[0])
    if rows:
        break
    time.sleep(0.5)
t.is_([tuple(x) for x in rows], [("t", "10")],
      "persisted: sized_from_request, largest call 10 (the instance's own chunk)")
t.done()
