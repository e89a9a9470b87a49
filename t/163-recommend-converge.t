#!/usr/bin/python3
# 163-recommend-converge.t — end to end with the busy phase fed by the scraper: an oversized run of the `load` model, one apply, and the next run measures green on all four values (the CPU request included, from the busy-phase samples, unless the machine starved the model); a second apply changes nothing (fixed point).
"""The load model burns 0.002 CPU s per input paced at 100 m and holds
200 MiB plus 0.3 MiB per input of the call; 600 inputs go in chunks of
100. Each run is two requests on one warm instance with an idle pause
between them.
Registered with 100 m / 8 CPU and 2048 / 8192 MiB. The scraper marks the
instance BUSY while it serves the request, so its busy-phase P10 (persisted
as cpu_busy_m / mem_busy_mib) and not the idle floor sizes the requests.
After one apply the next run must be rated green (band `recommended`) for
cpu_request_m, cpu_limit_m, memory_request_mib and memory_limit_mib, and a
second apply must leave the model's values as they are.
The CPU limit and memory checks always run: the peak is the best-served
two-second sample (since issue 16 no sample holds the start-up, which used
to set it), and memory does not depend on the machine's load. The CPU
request is a low percentile of the busy samples, i.e. of the worst-served
ones: it is only the model's when the machine gave it the CPU it asked for.
The load model logs, per call, how long it fell behind its pace
(starved_ms); when either run was starved for more than 3 % of its call
time, the CPU request's band, the verdict (which includes it) and the CPU
request's fixed point are skipped with the figures."""
import json
import re
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"hub.runners": "1", "metrics.interval_ms": "2000"})
adm = s.admin_token
RES = ("cpu_request_m", "cpu_limit_m", "memory_request_mib", "memory_limit_mib")
model = {
    "id": "recconv", "execution_mode": "SYNC",
    "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
                      "--cpu-per-input", "0.002", "--cpu-rate", "100", "--mib-per-input", "0.3",
                      "--base-mib", "200",
                      "--host", "{host}", "--port", "{port}"],
    "cpu_request_m": 100, "cpu_limit_m": 8000,
    "memory_request_mib": 2048, "memory_limit_mib": 8192,
    "max_instances": 1, "idle_seconds": 6,
}
r = s.api("POST", "/api/models", json=model, token=adm)
t.status(r, 201, "register the load model with oversized resources")
INPUTS = ["C" * (1 + i % 5) for i in range(600)]


def request(label):
    r = s.api("POST", "/api/requests", json={"model_id": "recconv", "inputs": INPUTS}, token=adm)
    if r.status != 201:
        t.fail("%s: submit %s %s" % (label, r.status, r.text[:200]))
        return None
    rid = r.json["id"]
    deadline = time.time() + 120
    st = {}
    while time.time() < deadline:
        st = s.api("GET", "/api/requests/%s" % rid, token=adm).json or {}
        if st.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.5)
    t.is_(st.get("status"), "COMPLETED", "%s: request completed" % label)
    return rid


def run_once(label):
    """Two requests on one warm instance with an idle pause between them
    (idle_seconds 6 keeps it): the idle samples drag the all-time min down,
    the busy phase leaves them out. The instance then stops and persists."""
    rid = request(label + " (1/2)")
    time.sleep(4)
    rid2 = request(label + " (2/2)")
    RIDS.append([rid, rid2])
    deadline = time.time() + 60
    while time.time() < deadline:
        rows = s.sql("SELECT im.cpu_busy_m, im.mem_busy_mib, im.busy_samples, im.cpu_min_m,"
                     " im.cpu_max_m, im.mem_max_mib, im.sample_count, im.request_inputs,"
                     " im.call_inputs, im.throttled_pct"
                     " FROM instance_metrics im JOIN model_instance mi ON mi.id = im.instance_id"
                     " WHERE $1 = ANY(mi.request_ids)", rid)
        if rows:
            return rows[0]
        time.sleep(0.5)
    t.fail("%s: instance metrics persisted" % label)
    return None


RIDS = []


def starvation(rids):
    """(starved ms, call ms) over the calls of the requests rids, from the
    load model's pace lines in the logs of the instances that served them."""
    ids = "{%s}" % ",".join(str(r) for r in rids if r)
    starved = wall = 0
    for (text,) in s.sql("SELECT l.text FROM instance_log l JOIN model_instance mi"
                         " ON mi.id = l.instance_id WHERE mi.request_ids && $1::bigint[]", ids):
        for w, st in re.findall(r" pace .*?wall_ms=(\d+) starved_ms=(\d+)", text or ""):
            wall += int(w)
            starved += int(st)
    return starved, wall


def model_values():
    return tuple(int(x) for x in s.sql(
        "SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib"
        " FROM model WHERE id = 'recconv'")[0])


def rating(limit):
    r = s.api("GET", "/api/recommendations?model_id=recconv&limit=%d" % limit, token=adm)
    return r.json or {}


first = run_once("oversized run")
if first:
    busy_cpu, busy_mem, nbusy, cpu_min = (float(first[0] or -1), float(first[1] or -1),
                                          int(first[2] or 0), float(first[3]))
    t.diag("first run: busy P10 %.0f m / %.0f MiB over %d busy of %s samples; all-time CPU min"
           " %.0f m, max %s m, memory max %s MiB, throttled %s %%" % (
               busy_cpu, busy_mem, nbusy, first[6], cpu_min, first[4], first[5], first[9]))
    t.ok(nbusy >= 5, "the busy phase was recorded (%d busy samples)" % nbusy)
    t.ok(nbusy < int(first[6]), "idle samples stay out of it (%d of %s)" % (nbusy, first[6]))
    t.ok(cpu_min < 100, "the all-time CPU min is the idle floor (%.0f m)" % cpu_min)
    t.ok(busy_cpu > 50 and busy_cpu > 3 * cpu_min,
         "busy CPU P10 reflects the work (%.0f m, paced at 100 m), not the idle floor" % busy_cpu)
    t.ok(busy_mem >= 200, "busy memory P10 holds the base (%.0f MiB)" % busy_mem)
if first:
    t.is_((first[7], first[8]), ("600", "100"),
          "input sizes recorded: largest request 600 inputs, largest model call 100 (the chunk)")
rep = rating(100)
t.is_([b.get("inputs") for b in rep.get("by_call_size", [])], ["11-100"],
      "the per-call-size bucket is fed by the recorded call size")
t.is_([b.get("inputs") for b in rep.get("by_input_size", [])], ["101-1000"],
      "the per-request-size bucket is fed by the recorded request size")
res = rep.get("resources", {})
t.ok("busy floor" in (res.get("cpu_request_m", {}).get("reason") or ""),
     "the CPU request is sized from the busy floor (%s)" % res.get("cpu_request_m", {}).get("reason"))
t.ok(res.get("cpu_request_m", {}).get("recommended", 0) > 50,
     "CPU request recommendation is not the 10 m floor (%s m)" %
     res.get("cpu_request_m", {}).get("recommended"))
r = s.api("POST", "/api/models/recconv/apply-recommendation", token=adm)
t.status(r, 200, "applied")
applied = model_values()
t.diag("applied: cpu %d/%d m, memory %d/%d MiB" % applied)

second = run_once("right-sized run")
if second:
    t.diag("second run: busy P10 %s m / %s MiB over %s busy of %s samples, CPU max %s m,"
           " memory max %s MiB, throttled %s %%" % (second[0], second[1], second[2], second[6],
                                                  second[4], second[5], second[9]))
STARVED_MAX_PCT = 3.0
starved_pct = []
for i, rids in enumerate(RIDS):
    st_ms, w_ms = starvation(rids)
    starved_pct.append(100.0 * st_ms / w_ms if w_ms > 0 else 100.0)
    smp = s.sql("SELECT mi.snapshot->'samples' FROM model_instance mi"
                " WHERE $1 = ANY(mi.request_ids)", rids[0])
    arr = smp[0][0] if smp and smp[0][0] else []
    arr = json.loads(arr) if isinstance(arr, str) else arr
    t.diag("run %d: starved %d of %d ms of calls (%.1f %%); CPU samples, sorted: %s" % (
        i + 1, st_ms, w_ms, starved_pct[-1],
        sorted(round(float(x.get("cpu_m", 0))) for x in arr)))
t.ok(len(starved_pct) == 2 and max(starved_pct) < 100,
     "the load model logged its pace in both runs (starved %s %%)" % (
         ", ".join("%.1f" % p for p in starved_pct)))
# The busy floor (P10 of the busy samples) is the 2nd lowest of ~14 two-
# second samples: a machine that withholds the paced 100 m for a few hundred
# ms in two of them moves it, and the check needs the two runs' floors
# within the green band's +-13 % around the 75 % target. Measured at load
# 9-15: runs starved 0-2.7 % of their call time had P10 91 m, 3.5 % 86 m,
# 4.1 % 81 m (62.6 % of the 130 m applied: under), and with one-second
# samples 4.7 % 81 m, 5-9 % 51-68 m. Beyond 3 % in either run the request
# checks would measure the machine.
cpu_own = len(starved_pct) == 2 and max(starved_pct) <= STARVED_MAX_PCT
why = "the machine starved the model of CPU for %s %% of its call time (over %.0f %%)" % (
    " and ".join("%.1f" % p for p in starved_pct), STARVED_MAX_PCT)
rep = rating(1)
res = rep.get("resources", {})
for name in RES:
    it = res.get(name, {})
    what = "after one apply the new run's %s is green (%s%% of %s)" % (
        name, it.get("percent_used"), it.get("current"))
    if name == "cpu_request_m" and not cpu_own:
        t.skip("%s: %s" % (what, why))
        continue
    t.is_((it.get("band") or {}).get("name"), "recommended", what)
if cpu_own:
    t.is_(rep.get("verdict"), "ok", "verdict: nothing to change")
else:
    t.skip("verdict ok (it includes the CPU request): %s" % why)

# Fixed point: applying again (over the same window the admin looks at)
# keeps every value.
r = s.api("POST", "/api/models/recconv/apply-recommendation", token=adm,
          json={"window": {"limit": 1}})
t.status(r, 200, "second apply accepted")
if cpu_own:
    t.is_(model_values(), applied, "second apply changes nothing")
else:
    t.is_(model_values()[1:], applied[1:], "second apply changes no limit and no memory value")
    t.skip("second apply keeps the CPU request: %s" % why)
t.done()
