#!/usr/bin/python3
# 160-recommend-api.t — recommendations API over persisted instance metrics:
# computed values per band, access rules, validation, history, one-click
# apply with optimistic concurrency, no-data model.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(config={"recommend.max_cpu_m": "4000", "recommend.max_mem_mib": "8192"})
adm = s.admin_token

for mid in ("rtest", "rempty"):
    s.sql("INSERT INTO model (id, cpu_request_m, cpu_limit_m, memory_request_mib,"
          " memory_limit_mib, local_command) VALUES ($1, 100, 1000, 256, 1000,"
          " ARRAY['/bin/true','{port}'])", mid)


def add_instance(cpu_min, cpu_max, mem_min, mem_max, reason="IDLE", inputs=5,
                 res=(100, 1000, 256, 1000)):
    iid = s.sql("INSERT INTO model_instance (model_id, backend, state, termination_reason,"
                " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib,"
                " terminated_at) VALUES ('rtest', 'local', 'TERMINATED', $1, $2, $3, $4, $5,"
                " now()) RETURNING id", reason, *res)[0][0]
    s.sql("INSERT INTO instance_metrics (instance_id, model_id, sample_count,"
          " cpu_min_m, cpu_max_m, cpu_avg_m, mem_min_mib, mem_max_mib, mem_avg_mib,"
          " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, input_count,"
          " termination_reason, request_inputs, call_inputs) VALUES ($1, 'rtest', 20, $2, $3,"
          " $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12, $12)",
          iid, cpu_min, cpu_max, (cpu_min + cpu_max) / 2, mem_min, mem_max,
          (mem_min + mem_max) / 2, *res, inputs, reason)
    return iid


# 4 instances: cpu peak 900 of 1000 (90 %, over), cpu floor 80 of 100 (green),
# memory peak 400 of 1000 (40 %, under), memory floor 100 of 256 (39 %).
for _ in range(4):
    add_instance(80, 900, 100, 400)

# ---- access
t.status(s.api("GET", "/api/recommendations?model_id=rtest"), 401, "no token: 401")
t.status(s.api("GET", "/api/recommendations?model_id=rtest", token=s.anon()), 403,
         "anonymous: 403")
t.status(s.api("GET", "/api/recommendations?model_id=rtest", token=s.user("recuser")), 403,
         "plain user: 403")

# ---- computed values
r = s.api("GET", "/api/recommendations?model_id=rtest", token=adm)
t.status(r, 200, "admin gets a recommendation")
rec = r.json or {}
res = rec.get("resources", {})
t.is_(rec.get("instances"), 4, "4 finished instances used")
t.is_(res.get("cpu_limit_m", {}).get("recommended"), 1200, "cpu limit 900/75% = 1200m")
t.is_(res.get("cpu_limit_m", {}).get("band", {}).get("name"), "over", "cpu limit band over")
t.is_(res.get("cpu_request_m", {}).get("recommended"), 100, "green cpu request kept at 100m")
t.is_(res.get("memory_limit_mib", {}).get("recommended"), 560, "memory limit 400/72.5% -> 560")
t.is_(res.get("memory_request_mib", {}).get("recommended"), 144,
      "memory request 100/72.5% -> 144")
t.is_(res.get("memory_limit_mib", {}).get("unit"), "MiB", "memory unit MiB")
t.ok(res.get("cpu_limit_m", {}).get("reason"), "each resource says why")
t.is_(rec.get("verdict"), "adjust", "verdict adjust")
t.ok(any(b.get("inputs") == "1-10" for b in rec.get("by_input_size", [])),
     "input-size bucket 1-10 reported")

# an active (not terminated) instance must not count
s.sql("INSERT INTO model_instance (model_id, backend, state) VALUES ('rtest', 'local', 'BUSY')")
r = s.api("GET", "/api/recommendations?model_id=rtest", token=adm)
t.is_((r.json or {}).get("instances"), 4, "active instances are not counted")

# limit and window
r = s.api("GET", "/api/recommendations?model_id=rtest&limit=2", token=adm)
t.is_((r.json or {}).get("instances"), 2, "limit=2 uses the newest two")
r = s.api("GET", "/api/recommendations?model_id=rtest&from=2000-01-01&to=2000-12-31", token=adm)
t.is_((r.json or {}).get("verdict"), "no_data", "a window without instances: no_data")

# ---- validation
for q, field in (("from=yesterday", "from"), ("to=2026-13", "to"), ("limit=0", "limit"),
                 ("limit=abc", "limit")):
    r = s.api("GET", "/api/recommendations?model_id=rtest&" + q, token=adm)
    t.status(r, 422, "bad %s -> 422" % q)
    t.ok(field in ((r.json or {}).get("error", {}).get("fields") or {}),
         "error names the field %s" % field)
r = s.api("GET", "/api/recommendations?model_id=nope", token=adm)
t.status(r, 404, "unknown model 404")
t.is_((r.json or {}).get("error", {}).get("code"), "model_not_found", "code model_not_found")

# ---- all models
r = s.api("GET", "/api/recommendations", token=adm)
t.status(r, 200, "all models")
ids = [x.get("model_id") for x in (r.json or {}).get("items", [])]
t.ok("rtest" in ids and "rempty" in ids, "every model listed")

# ---- apply (fresh), stale version, stored id
ver = int(s.sql("SELECT version FROM model WHERE id='rtest'")[0][0])
r = s.api("POST", "/api/models/rempty/apply-recommendation", token=adm)
t.status(r, 422, "apply without data: 422")
t.is_((r.json or {}).get("error", {}).get("code"), "no_data", "code no_data")
r = s.api("POST", "/api/models/rtest/apply-recommendation", json={"version": ver + 5}, token=adm)
t.status(r, 409, "stale version: 409")
t.is_((r.json or {}).get("error", {}).get("code"), "stale_version", "code stale_version")
t.is_(s.sql("SELECT cpu_limit_m FROM model WHERE id='rtest'")[0][0], "1000",
      "stale apply changed nothing")
r = s.api("POST", "/api/models/rtest/apply-recommendation", json={"version": ver}, token=adm)
t.status(r, 200, "apply fresh recommendation")
row = s.sql("SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, version"
            " FROM model WHERE id='rtest'")[0]
t.is_(row, ("100", "1200", "144", "560", str(ver + 1)), "model resources updated, version+1")
applied = s.sql("SELECT applied_by IS NOT NULL, applied_at IS NOT NULL FROM recommendation"
                " WHERE id = $1", str((r.json or {}).get("recommendation_id")))
t.is_(applied, [("t", "t")], "who applied it is recorded")
r = s.api("POST", "/api/models/rtest/apply-recommendation", json={"version": "x"}, token=adm)
t.status(r, 422, "non-integer version: 422")
r = s.api("POST", "/api/models/rtest/apply-recommendation", data="{bad",
          headers={"Content-Type": "application/json"}, token=adm)
t.status(r, 400, "bad JSON: 400")
r = s.api("POST", "/api/models/rtest/apply-recommendation", token=s.login("recuser"))
t.status(r, 403, "apply as plain user: 403")

# ---- history and applying a stored one
r = s.api("GET", "/api/recommendations/history?model_id=rtest", token=adm)
t.status(r, 200, "history")
items = (r.json or {}).get("items", [])
t.ok(len(items) >= 1 and items[0].get("applied_at"), "history shows the applied one")
stored = items[0]["id"]
r = s.api("POST", "/api/models/rtest/apply-recommendation",
          json={"recommendation_id": stored}, token=adm)
t.status(r, 409, "stored recommendation computed against an older version: 409")
r = s.api("POST", "/api/models/rtest/apply-recommendation",
          json={"recommendation_id": 999999}, token=adm)
t.status(r, 404, "unknown recommendation id: 404")
r = s.api("GET", "/api/recommendations/history?limit=0", token=adm)
t.status(r, 422, "history limit=0: 422")

# ---- OOM pushes memory up and says so
oom_iid = add_instance(80, 700, 180, 500, reason="OOMKILLED", res=(100, 1200, 144, 512))
r = s.api("GET", "/api/recommendations?model_id=rtest", token=adm)
m = (r.json or {}).get("resources", {}).get("memory_limit_mib", {})
t.diag("memory limit: %s -> %s" % (m.get("current"), m.get("recommended")))
# a bounded step from the 512 it died at: 614.4 rounded up to 16 = 624
t.ok(m.get("oom_adjusted") and m.get("recommended") == max(624, m.get("current", 0)),
     "OOM-killed instance raises the memory limit (max(512 x1.2, 512+100)): %s" % m.get("recommended"))
t.like(m.get("reason", ""), "OOM", "reason mentions the OOM kill")
t.is_((r.json or {}).get("verdict"), "critical", "OOM makes the verdict critical")

# ---- apply exactly what was shown: expect + window
r = s.api("GET", "/api/recommendations?model_id=rtest&limit=3", token=adm)
shown = {k: v["recommended"] for k, v in (r.json or {}).get("resources", {}).items()}
ver = int(s.sql("SELECT version FROM model WHERE id='rtest'")[0][0])
wrong = dict(shown, cpu_limit_m=shown.get("cpu_limit_m", 0) + 10)
r = s.api("POST", "/api/models/rtest/apply-recommendation", token=adm,
          json={"version": ver, "expect": wrong, "window": {"limit": 3}})
t.status(r, 409, "values other than those now computed: 409")
t.is_((r.json or {}).get("error", {}).get("code"), "recommendation_changed", "code recommendation_changed")
r = s.api("POST", "/api/models/rtest/apply-recommendation", token=adm,
          json={"version": ver, "expect": {"cpu_limit_m": 1}})
t.status(r, 422, "expect without all four values: 422")
r = s.api("POST", "/api/models/rtest/apply-recommendation", token=adm,
          json={"version": ver, "window": {"from": "yesterday"}})
t.status(r, 422, "bad window: 422")
r = s.api("POST", "/api/models/rtest/apply-recommendation", token=adm,
          json={"version": ver, "expect": shown, "window": {"limit": 3}})
t.status(r, 200, "the values shown, with the window shown: applied")
got = s.sql("SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib"
            " FROM model WHERE id='rtest'")[0]
t.is_([int(x) for x in got], [shown[k] for k in ("cpu_request_m", "cpu_limit_m",
                                                  "memory_request_mib", "memory_limit_mib")],
      "the model has exactly the values shown")

# ---- persisted metrics outlive the instance row (own retention, sql/006)
s.sql("DELETE FROM model_instance WHERE id = $1", oom_iid)
t.is_(int(s.sql("SELECT count(*) FROM instance_metrics WHERE instance_id = $1", oom_iid)[0][0]), 1,
      "instance_metrics kept when the instance row goes")
r = s.api("GET", "/api/recommendations?model_id=rtest", token=adm)
t.is_((r.json or {}).get("oom_instances"), 1, "the OOM run still counts")

# ---- an instance OOM-killed before its first sample still counts (a model
# that allocates past its limit at start-up dies before the monitor's first
# sample: sample_count 0, no aggregates; it is the clearest OOM of all)
s.sql("INSERT INTO model (id, cpu_request_m, cpu_limit_m, memory_request_mib,"
      " memory_limit_mib, local_command) VALUES ('rfast', 100, 1000, 256, 280,"
      " ARRAY['/bin/true','{port}'])")
fid = s.sql("INSERT INTO model_instance (model_id, backend, state, termination_reason,"
            " cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, terminated_at)"
            " VALUES ('rfast', 'local', 'TERMINATED', 'OOMKILLED', 100, 1000, 256, 280, now())"
            " RETURNING id")[0][0]
s.sql("INSERT INTO instance_metrics (instance_id, model_id, sample_count, cpu_request_m,"
      " cpu_limit_m, memory_request_mib, memory_limit_mib, input_count, termination_reason)"
      " VALUES ($1, 'rfast', 0, 100, 1000, 256, 280, 100, 'OOMKILLED')", fid)
r = s.api("GET", "/api/recommendations?model_id=rfast", token=adm)
rep = r.json or {}
m = rep.get("resources", {}).get("memory_limit_mib", {})
t.is_(rep.get("verdict"), "critical", "an OOM kill before the first sample is critical")
t.is_(m.get("recommended"), 384, "  and raises the limit 280 -> 384 (max(x1.2, +100), 16 MiB steps)")
t.done()
