#!/usr/bin/python3
# 513-web-recommendations.t — issue 19 defect 4 and the recommendations page: per resource a bar on one scale with the usage measured, the current value and the recommended one (their positions follow the values), a confidence note ("Based on 1 finished instance" and a low-confidence warning under 3), band names in words (no raw enums such as very_under); Apply asks to confirm with the diff (nothing changes before), then offers Undo, which restores the previous values. Real stack with modelhubd: an oversized load model runs once and is stopped. Screenshots at 1280 and 390 px; no console error; contrast.
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

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1", "metrics.interval_ms": "500"})
adm = s.admin_token
LOAD = {"id": "recload", "execution_mode": "SYNC",
        "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
                          "--cpu-per-input", "0.01", "--mib-per-input", "1",
                          "--host", "{host}", "--port", "{port}"],
        "cpu_request_m": 100, "cpu_limit_m": 4000, "memory_request_mib": 1024,
        "memory_limit_mib": 4096, "max_instances": 1, "idle_seconds": 600,
        "details": {"title": "Recommendation load", "columns": ["n_atoms"]}}
t.status(s.api("POST", "/api/models", token=adm, json=LOAD), 201, "register an oversized load model")
r = s.api("POST", "/api/requests", token=adm, json={"model_id": "recload", "inputs": ["CCO"] * 60})
t.status(r, 201, "a request")
rid = r.json["id"]
deadline = time.time() + 120
while time.time() < deadline and s.api("GET", "/api/requests/%s" % rid, token=adm).json["status"] != "COMPLETED":
    time.sleep(0.3)
time.sleep(2)   # a few more metric samples
iid = s.sql("SELECT id FROM model_instance WHERE model_id = 'recload'")[0][0]
r = s.api("POST", "/api/instances/%s/stop" % iid, token=adm, json={})
t.ok(r.status in (200, 202), "stop its instance (%s)" % r.status)
while time.time() < deadline and s.sql("SELECT state FROM model_instance WHERE id = $1", iid)[0][0] != "TERMINATED":
    time.sleep(0.3)


def recommendation():
    j = s.api("GET", "/api/recommendations?model_id=recload", token=adm).json
    return (j.get("items") or j.get("recommendations") or [j])[0] if isinstance(j, dict) else j[0]


# the finished instance's metrics row lands just after its state
deadline = time.time() + 30
rec = recommendation()
while time.time() < deadline and rec.get("verdict") == "no_data":
    time.sleep(0.5)
    rec = recommendation()
t.ok(rec.get("verdict") in ("adjust", "critical"), "the API recommends a change (%s)" % rec.get("verdict"))
res = rec.get("resources") or {}

b = Browser(s.url, t, name="513")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
b.route("#/admin/recommendations")
box_css = "#recommendations .recommendation[data-model='recload']"
box = b.wait_for(box_css, timeout=20)

# ---- confidence
conf = b.find(box_css + " .confidence")
t.like(conf.text, r"^Based on 1 finished instance\.", "confidence note: based on 1 finished instance")
t.like(conf.text, r"Low confidence", "  and a low-confidence warning (fewer than 3)")

# ---- a bar per resource, positions following the values
rows = b.finds(box_css + " table.rec tbody tr")
t.is_(len(rows), 4, "four resources")
LABEL = {"CPU request": "cpu_request_m", "CPU limit": "cpu_limit_m",
         "Memory request": "memory_request_mib", "Memory limit": "memory_limit_mib"}
for tr in rows:
    name = tr.find_element("css selector", "td").text
    k = LABEL.get(name)
    bar = tr.find_elements("css selector", ".rec-bar")
    if not k or not bar:
        t.fail("%s: a bar" % name)
        continue
    pos = b.driver.execute_script("""const bar = arguments[0], w = bar.getBoundingClientRect();
const x = (c) => { const e = bar.querySelector(c); if (!e) return null; const r = e.getBoundingClientRect();
  return [(c === '.rec-used' ? r.right : r.left) - w.left, e.dataset.value]; };
return [x('.rec-used'), x('.rec-current'), x('.rec-recommended'), w.width, bar.getAttribute('aria-label')];""", bar[0])
    used, cur, recm, width, label = pos
    want = res.get(k, {})
    t.ok(cur and recm and cur[1] == str(want.get("current")) and recm[1] == str(want.get("recommended")),
         "%s: ticks for current %s and recommended %s" % (name, want.get("current"), want.get("recommended")))
    vals = (want.get("usage") or 0, want.get("current"), want.get("recommended"))
    xs = (used[0], cur[0], recm[0])
    top = max(vals) * 1.1
    t.ok(all(abs(x - v / top * width) <= 3 for x, v in zip(xs, vals)),
         "%s: used/current/recommended at %s px on a %d px scale for %s" % (name, [round(x) for x in xs], width, vals))
    t.like(label or "", r"used .* current %s, recommended %s" % (want.get("current"), want.get("recommended")),
           "%s: the bar has a text alternative" % name)
t.ok("_" not in b.find(box_css + " table.rec").text, "no raw enum (underscore) in the table: band names in words")
t.like(b.find(box_css + " .rec-legend").text, r"used[\s\S]*current[\s\S]*recommended", "a legend says what the marks are")
t.is_(b.low_contrast(), [], "no text below 4.5:1")
b.shots("recommendations")

# ---- apply: confirm with the diff, then undo
before = s.sql("SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, version FROM model WHERE id = 'recload'")[0]
b.click(box_css + " .apply-recommendation")
confirm = b.wait_for(box_css + " .confirm")
changed = [k for k in LABEL.values() if res[k]["recommended"] != res[k]["current"]]
t.ok(all("%s → %s" % (res[k]["current"], res[k]["recommended"]) in confirm.text for k in changed),
     "confirm lists each change current → recommended (%d)" % len(changed))
t.is_(s.sql("SELECT version FROM model WHERE id = 'recload'")[0][0], before[4], "  nothing applied before confirming")
b.click(box_css + " .confirm-recommendation")
b.wait_text("#messages", "Recommendation applied")
after = s.sql("SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib, version FROM model WHERE id = 'recload'")[0]
t.ok(after[4] == str(int(before[4]) + 1) and after[:4] != before[:4], "applied (%s -> %s)" % (before, after))
b.click(".undo-recommendation")
b.wait_text("#messages", "Previous values of recload restored")
undone = s.sql("SELECT cpu_request_m, cpu_limit_m, memory_request_mib, memory_limit_mib FROM model WHERE id = 'recload'")[0]
t.is_(undone, before[:4], "Undo restored the previous values")
t.is_(b.console_errors(), [], "no console errors")
b.quit()
s.stop()
t.done()
