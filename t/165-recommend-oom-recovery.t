#!/usr/bin/python3
# 165-recommend-oom-recovery.t — end to end: a run OOM-killed at its memory limit, the recommendation bumps the limit by a bounded step (x1.2, at least +100 MiB, from what the instance had: no doubling, no compounding), and after healthy runs the verdict leaves critical and the memory limit measures green.
"""The load model holds 200 MiB from the start plus 1 MiB per input of the
call (about 330 MiB with a 100-input chunk), registered with a 280 MiB
memory limit: the first request is OOM-killed (FAILED OOM_KILLED, the
instance recorded OOMKILLED). The recommendation is critical and raises the
limit to at most max(280 x 1.2, 280 + 100) rounded up to 16 MiB = 384 (the
old engine doubled and compounded: 580, 1200, ...). Apply, run, apply, run
(recommend.oom_clear_runs = 2): the kill is cleared by the healthy runs
newer than it, the verdict is no longer critical, the memory limit is rated
green, and it stays within 1.6x the healthy peak."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"hub.runners": "1", "metrics.interval_ms": "500",
                             "recommend.oom_clear_runs": "2"})
adm = s.admin_token
model = {
    "id": "recoom", "execution_mode": "SYNC",
    "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
                      "--cpu-per-input", "0.005", "--cpu-rate", "250", "--mib-per-input", "1",
                      "--base-mib", "200",
                      "--host", "{host}", "--port", "{port}"],
    "cpu_request_m": 500, "cpu_limit_m": 2000,
    "memory_request_mib": 256, "memory_limit_mib": 280,
    "max_instances": 1, "idle_seconds": 0,
}
r = s.api("POST", "/api/models", json=model, token=adm)
t.status(r, 201, "register the load model with a memory limit below its peak")
# 100 inputs x 0.005 CPU s paced at 250 m: a call of about 2 s, so even on
# an idle machine the monitor observes the instance several times (the
# first observation is only a CPU baseline) and the healthy runs have peaks
INPUTS = ["C" * (1 + i % 5) for i in range(100)]


def run_once(label, want):
    r = s.api("POST", "/api/requests", json={"model_id": "recoom", "inputs": INPUTS}, token=adm)
    if r.status != 201:
        t.fail("%s: submit %s" % (label, r.status))
        return None
    rid = r.json["id"]
    deadline = time.time() + 120
    st = {}
    while time.time() < deadline:
        st = s.api("GET", "/api/requests/%s" % rid, token=adm).json or {}
        if st.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.5)
    t.is_(st.get("status"), want, "%s: request %s (%s)" % (label, want, st.get("failure_reason")))
    while time.time() < deadline:
        rows = s.sql("SELECT im.termination_reason, im.mem_max_mib, im.memory_limit_mib"
                     " FROM instance_metrics im JOIN model_instance mi ON mi.id = im.instance_id"
                     " WHERE $1 = ANY(mi.request_ids)", rid)
        if rows:
            return rows[0]
        time.sleep(0.5)
    t.fail("%s: instance metrics persisted" % label)
    return None


def rec():
    return s.api("GET", "/api/recommendations?model_id=recoom", token=adm).json or {}


def apply():
    r = s.api("POST", "/api/models/recoom/apply-recommendation", token=adm)
    t.status(r, 200, "applied")
    return int(s.sql("SELECT memory_limit_mib FROM model WHERE id = 'recoom'")[0][0])


killed = run_once("run at 280 MiB", "FAILED")
t.ok(killed and killed[0] == "OOMKILLED", "the instance was recorded OOMKILLED (%s, peak %s of %s MiB)"
     % tuple(killed or ("-", "-", "-")))
rep = rec()
ml = rep.get("resources", {}).get("memory_limit_mib", {})
t.is_(rep.get("verdict"), "critical", "an active OOM kill is critical")
t.ok(ml.get("oom_adjusted") is True, "the memory limit is raised because of the kill")
bump = ml.get("recommended", 0)
t.ok(280 < bump <= 384, "bounded bump: 280 -> %s MiB (<= max(x1.2, +100) rounded = 384)" % bump)
limits = [apply()]
healthy = []
for i in range(2):
    row = run_once("healthy run %d" % (i + 1), "COMPLETED")
    if row:
        healthy.append(float(row[1]))
    if i == 0:
        limits.append(apply())
t.diag("memory limits applied: %s; healthy peaks: %s" % (limits, healthy))
rep = rec()
ml = rep.get("resources", {}).get("memory_limit_mib", {})
t.is_(rep.get("oom_active"), 0, "the kill is cleared by %d healthy runs newer than it" % len(healthy))
t.ok(rep.get("verdict") in ("ok", "adjust"), "verdict no longer critical (%s)" % rep.get("verdict"))
t.is_((ml.get("band") or {}).get("name"), "recommended",
      "the memory limit measures green (%s%% of %s MiB)" % (ml.get("percent_used"), ml.get("current")))
peak = max(healthy) if healthy else 0
t.ok(peak and limits[-1] <= 1.6 * peak,
     "no compounding: the limit %s MiB stays within 1.6x the healthy peak %.0f MiB" % (limits[-1], peak))
t.done()
