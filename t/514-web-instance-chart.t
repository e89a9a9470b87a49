#!/usr/bin/python3
# 514-web-instance-chart.t — issue 19 "Instance page": a time-series chart of CPU and memory with a time axis (HH:MM:SS ticks, increasing) and the request and limit drawn as labelled lines at their values (limit above request), kept for finished instances: the monitor stores the last samples with the instance when it ends and GET /api/instances/{id}/samples answers them (with since), while instance listings leave them out. "Ended because" names the reason once, in words. Real stack with modelhubd (local backend); screenshots at 1280 and 390 px; no console error.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from stack import Stack             # noqa: E402

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1", "metrics.interval_ms": "300"})
adm = s.admin_token
LOAD = {"id": "chartload", "execution_mode": "SYNC",
        "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
                          "--cpu-per-input", "0.02", "--mib-per-input", "1",
                          "--host", "{host}", "--port", "{port}"],
        "cpu_request_m": 200, "cpu_limit_m": 2000, "memory_request_mib": 256,
        "memory_limit_mib": 1024, "max_instances": 1, "idle_seconds": 600,
        "details": {"title": "Chart load", "columns": ["n_atoms"]}}
t.status(s.api("POST", "/api/models", token=adm, json=LOAD), 201, "register a load model")
r = s.api("POST", "/api/requests", token=adm, json={"model_id": "chartload", "inputs": ["CCO"] * 80})
t.status(r, 201, "a request")
rid = r.json["id"]

b = Browser(s.url, t, name="514")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
iid = None
deadline = time.time() + 60
while time.time() < deadline and not iid:
    rows = s.sql("SELECT id FROM model_instance WHERE model_id = 'chartload'")
    iid = rows[0][0] if rows else None
    time.sleep(0.2)
b.route("#/admin/instances/%s" % iid)
b.wait_js("const c = document.querySelector('#view svg.timechart'); return c && +c.dataset.samples >= 4",
          "a chart with samples", timeout=60)
t.pass_("running instance: a time chart with samples")


def chart():
    return b.driver.execute_script("""const c = document.querySelector('#view svg.timechart');
const lines = [...c.querySelectorAll('line[data-resource]')].map((l) => [l.getAttribute('class'), l.dataset.resource,
  +l.dataset.value, +l.getAttribute('y1')]);
const times = [...c.querySelectorAll('text.tc-time')].map((e) => e.textContent);
const labels = [...c.querySelectorAll('text.tc-line-label')].map((e) => e.textContent);
return {n: +c.dataset.samples, lines, times, labels,
        polylines: c.querySelectorAll('polyline').length};""")


c = chart()
want = {("tc-request", "cpu_m"): 200, ("tc-limit", "cpu_m"): 2000,
        ("tc-request", "memory_mib"): 256, ("tc-limit", "memory_mib"): 1024}
got = {(k, res): v for k, res, v, _ in c["lines"]}
t.is_(got, want, "request and limit lines at the model's values for CPU and memory")
ys = {(k, res): y for k, res, _, y in c["lines"]}
t.ok(all(ys[("tc-limit", res)] < ys[("tc-request", res)] for res in ("cpu_m", "memory_mib")),
     "  the limit is drawn above the request")
t.ok(set(c["labels"]) >= {"request 200 m", "limit 2000 m", "request 256 MiB", "limit 1024 MiB"},
     "  each line is labelled (%s)" % c["labels"])
t.ok(len(c["times"]) == 5 and all(re.match(r"^\d\d:\d\d:\d\d$", x) for x in c["times"])
     and c["times"] == sorted(c["times"]), "a time axis: 5 increasing HH:MM:SS ticks (%s)" % c["times"])
t.is_(c["polylines"], 2, "a CPU and a memory series")
t.like(b.find("#view .tc-legend").text, r"dotted: request, dashed: limit", "the legend says which line is which")
b.shots("instance-chart-running")

# ---- ended: the chart stays
deadline = time.time() + 120
while time.time() < deadline and s.api("GET", "/api/requests/%s" % rid, token=adm).json["status"] != "COMPLETED":
    time.sleep(0.3)
r = s.api("POST", "/api/instances/%s/stop" % iid, token=adm, json={})
t.ok(r.status in (200, 202), "stop the instance (%s)" % r.status)
deadline = time.time() + 60
# ended and persisted by the monitor (its metrics row) before asking
while time.time() < deadline and s.sql("SELECT count(*) FROM instance_metrics WHERE instance_id = $1",
                                       iid)[0][0] != "1":
    time.sleep(0.5)
kept = (s.api("GET", "/api/instances/%s/samples" % iid, token=adm).json or {}).get("samples") or []
t.ok(len(kept) >= 4, "finished instance: GET …/samples answers the %d samples kept at its end" % len(kept))
j = s.api("GET", "/api/instances/%s/samples?since=%d" % (iid, kept[-2]["t_ms"] if len(kept) > 1 else 0), token=adm).json
t.is_(len(j.get("samples") or []), 1 if len(kept) > 1 else 0, "  since= filters them")
one = s.api("GET", "/api/instances/%s" % iid, token=adm).json
t.ok("samples" not in (one.get("snapshot") or {}), "  the instance itself does not carry them (listings stay small)")

b.route("#/admin/instances/finished")
b.wait_for("#view a[href='#/admin/instances/%s']" % iid)
b.route("#/admin/instances/%s" % iid)
b.wait_text("#instance-state", "TERMINATED", timeout=30)
b.wait_js("const c = document.querySelector('#view svg.timechart'); return c && +c.dataset.samples >= 4",
          "the finished instance's chart", timeout=20)
t.pass_("finished instance page: the chart is still drawn")
t.is_(chart()["n"], len(kept), "  from the kept samples")
ended = b.find("#instance-ended").text
reason = s.sql("SELECT termination_reason FROM model_instance WHERE id = $1", iid)[0][0]
t.ok(ended.lower().count(reason.lower().replace("_", " ")) == 1 and reason not in ended,
     "'Ended because' names the reason once, in words: %r (%s)" % (ended, reason))
b.shots("instance-chart-finished")
t.is_(b.console_errors(), [], "no console errors")
b.quit()
s.stop()
t.done()
