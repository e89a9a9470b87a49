#!/usr/bin/python3
# 161-recommend-nightly.t — the janitor stores one recommendation per enabled
# model on its first run and not again the same day (also across restarts);
# the history API shows them.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1"})
for mid, enabled in (("n1", True), ("n2", True), ("noff", False)):
    s.sql("INSERT INTO model (id, enabled, local_command) VALUES ($1, $2,"
          " ARRAY['/bin/true','{port}'])", mid, enabled)
iid = s.sql("INSERT INTO model_instance (model_id, backend, state, termination_reason,"
            " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib)"
            " VALUES ('n1', 'local', 'TERMINATED', 'IDLE', 100, 1000, 256, 1024)"
            " RETURNING id")[0][0]
s.sql("INSERT INTO instance_metrics (instance_id, model_id, sample_count, cpu_min_m, cpu_max_m,"
      " cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib, cpu_request_m, cpu_limit_m,"
      " memory_request_mib, memory_limit_mib, input_count) VALUES"
      " ($1, 'n1', 10, 10, 300, 100, 50, 200, 120, 100, 1000, 256, 1024, 10)", iid)


def rows():
    return s.sql("SELECT model_id, verdict FROM recommendation ORDER BY model_id")


s.start_hubd()
deadline = time.time() + 30
while time.time() < deadline and len(rows()) < 2:
    time.sleep(0.5)
got = rows()
t.is_(got, [("n1", "adjust"), ("n2", "no_data")],
      "first janitor run stores one recommendation per enabled model")
t.is_(s.sql("SELECT count(*) FROM job_run WHERE job = 'recommendations'"), [("1",)],
      "the run is recorded in job_run")
s.stop_hubd()
s.start_hubd()
time.sleep(6)
t.is_(len(rows()), 2, "a restart the same day does not run it again")
s.stop_hubd()
# Pretend the last run was yesterday before the configured time: due again.
s.sql("UPDATE job_run SET last_at = now() - interval '1 day' WHERE job = 'recommendations'")
s.set_config(**{"recommend.nightly_at": "00:00"})
s.start_hubd()
deadline = time.time() + 30
while time.time() < deadline and len(rows()) < 4:
    time.sleep(0.5)
t.is_(len(rows()), 4, "due again the next day: a second set is stored")
r = s.api("GET", "/api/recommendations/history?model_id=n1", token=s.admin_token)
t.status(r, 200, "history")
items = (r.json or {}).get("items", [])
t.is_(len(items), 2, "history of n1 has both nightly runs")
t.is_(items[0].get("recommended", {}).get("cpu_limit_m"), 400,
      "stored recommended cpu limit (300/75% = 400m)")
t.done()
