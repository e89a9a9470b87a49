#!/usr/bin/python3
# 367-kube-errors.t — transient Kubernetes API errors on pod create (429 with Retry-After, 500, 503, connection reset, a slow answer past the call timeout, 403 exceeded quota) are retried with back-off and never fail a request MODEL_ERROR; after the start deadline the request fails CLUSTER_ERROR (API server) or NO_CAPACITY (quota); a create whose answer was lost is adopted, not duplicated.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import pods, start, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
START_TIMEOUT = 10
sim, s = start(hub={"hub.instance_start_timeout": str(START_TIMEOUT), "kube.call_timeout_ms": "1500"})
anon = s.anon()
POD_CREATE = r"^/api/v1/namespaces/modelhub/pods$"


def model(mid):
    s.sql("INSERT INTO model (id, execution_mode, image, image_tag, port, cpu_request_m, cpu_limit_m,"
          " memory_request_mib, memory_limit_mib, max_instances, idle_seconds)"
          " VALUES ($1, 'SYNC', 'modelhub/eos3b5e', 'latest', 80, 100, 1000, 64, 512, 2, 0)", mid)


def faults(*fs):
    r = sim.api("POST", "/kubesim/faults", [dict(f, path=f.get("path", POD_CREATE)) for f in fs])
    assert r.status == 200, r.status


def faults_left():
    return sum(f["count"] for f in sim.api("GET", "/kubesim/faults").json()["items"])


def creates(mid):
    """Distinct pods of model mid that were ever scheduled (events outlive pods)."""
    evs = sim.api("GET", "/api/v1/namespaces/modelhub/events").json()["items"]
    return len({e["involvedObject"]["name"] for e in evs
                if e.get("reason") == "Scheduled" and e["involvedObject"]["name"].startswith(mid + "-")})


def run(mid, *fs):
    model(mid)
    faults(*fs)
    t0 = time.time()
    rid = submit(s, anon, mid, ["CCO"])
    st = wait_done(s, rid, 60)
    return st, time.time() - t0


# ---- 429 with Retry-After: the server's pace is honoured
st, took = run("tmr", {"method": "POST", "code": 429, "retry_after": 1, "count": 3})
t.is_(st[:2], ("COMPLETED", None), "429 x3 with Retry-After: 1 -> retried, COMPLETED (%s)" % (st,))
t.is_(faults_left(), 0, "  all three refusals were met (3 + 1 POSTs)")
t.ok(took >= 2.8, "  Retry-After honoured: %.1f s >= 3 x 1 s" % took)
t.is_(creates("tmr"), 1, "  one pod created")

# ---- 500, then a connection reset, then 503
st, took = run("flaky", {"method": "POST", "code": 500, "count": 1}, {"method": "POST", "reset": True, "count": 1},
               {"method": "POST", "code": 503, "count": 1})
t.is_(st[:2], ("COMPLETED", None), "500, reset, 503 -> retried, COMPLETED (%s)" % (st,))
t.is_(faults_left(), 0, "  every fault was met")
t.ok(took < START_TIMEOUT + 10, "  back-off stays short (%.1f s)" % took)

# ---- a slow answer past kube.call_timeout_ms: the pod was created, the answer lost
st, took = run("slowapi", {"method": "POST", "delay": 3, "count": 1})
t.is_(st[:2], ("COMPLETED", None), "create answered after the call timeout -> COMPLETED (%s)" % (st,))
t.is_(creates("slowapi"), 1, "  the retried create met its own pod (409) and adopted it: one pod")
ev = s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'slowapi'")[0][0]
t.is_(int(ev), 1, "  one instance")

# ---- a slow but answered create is just slow
st, took = run("slowok", {"method": "POST", "delay": 1, "count": 1})
t.is_(st[:2], ("COMPLETED", None), "create answered in 1 s (under the call timeout) -> COMPLETED")

# ---- the API server keeps failing: CLUSTER_ERROR at the start deadline, never MODEL_ERROR
st, took = run("apidown", {"method": "POST", "code": 500, "count": 1000})
t.is_(st[:2], ("FAILED", "CLUSTER_ERROR"), "500 until the start deadline -> FAILED CLUSTER_ERROR (%s)" % (st,))
t.like(st[2] or "", r"not created within %d s \(\d+ attempts\).*HTTP 500" % START_TIMEOUT,
       "  detail says how long, how often and the last answer")
t.ok(START_TIMEOUT - 0.5 <= took < START_TIMEOUT + 10, "  at the start deadline (%.1f s)" % took)
used = 1000 - faults_left()
t.ok(3 <= used <= 25, "  retried with back-off, not hammered (%d attempts in %d s)" % (used, START_TIMEOUT))
row = s.sql("SELECT state, termination_reason FROM model_instance WHERE model_id = 'apidown'")
t.ok(row and row[0][0] == "TERMINATED", "  its instance row ended (%s)" % (row,))

# ---- connection resets until the deadline: CLUSTER_ERROR too
st, took = run("apireset", {"method": "POST", "reset": True, "count": 1000})
t.is_(st[:2], ("FAILED", "CLUSTER_ERROR"), "resets until the deadline -> FAILED CLUSTER_ERROR (%s)" % (st,))

# ---- resource quota: NO_CAPACITY
st, took = run("quota", {"method": "POST", "code": 403, "count": 1000})
t.is_(st[:2], ("FAILED", "NO_CAPACITY"), "403 exceeded quota until the deadline -> FAILED NO_CAPACITY (%s)" % (st,))
t.like(st[2] or "", r"exceeded quota", "  detail carries the quota message")
t.ok(START_TIMEOUT - 0.5 <= took < START_TIMEOUT + 10, "  at the start deadline (%.1f s)" % took)

# ---- quota freed while waiting: the request runs
model("quota2")
faults({"method": "POST", "code": 403, "count": 1000})
rid = submit(s, anon, "quota2", ["CCO"])
time.sleep(2)
faults()
st = wait_done(s, rid, 60)
t.is_(st[:2], ("COMPLETED", None), "quota freed before the deadline -> COMPLETED (%s)" % (st,))

# ---- a plain 403 (no permission) is final at once
st, took = run("forbid", {"method": "POST", "code": 403, "quota": False, "message": "pods is forbidden: User cannot create", "count": 1000})
t.is_(st[:2], ("FAILED", "CLUSTER_ERROR"), "403 without quota (RBAC) -> FAILED CLUSTER_ERROR, not retried (%s)" % (st,))
t.ok(took < 5, "  failed at once (%.1f s)" % took)
t.is_(1000 - faults_left(), 1, "  one attempt")
faults()

t.ok(wait_for(lambda: not [p for p in pods(sim) if not p["metadata"].get("deletionTimestamp")], 30),
     "no model pods left")
t.done()
