#!/usr/bin/python3
# 503-web-admin.t — admin pages in headless Chromium over the real stack with modelhubd: model edit (field errors, optimistic version conflict, save), enable/disable, work requests with filters and no inputs shown, active instance with live gauges (percent, x / y, band colour) and chart, stop, history and logs, finished instances, apply recommendation, nodes, hub health; a USER gets 403 from the same APIs.
import os
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
s.add_demo_models()
adm = s.admin_token
# A load model with far too much CPU and memory: the gauges sit in the
# "very under" band and the recommendation proposes less.
LOAD = {"id": "webload", "execution_mode": "SYNC",
        "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load",
                          "--cpu-per-input", "0.01", "--mib-per-input", "1",
                          "--host", "{host}", "--port", "{port}"],
        "cpu_request_m": 100, "cpu_limit_m": 4000, "memory_request_mib": 1024,
        "memory_limit_mib": 4096, "max_instances": 1, "idle_seconds": 600,
        "details": {"title": "Web load", "columns": ["n_atoms"]}}
t.status(s.api("POST", "/api/models", token=adm, json=LOAD), 201, "register the load model")
alice = s.user("alice")
bob = s.user("bob_web")
for tok, m, n in ((alice, "eos3b5e", 2), (bob, "eos3b5e", 1), (bob, "webload", 50)):
    r = s.api("POST", "/api/requests", token=tok, json={"model_id": m, "inputs": ["SECRET_SMILES_%d" % i for i in range(n)]
                                                        if m == "eos3b5e" else ["CCO"] * n})
    t.status(r, 201, "seed request %s x%d" % (m, n))
alice_id = s.sql("SELECT id FROM app_user WHERE username = 'alice'")[0][0]

# The admin pages' APIs refuse a USER (the pages only hide what the API refuses).
for path in ("/api/admin/requests", "/api/instances?state=active", "/api/nodes", "/api/recommendations"):
    t.is_(s.api("GET", path, token=alice).status, 403, "USER gets 403 from %s" % path)

b = Browser(s.url, t, name="503")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")

# ---- work requests (all users), filters, nothing private shown
b.click("#admin-nav a[href='#/admin/requests']")
b.wait(lambda: len(b.finds("#admin-requests tr[data-id]")) == 3, "3 requests listed")
t.pass_("admin sees every user's requests")
txt = b.find("#admin-requests").text
t.ok("SECRET_SMILES" not in b.driver.page_source, "no inputs or results on the admin requests page")
t.ok("user %s" % alice_id in txt, "owner shown by user id")
b.wait_text("#admin-requests", "alice (user %s)" % alice_id)
t.pass_("owner shown by name too")
b.fill("#admin-requests-filters [name=user_id]", alice_id)
b.click("#admin-requests-filters button[type=submit]")
b.wait_route("#/admin/requests?")
b.wait(lambda: len(b.finds("#admin-requests tr[data-id]")) == 1, "filtered by user")
t.like(b.hash(), r"user_id=%s" % alice_id, "filters are kept in the route (bookmarkable)")
t.pass_("user id filter: only alice's request")
b.route("#/admin/requests?model_id=webload")
b.wait(lambda: len(b.finds("#admin-requests tr[data-id]")) == 1, "filtered by model")
t.pass_("model filter")
b.route("#/admin/requests?date_from=2000-01-01&date_to=2000-01-02")
b.wait_text("#admin-requests", "No request matches")
t.pass_("date filter (no time): nothing in 2000")
b.route("#/admin/requests")
b.wait_for("#admin-requests-filters")
b.fill("#admin-requests-filters [name=anon_session_id]", "-4")
bad = b.allow_http(422, "GET", "/api/admin/requests", "a filter that is not a positive integer")
b.click("#admin-requests-filters button[type=submit]")
b.wait_route("#/admin/requests?anon")
err = b.wait(lambda: b.field_error("#admin-requests-filters", "anon_session_id"), "filter error")
b.wait_idle()
b.end_allow(bad)
t.like(err, r"positive integer", "a bad filter: the API's error next to the field")
b.shot("admin-requests")
t.is_(b.unlabelled(), [], "admin requests: every control has a label")

# ---- active instance: gauges and chart
b.click("#admin-nav a[href='#/admin/instances']")
card = b.wait_for("#active-instances .instance-card", timeout=90)
iid = card.get_attribute("data-id")
t.like(iid, r"^\d+$", "an active instance card (instance %s)" % iid)
b.wait(lambda: b.find("#active-instances [data-gauge='memory-max']").get_attribute("data-percent") not in (None, ""),
       "memory gauge has a value", timeout=30)
g = b.find("#active-instances [data-gauge='memory-max']")
pct = int(g.get_attribute("data-percent"))
t.like(g.text, r"\d+% *\n?.*\d+(\.\d)? / 4096 MiB", "memory max gauge: percent inside, x / limit under")
t.ok(0 <= pct <= 100, "memory max percent %d in range" % pct)
band = g.get_attribute("data-band")
cls = g.get_attribute("class")
api = s.api("GET", "/api/instances/%s" % iid, token=adm).json
gauges = {(x["resource"], x["stat"]): x for x in api["metrics"]["gauges"]}
t.ok(band and band == (gauges[("memory", "max")].get("band") or band), "band name from the API (%s)" % band)
t.like(cls, r"band-(orange|yellow|green|red)", "gauge coloured by its band (%s)" % cls)
t.is_(len(b.finds("#active-instances .instance-card[data-id='%s'] .gauge" % iid)), 6,
      "six gauges: CPU and memory × max/limit, min/request, avg/limit")
lbl = g.get_attribute("aria-label")
t.like(lbl, r"of 4096 MiB", "gauge has a text alternative (%s)" % lbl)
b.wait_for("#active-instances .instance-card[data-id='%s'] svg.spark polyline" % iid, timeout=20)
t.pass_("sparkline chart drawn from /samples")
t.like(card.text, r"Request\s*\n?#\d+", "card shows the request id")
b.click("#active-instances .instance-card[data-id='%s'] details.events summary" % iid)
b.wait_text("#active-instances .instance-card[data-id='%s'] details.events pre" % iid, "READY")
t.pass_("card's raw events open on demand (READY listed)")
b.shot("active-instances")
t.is_(b.unlabelled(), [], "active instances: every control has a label")
# focus survives the 2 s refresh (cards updated in place)
hist = b.find("#active-instances .instance-card[data-id='%s'] a[href='#/admin/instances/%s']" % (iid, iid))
b.driver.execute_script("arguments[0].focus()", hist)
time.sleep(4.5)
t.ok(b.driver.execute_script("return document.activeElement === arguments[0]", hist),
     "keyboard focus stays on a card's link across live updates")

# ---- history page, logs
b.click("#active-instances .instance-card[data-id='%s'] a[href='#/admin/instances/%s']" % (iid, iid))
b.wait_for("#instance-events table")
ev = b.wait_text("#instance-events", "READY", timeout=15).text
t.like(ev, r"STARTED|REQUESTED", "history lists the hub's events")
b.click("#instance-logs button")
b.wait_for("#instance-logs pre")
t.pass_("logs shown on the page")
st = b.driver.execute_async_script(
    "const d = arguments[arguments.length - 1]; fetch('/api/instances/%s/logs').then((r) => d(r.status));" % iid)
t.is_(st, 200, "logs link downloads with the admin's cookie")
b.shot("instance-history")

# ---- stop from the page
b.driver.execute_script("window.confirm = () => true;")
b.click("#instance-detail .stop-instance")
b.wait_text("#messages", "Stop of instance")
b.wait(lambda: b.find("#instance-state").text == "TERMINATED", "instance TERMINATED", timeout=60)
t.pass_("stop from the page: the instance terminates")
t.is_(s.sql("SELECT termination_reason FROM model_instance WHERE id = $1", iid), [("STOPPED",)],
      "termination reason STOPPED")

# ---- finished instances
b.route("#/admin/instances/finished")
b.wait_text("#finished-instances", "webload")
t.like(b.find("#finished-instances").text, r"STOPPED", "finished list shows the reason")
b.shot("finished-instances")
b.route("#/admin/instances/finished?status=OOMKILLED")
b.wait_text("#finished-instances", "No finished instances match")
t.pass_("finished filter by termination reason: none OOM-killed")
b.route("#/admin/instances/finished?status=STOPPED&model=webload")
b.wait_text("#finished-instances", "webload")
t.is_(b.find("form [name=status]").get_attribute("value"), "STOPPED", "the filter form shows the route's filter")

# ---- model edit: client check, API field error, version conflict, save
b.route("#/admin/models/webload")
form = "#model-form"
b.wait_for(form)
t.is_(b.unlabelled(), [], "model edit form: every control has a label")
b.fill(form + " [name=cpu_request_m]", "5000")
b.click("#save-model")
t.like(b.wait(lambda: b.field_error(form, "cpu_request_m"), "cpu error"), r"must not exceed",
       "request above limit: error next to the field")
b.fill(form + " [name=cpu_request_m]", "100")
b.fill(form + " [name=max_instances]", "20000")
bad = b.allow_http(422, "PATCH", "/api/models/webload", "max_instances out of range")
b.click("#save-model")
t.like(b.wait(lambda: b.field_error(form, "max_instances"), "API error"), r"between 0 and 10000",
       "the API's validation error is shown next to the field")
b.end_allow(bad)
b.fill(form + " [name=max_instances]", "3")
ver = int(s.sql("SELECT version FROM model WHERE id = 'webload'")[0][0])
r = s.api("PATCH", "/api/models/webload", token=adm, json={"description": "changed elsewhere", "version": ver})
t.status(r, 200, "someone else saves the model meanwhile")
stale = b.allow_http(409, "PATCH", "/api/models/webload", "saving over a version someone else changed")
b.click("#save-model")
b.wait_text(form + " .form-error", "Someone else changed")
b.end_allow(stale)
t.pass_("stale version: conflict explained, nothing overwritten")
t.is_(s.sql("SELECT max_instances, description FROM model WHERE id = 'webload'"), [("1", "changed elsewhere")],
      "the other admin's change survived")
b.click("#reload-model")
b.wait(lambda: b.find("#model-version").text == str(ver + 1), "reloaded form")
b.fill(form + " [name=max_instances]", "3")
b.fill(form + " [name=idle_seconds]", "5")
b.click("#save-model")
b.wait_text("#messages", "saved")
t.is_(s.sql("SELECT max_instances, idle_seconds, version FROM model WHERE id = 'webload'"),
      [("3", "5", str(ver + 2))], "saved: values and a new version")

# ---- apply the recommendation (the stopped instance measured very little)
rec = b.wait_for("#model-recommendation .recommendation", timeout=20)
verdict = rec.get_attribute("data-verdict")
t.ok(verdict in ("adjust", "critical"), "recommendation verdict %s for an oversized model" % verdict)
before = s.sql("SELECT cpu_limit_m, memory_limit_mib, version FROM model WHERE id = 'webload'")[0]
b.click("#model-recommendation .apply-recommendation")
box = b.wait_for("#model-recommendation .confirm", timeout=10)
t.like(box.text, "→", "confirm step shows the diff (current → recommended)")
t.is_(s.sql("SELECT version FROM model WHERE id = 'webload'")[0][0], before[2],
      "nothing applied before confirming")
b.click("#model-recommendation .confirm-recommendation")
b.wait_text("#messages", "Recommendation applied")
after = s.sql("SELECT cpu_limit_m, memory_limit_mib, version FROM model WHERE id = 'webload'")[0]
t.ok(after[2] == str(int(before[2]) + 1) and (after[0], after[1]) != (before[0], before[1]),
     "apply changed the resources (%s -> %s)" % (before, after))
t.is_(s.sql("SELECT count(*) FROM recommendation WHERE model_id = 'webload' AND applied_at IS NOT NULL"),
      [("1",)], "the applied recommendation is recorded")
b.click("#model-recommendation .undo-recommendation")
b.wait_text("#messages", "Previous values")
undone = s.sql("SELECT cpu_limit_m, memory_limit_mib FROM model WHERE id = 'webload'")[0]
t.is_(undone, before[:2], "undo restored the previous values")
b.shot("model-edit")

# ---- enable / disable from the list
b.route("#/admin/models")
b.wait_for("#admin-models")
b.click("#admin-models button[aria-label='Disable eos3b5e']")
b.wait_for("#admin-models button[aria-label='Enable eos3b5e']")
t.is_(s.sql("SELECT enabled FROM model WHERE id = 'eos3b5e'"), [("f",)], "disable from the list")
b.click("#admin-models button[aria-label='Enable eos3b5e']")
b.wait_for("#admin-models button[aria-label='Disable eos3b5e']")
t.is_(s.sql("SELECT enabled FROM model WHERE id = 'eos3b5e'"), [("t",)], "enable again")

# ---- create a model with the form, then delete it
b.route("#/admin/models")
b.click("#new-model")
b.wait_for("#model-form [name=id]")
t.is_(b.unlabelled(), [], "new model form: every control has a label")
b.fill("#model-form [name=id]", "Bad Id")
bad = b.allow_http(422, "POST", "/api/models", "an invalid model id")
b.click("#save-model")
t.like(b.wait(lambda: b.field_error("#model-form", "id"), "id error"),
       r"^must be 1 to 64 lower-case letters, digits, '_', '\.' or '-', starting with a letter or digit$",
       "an invalid id: the API's error next to the field, in words (no regular expression)")
b.end_allow(bad)
b.fill("#model-form [name=id]", "form-made")
b.fill("#model-form [name=local_command]", "/usr/bin/python3\n{models_dir}/serve.py\n--model\neos3b5e\n--host\n{host}\n--port\n{port}")
b.fill("#model-form [name=details]", '{"title": "Made by the form", "columns": ["mol_weight"]}')
b.click("#save-model")
b.wait_route("#/admin/models/form-made")
row = s.sql("SELECT enabled, array_to_json(local_command)::text, details->>'title' FROM model WHERE id = 'form-made'")
t.is_(row, [("t", '["/usr/bin/python3","{models_dir}/serve.py","--model","eos3b5e","--host","{host}","--port","{port}"]',
             "Made by the form")], "model created from the form (argv one per line, details JSON)")
b.wait_for("#delete-model")
b.driver.execute_script("window.confirm = () => true;")
b.click("#delete-model")
b.wait_route("#/admin/models")
b.wait_for("#admin-models")
t.is_(s.sql("SELECT count(*) FROM model WHERE id = 'form-made'"), [("0",)], "model deleted from its page")

# ---- users: disable / enable, links to their requests
b.click("#admin-nav a[href='#/admin/users']")
b.wait_for("#admin-users tr[data-username='alice']")
t.is_(b.unlabelled(), [], "users page: every control has a label")
t.ok(not b.exists("#admin-users tr[data-username='t_admin'] button"), "no disable/demote buttons on one's own row")
b.click("#admin-users button[aria-label='Disable alice']")
b.wait_for("#admin-users button[aria-label='Enable alice']")
t.is_(s.sql("SELECT disabled FROM app_user WHERE username = 'alice'"), [("t",)], "disable from the users page")
t.is_(s.api("GET", "/api/requests", token=alice).status, 401, "the disabled user's session is revoked")
b.click("#admin-users button[aria-label='Enable alice']")
b.wait_for("#admin-users button[aria-label='Disable alice']")
t.is_(s.sql("SELECT disabled FROM app_user WHERE username = 'alice'"), [("f",)], "enable again")
b.click("#admin-users button[aria-label='Make admin bob_web']")
b.wait_for("#admin-users button[aria-label='Revoke admin from bob_web']")
t.is_(s.sql("SELECT roles::text FROM app_user WHERE username = 'bob_web'"), [("{ADMIN,USER}",)], "make admin")
b.click("#admin-users button[aria-label='Revoke admin from bob_web']")
b.wait_for("#admin-users button[aria-label='Make admin bob_web']")
t.is_(s.sql("SELECT roles::text FROM app_user WHERE username = 'bob_web'"), [("{USER}",)], "revoke admin")
b.click("#admin-users tr[data-username='alice'] a[href^='#/admin/requests?user_id=']")
b.wait(lambda: len(b.finds("#admin-requests tr[data-id]")) == 1, "alice's requests")
t.pass_("users page links to the user's requests")

# ---- recommendations, nodes, health
b.click("#admin-nav a[href='#/admin/recommendations']")
b.wait_for("#recommendations .recommendation[data-model='webload']")
b.wait_text("#recommendation-history", "webload")
t.pass_("recommendations page: per model, with history")
b.click("#admin-nav a[href='#/admin/nodes']")
b.wait(lambda: len(b.finds("#nodes tbody tr")) >= 1 and "No nodes" not in b.find("#nodes").text, "a node")
t.like(b.find("#nodes").text, r"\d+ / \d+(\.\d)? m", "node CPU used / allocatable")
b.click("#admin-nav a[href='#/admin/health']")
b.wait_text("#hub-metrics", "runner")
t.like(b.find("#hub-metrics").text, r"scraper", "hub health lists the supervisor's children")
b.shot("hub-health")

errs = b.console_errors()
t.is_(errs, [], "no console errors")
b.quit()
s.stop()
t.done()
