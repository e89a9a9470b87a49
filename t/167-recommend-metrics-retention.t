#!/usr/bin/python3
# 167-recommend-metrics-retention.t — persisted instance metrics have their own retention (recommend.metrics_retention_days, default 90): the janitor's 7-day pass deletes old requests and instance rows but keeps their metrics, so a recommendation over a longer window still sees them; metrics past 90 days go (issue 16, defect 10).
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1", "hub.retention_days": "7"})
adm = s.admin_token
s.sql("INSERT INTO model (id, cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib)"
      " VALUES ('rret', 100, 1000, 256, 1024)")
old_req = s.sql("INSERT INTO work_request (model_id, anon_session_id, input_count, status, created_at)"
                " VALUES ('rret', 1, 10, 'COMPLETED', now() - interval '20 days') RETURNING id")[0][0]


def instance(days, metrics_days):
    """A terminated instance `days` old with its metrics persisted
    `metrics_days` ago (400 m peak, 300 MiB)."""
    iid = s.sql("INSERT INTO model_instance (model_id, backend, state, termination_reason,"
                " started_at, terminated_at, request_ids) VALUES ('rret', 'local', 'TERMINATED',"
                " 'IDLE', now() - make_interval(days => $1::int),"
                " now() - make_interval(days => $1::int), ARRAY[$2::bigint]) RETURNING id",
                days, old_req)[0][0]
    s.sql("INSERT INTO instance_metrics (instance_id, model_id, sample_count, cpu_min_m, cpu_max_m,"
          " cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib, cpu_busy_m, mem_busy_mib, busy_samples,"
          " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, input_count,"
          " termination_reason, persisted_at) VALUES ($1, 'rret', 20, 0, 400, 200, 250, 300, 280,"
          " 300, 290, 10, 100, 1000, 256, 1024, 10, 'IDLE', now() - make_interval(days => $2::int))",
          iid, metrics_days)
    return iid


kept = [instance(20, 20), instance(30, 30)]
gone = instance(95, 91)
s.start_hubd()
deadline = time.time() + 60
while time.time() < deadline and "retention pass" not in open(s.logs["hubd"]).read():
    time.sleep(0.2)
time.sleep(1)
t.like(open(s.logs["hubd"]).read(), r"janitor days=7 requests=1 instances=3",
       "the 7-day retention pass deleted the old request and the three instance rows")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'rret'"), [("0",)],
      "instance rows older than 7 days are gone")
t.is_(sorted(int(r[0]) for r in s.sql("SELECT instance_id FROM instance_metrics"
                                        " WHERE model_id = 'rret'")),
      sorted(int(x) for x in kept),
      "their metrics stay (20 and 30 days: within 90); the 91-day-old one is deleted")
r = s.api("GET", "/api/recommendations?model_id=rret", token=adm)
rep = r.json or {}
t.is_(rep.get("instances"), 2, "a recommendation still uses the two runs after their rows went")
t.is_(rep.get("resources", {}).get("cpu_limit_m", {}).get("usage"), 400,
      "with their measured peak (400 m), not missing data")
r = s.api("GET", "/api/recommendations?model_id=rret&from=%s" % time.strftime(
    "%Y-%m-%d", time.gmtime(time.time() - 25 * 86400)), token=adm)
t.is_((r.json or {}).get("instances"), 1, "a 25-day window holds the 20-day-old run only")
t.done()
