#!/usr/bin/python3
# 401-instance-metrics.t — live metrics of real model instances: the load
# model with known CPU seconds and MiB per input gives samples and
# aggregates in the expected ranges (segment fast path, instance_live
# copy), the persisted instance_metrics match the last live aggregates,
# and an instance killed at its memory limit is recorded OOMKILLED with its
# memory maximum.
import functools
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402
from flows import argv_literal  # noqa: E402

INTERVAL_MS = 400
CPU_PER_INPUT = 0.15
BASE_MIB = 100
N_INPUTS = 40

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "metrics.interval_ms": str(INTERVAL_MS)})
s.add_demo_models()
adm = s.admin_token


def add_load_model(mid, cpu, mib, base, mem_limit, idle):
    argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
            "--cpu-per-input", str(cpu), "--mib-per-input", str(mib), "--base-mib", str(base),
            "--host", "{host}", "--port", "{port}"]
    s.sql("INSERT INTO model (id, local_command, cpu_request_m, cpu_limit_m, memory_request_mib,"
          " memory_limit_mib, idle_seconds, max_instances) VALUES ($1, $2::text[], 250, 1000, 128,"
          " $3::int, $4::int, 1)", mid, argv_literal(argv), mem_limit, idle)


add_load_model("loadm", CPU_PER_INPUT, 1, BASE_MIB, 1024, 4)
add_load_model("loadoom", 0.2, 10, 0, 200, 0)
s.start_hubd()
anon = s.anon()


def submit(model, n):
    r = s.api("POST", "/api/requests", token=anon,
              json={"model_id": model, "inputs": ["C" * (1 + i % 7) for i in range(n)]})
    if r.status != 201:
        t.diag("submit: %s %s" % (r.status, r.text))
    return (r.json or {}).get("id")


def req_status(rid):
    return s.sql("SELECT status, failure_reason FROM work_request WHERE id = $1", rid)[0]


wait_for = functools.partial(flows.wait_for, t)


def active_item(model):
    r = s.api("GET", "/api/instances?state=active&model=" + model, token=adm)
    items = (r.json or {}).get("items") or []
    return items[0] if items else None


def gauge(item, res, stat):
    for g in item["metrics"]["gauges"]:
        if g["resource"] == res and g["stat"] == stat:
            return g
    return None


# ---- live: the segment fills while the model burns CPU
rid = submit("loadm", N_INPUTS)
live = wait_for("3 samples of a busy instance",
                lambda: (lambda it: it if it and it["metrics"]["source"] == "segment" and
                         (it["metrics"]["aggregates"] or {}).get("sample_count", 0) >= 3 else None)
                (active_item("loadm")))
t.ok(live is not None, "active instance listed with live aggregates from the segment")
live = live or {"metrics": {"aggregates": {}, "gauges": []}, "id": 0}
iid = live["id"]
agg = live["metrics"]["aggregates"] or {}
t.is_((agg.get("cpu") or {}).get("unit"), "millicores", "cpu unit")
t.is_((agg.get("memory") or {}).get("unit"), "MiB", "memory unit")
t.is_(len(live["metrics"]["gauges"]), 6, "six gauges (max/min/avg for cpu and memory)")
g = gauge(live, "memory", "max") or {}
t.is_((g.get("against"), g.get("of"), g.get("unit")), ("limit", 1024.0, "MiB"),
      "memory max gauge is against the limit")
t.ok(g.get("percent") is not None and abs(g["percent"] - 100.0 * g["value"] / 1024) < 0.2,
     "gauge percent = value / limit")
t.ok(g.get("band") in ("very_under", "under", "recommended", "over", "very_over", "critical")
     and g.get("colour") in ("orange", "yellow", "green", "red"), "gauge has a band and colour")
g = gauge(live, "cpu", "min") or {}
t.is_((g.get("against"), g.get("of")), ("request", 250.0), "cpu min gauge is against the request")

# instance_live: the scraper's copy for other replicas (first sample, then ~15 s)
row = wait_for("instance_live row", lambda: s.sql(
    "SELECT (aggregates->>'sample_count')::int, aggregates->'cpu'->>'unit' FROM instance_live"
    " WHERE instance_id = $1", iid), timeout=10)
t.ok(row and int(row[0][0]) >= 1 and row[0][1] == "millicores", "instance_live holds the aggregates")

st = wait_for("request done", lambda: (lambda x: x if x[0] in ("COMPLETED", "FAILED") else None)
              (req_status(rid)))
t.is_(st and st[0], "COMPLETED", "load request completed")

# Samples of the whole run, before the idle stop: CPU integral ~ inputs x CPU/input.
r = s.api("GET", "/api/instances/%s/samples" % iid, token=adm)
smp = (r.json or {}).get("samples") or []
t.ok(len(smp) >= 5, "samples endpoint returns the run (%d samples)" % len(smp))
t.is_((r.json or {}).get("units", {}).get("cpu_m"), "millicores", "samples carry units")
t.ok(all(smp[i]["t_ms"] < smp[i + 1]["t_ms"] for i in range(len(smp) - 1)), "samples in time order")
cpu_s = sum(smp[i]["cpu_m"] * (smp[i]["t_ms"] - smp[i - 1]["t_ms"]) for i in range(1, len(smp))) / 1e6
want = N_INPUTS * CPU_PER_INPUT
t.ok(0.7 * want <= cpu_s <= 2.0 * want,
     "CPU integral of the samples %.2f s ~ %d x %.2f s = %.1f s" % (cpu_s, N_INPUTS, CPU_PER_INPUT, want))
peak = max([x["cpu_m"] for x in smp] or [0])
t.ok(200 <= peak <= 1300, "CPU peak %.0f m: one busy thread (<= 1 core)" % peak)
mem = [x["memory_mib"] for x in smp]
med = sorted(mem)[len(mem) // 2] if mem else 0
t.ok(mem and med >= BASE_MIB * 0.9 and max(mem) < 1024,
     "memory median %.0f MiB (max %.0f) holds the %d MiB base, under the limit"
     % (med, max(mem or [0]), BASE_MIB))
if smp:
    r2 = s.api("GET", "/api/instances/%s/samples?since=%d" % (iid, smp[-2]["t_ms"]), token=adm)
    t.ok(1 <= len((r2.json or {}).get("samples") or []) <= 3, "since= returns only newer samples")
else:
    t.fail("since= returns only newer samples")
last = active_item("loadm")
last_agg = (last or {}).get("metrics", {}).get("aggregates") or {}

# ---- finished: persisted by the monitor after the idle stop
pm = wait_for("instance_metrics row", lambda: s.sql(
    "SELECT sample_count, cpu_max_m, mem_max_mib, cpu_avg_m, cpu_request_m, cpu_limit_m,"
    " memory_request_mib, memory_limit_mib, input_count, termination_reason"
    " FROM instance_metrics WHERE instance_id = $1", iid), timeout=40)
t.ok(pm is not None, "instance_metrics persisted after the instance ended")
pm = pm[0] if pm else ("0",) * 10
t.ok(int(pm[0]) >= last_agg.get("sample_count", 1), "persisted sample count %s >= last live %s"
     % (pm[0], last_agg.get("sample_count")))
t.ok(float(pm[1]) >= (last_agg.get("cpu") or {}).get("max", 0) - 0.1, "persisted cpu max >= last live max")
t.ok(float(pm[2]) >= (last_agg.get("memory") or {}).get("max", 0) - 0.1, "persisted memory max >= last live max")
t.is_(pm[4:8], ("250", "1000", "128", "1024"), "persisted resources it ran with")
t.is_(pm[8], str(N_INPUTS), "input count served")
t.is_(pm[9], "IDLE", "termination reason")
snap = s.sql("SELECT snapshot->'resources'->>'memory_limit_mib', snapshot->'metrics'->'cpu'->>'max',"
             " snapshot->>'metrics_source', snapshot->>'final_state' FROM model_instance WHERE id = $1", iid)[0]
t.is_(snap[0], "1024", "final snapshot carries the resources")
t.ok(snap[1] is not None and abs(float(snap[1]) - float(pm[1])) < 0.1, "snapshot metrics = instance_metrics")
t.is_(snap[2], "segment", "persisted from the segment")
t.ok(snap[3] in ("IDLE", "TERMINATING", "BUSY"), "final active state recorded (%s)" % snap[3])
t.is_(s.sql("SELECT count(*) FROM instance_live WHERE instance_id = $1", iid)[0][0], "0",
      "instance_live row dropped")
r = s.api("GET", "/api/instances/%s" % iid, token=adm)
m = (r.json or {}).get("metrics") or {}
t.is_(m.get("source"), "persisted", "finished instance served from instance_metrics (slot freed)")
t.ok((m.get("aggregates") or {}).get("cpu", {}).get("max") == round(float(pm[1]), 1),
     "API aggregates = persisted row")
t.is_((r.json or {}).get("input_count"), N_INPUTS, "API input_count")

# ---- OOM: 10 MiB per input against a 200 MiB limit
rid = submit("loadoom", 40)
st = wait_for("oom request", lambda: (lambda x: x if x[0] in ("COMPLETED", "FAILED") else None)
              (req_status(rid)))
t.is_(st, ("FAILED", "OOM_KILLED"), "request fails OOM_KILLED")
oi = s.sql("SELECT id, termination_reason FROM model_instance WHERE model_id = 'loadoom' ORDER BY id")
t.ok(oi and oi[0][1] == "OOMKILLED", "instance terminated OOMKILLED (%s)" % (oi,))
pm = wait_for("oom metrics", lambda: s.sql(
    "SELECT termination_reason, mem_max_mib, sample_count FROM instance_metrics WHERE instance_id = $1",
    oi[0][0]) if oi else None, timeout=30)
t.ok(pm and pm[0][0] == "OOMKILLED", "persisted metrics say OOMKILLED")
t.ok(pm and pm[0][1] is not None and 100 <= float(pm[0][1]) <= 230,
     "memory maximum near the 200 MiB limit (%s MiB)" % (pm[0][1] if pm else None))
kinds = [k for (k,) in s.sql("SELECT kind FROM instance_event WHERE instance_id = $1", oi[0][0])] if oi else []
t.ok("OOM_KILLED" in kinds, "OOM_KILLED event recorded")
t.done()
