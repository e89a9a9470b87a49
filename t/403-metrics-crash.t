#!/usr/bin/python3
# 403-metrics-crash.t — the metrics children under faults: the scraper and
# the monitor are SIGKILLed while instances work; the supervisor restarts
# them, sampling continues, every instance that ended gets its persisted
# instance_metrics row, no slot is leaked; API workers serve instance_live
# for an instance without a local slot; the segment is recreated by a
# modelhubd restart without API workers crashing.
import functools
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "metrics.interval_ms": "300"})
s.add_demo_models()
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load", "--cpu-per-input", "0.05",
        "--mib-per-input", "1", "--host", "{host}", "--port", "{port}"]
s.sql("INSERT INTO model (id, local_command, idle_seconds, max_instances) VALUES"
      " ('loadc', $1::text[], 1, 2)", flows.argv_literal(argv))
s.start_hubd()
adm = s.admin_token
anon = s.anon()


wait_for = functools.partial(flows.wait_for, t)


def metric(name_re):
    r = s.api("GET", "/metrics")
    m = re.search(r"^%s (\d+)" % name_re, r.text, re.M)
    return int(m.group(1)) if m else None


def sample_count(iid):
    r = s.api("GET", "/api/instances/%s" % iid, token=adm)
    m = (r.json or {}).get("metrics") or {}
    return ((m.get("aggregates") or {}).get("sample_count") or 0) if m.get("source") == "segment" else 0


def kill_and_wait_restart(role):
    old = s.pid_of(role)
    if not old:
        t.fail("%s is running" % role)
        return None
    os.kill(old, signal.SIGKILL)
    new = wait_for("%s restarted" % role, lambda: (lambda p: p if p and p != old else None)(s.pid_of(role)),
                   timeout=20)
    t.ok(new, "%s SIGKILLed (pid %d) and restarted (pid %s)" % (role, old, new))
    return new


# ---- load: 6 requests of 60 inputs on 2 instances
rids = []
for _ in range(6):
    r = s.api("POST", "/api/requests", token=anon,
              json={"model_id": "loadc", "inputs": ["C" * (1 + i % 5) for i in range(60)]})
    rids.append((r.json or {}).get("id"))
busy = wait_for("a busy instance with samples", lambda: (lambda it: it[0] if it and sample_count(it[0]["id"]) >= 2 else None)(
    (s.api("GET", "/api/instances?model=loadc", token=adm).json or {}).get("items")))
t.ok(busy, "instances running and sampled")
iid = busy["id"] if busy else 0
before = sample_count(iid)
kill_and_wait_restart("scraper")
t.ok(wait_for("samples continue", lambda: sample_count(iid) > before + 2 or
              s.sql("SELECT state FROM model_instance WHERE id = $1", iid)[0][0] == "TERMINATED",
              timeout=20),
     "sampling continues after the scraper restart (same slot, same aggregates)")
kill_and_wait_restart("monitor")
# kill both again while work goes on
time.sleep(1)
kill_and_wait_restart("scraper")
kill_and_wait_restart("monitor")

done = wait_for("all requests finished", lambda: all(
    s.sql("SELECT status FROM work_request WHERE id = $1", rid)[0][0] in ("COMPLETED", "FAILED")
    for rid in rids), timeout=180)
t.ok(done, "all requests finished")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE status <> 'COMPLETED'")[0][0], "0",
      "and completed")
ended = wait_for("instances ended", lambda: s.sql(
    "SELECT count(*) FROM model_instance WHERE state <> 'TERMINATED' AND model_id = 'loadc'")[0][0] == "0",
    timeout=30)
t.ok(ended, "every instance ended (idle stop)")
missing = wait_for("persisted rows", lambda: (lambda n: n if n == "0" else None)(s.sql(
    "SELECT count(*) FROM model_instance mi WHERE state = 'TERMINATED'"
    " AND NOT EXISTS (SELECT 1 FROM instance_metrics im WHERE im.instance_id = mi.id)")[0][0]),
    timeout=20)
t.is_(missing, "0", "no ended instance without its instance_metrics row")
t.ok(int(s.sql("SELECT min(sample_count) FROM instance_metrics")[0][0] or 0) > 0,
     "persisted rows carry samples")
leak = wait_for("slots released", lambda: (lambda v: "none" if v == 0 else None)(
    metric(r'modelhub_metrics_slots\{kind="instance",state="active"\}')), timeout=20)
t.is_(leak, "none", "no instance slot left active")
t.ok(metric(r"modelhub_child_restarts_total\{role=\"scraper\",slot=\"\d+\"\}") >= 2,
     "child restarts visible in /metrics")

# ---- instance_live fallback: an instance of another replica (no local slot)
s.sql("INSERT INTO model_instance (id, model_id, backend, name, state, replica_id, cpu_request_m,"
      " cpu_limit_m, memory_request_mib, memory_limit_mib) VALUES (9001, 'loadc', 'kubernetes',"
      " 'pod-9001', 'BUSY', 'other-replica', 100, 1000, 128, 512)")
s.sql("INSERT INTO instance_live (instance_id, aggregates) VALUES (9001, $1::jsonb)",
      '{"sample_count":5,"cpu":{"unit":"millicores","count":5,"min":100,"max":800,"avg":400,'
      '"last_60s":{"count":5,"min":100,"max":800,"avg":400}},"memory":{"unit":"MiB","count":5,'
      '"min":100,"max":480,"avg":300,"last_60s":{"count":5,"min":100,"max":480,"avg":300}}}')
r = s.api("GET", "/api/instances/9001", token=adm)
m = (r.json or {}).get("metrics") or {}
t.is_(m.get("source"), "instance_live", "no local slot: aggregates from instance_live")
g = [x for x in m.get("gauges", []) if x["resource"] == "memory" and x["stat"] == "max"]
t.ok(g and g[0]["percent"] == 93.8 and g[0]["band"] == "critical", "gauges from instance_live (480/512 critical)")
s.sql("UPDATE model_instance SET state = 'TERMINATED' WHERE id = 9001")

# ---- segment recreated by a modelhubd restart; API workers keep serving
fcgi_pid = s.pid_of("fcgi")
gen1 = s.api("GET", "/api/nodes", token=adm).json
t.is_(((gen1 or {}).get("items") or [{}])[0].get("source"), "segment", "nodes from the segment")
s.stop_hubd()
r = s.api("GET", "/api/nodes", token=adm)
t.status(r, 200, "segment gone: /api/nodes still answers")
t.ok(all(n.get("source") == "database" for n in (r.json or {}).get("items", [])),
     "  from the database")
t.status(s.api("GET", "/api/instances?state=finished", token=adm), 200, "instances list without a segment")
s.start_hubd()
r = wait_for("new segment", lambda: (lambda j: j if (j.get("items") or [{}])[0].get("source") == "segment"
                                     and (j["items"][0].get("aggregates") or {}).get("sample_count", 0) > 0
                                     else None)(s.api("GET", "/api/nodes", token=adm).json or {}), timeout=20)
t.ok(r, "after the restart the workers attach the new segment")
t.is_(s.pid_of("fcgi"), fcgi_pid, "modelhub-fcgi master still the same process")
flog = open(s.logs["fcgi"]).read()
t.ok("worker died" not in flog and "worker exited" not in flog, "no FastCGI worker crashed")
t.done()
