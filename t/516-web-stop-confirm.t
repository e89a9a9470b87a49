#!/usr/bin/python3
# 516-web-stop-confirm.t — issue 19 #11 (wording): the confirm shown before stopping an instance says whether it serves a request: an idle instance "serves no request now" (not "the request it serves"), a busy one names its request; and a model id that is not valid gets its error in words, not as a regular expression, from the API and next to the form field. Real stack with modelhubd (local backend); no console error.
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

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
adm = s.admin_token
# one input costs 2 s: a 1-input request ends soon, a 15-input one keeps the instance busy
MODEL = {"id": "stopme", "execution_mode": "SYNC",
         "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e",
                           "--input-cost", "2", "--host", "{host}", "--port", "{port}"],
         "max_instances": 1, "idle_seconds": 600, "details": {"title": "Stop me", "columns": ["mol_weight"]}}
t.status(s.api("POST", "/api/models", token=adm, json=MODEL), 201, "register a slow model")

# ---- the id error in words (API)
RE_CHARS = re.compile(r"[\^\$\[\]\{\}\\]")
r = s.api("POST", "/api/models", token=adm, json=dict(MODEL, id="Bad Id"))
t.status(r, 422, "an invalid model id: 422")
msg = (((r.json or {}).get("error") or {}).get("fields") or {}).get("id", "")
t.like(msg, r"lower-case letters, digits", "  the id error says what an id is made of: %r" % msg)
t.ok(msg and not RE_CHARS.search(msg), "  with no regular expression in it")


def request(n):
    r = s.api("POST", "/api/requests", token=adm, json={"model_id": "stopme", "inputs": ["CCO"] * n})
    t.status(r, 201, "a request of %d input(s)" % n)
    return r.json["id"]


def wait_state(iid, state, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = s.sql("SELECT state FROM model_instance WHERE id = $1", str(iid))
        if rows and rows[0][0] == state:
            return True
        time.sleep(0.2)
    return False


first = request(1)
iid = None
deadline = time.time() + 60
while time.time() < deadline and not iid:
    rows = s.sql("SELECT id FROM model_instance WHERE model_id = 'stopme'")
    iid = rows[0][0] if rows else None
    time.sleep(0.2)
deadline = time.time() + 90
while time.time() < deadline and s.api("GET", "/api/requests/%s" % first, token=adm).json["status"] != "COMPLETED":
    time.sleep(0.3)
t.ok(wait_state(iid, "IDLE"), "the instance is IDLE after its request")

b = Browser(s.url, t, name="516")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")


def confirm_text(css):
    """Click the Stop button, answer the confirm with Cancel, return its text."""
    b.driver.execute_script("window.__asked = null; window.confirm = (m) => { window.__asked = m; return false; }")
    b.click(css)
    return b.wait_js("return window.__asked", "the stop confirm")


# ---- idle: on the instance page and on the active instances list
b.route("#/admin/instances/%s" % iid)
b.wait_text("#instance-state", "IDLE")
idle = confirm_text("#view .stop-instance")
t.like(idle, r"^Stop instance %s of stopme\? It serves no request now\.$" % iid,
       "idle instance page: the confirm says it serves no request (%r)" % idle)
t.ok("request it serves" not in idle and "#" not in idle, "  and names no request")
b.route("#/admin/instances")
b.wait_for("#view button[aria-label='Stop instance %s']" % iid)
t.is_(confirm_text("#view button[aria-label='Stop instance %s']" % iid), idle, "  the same on the active instances list")
t.ok(s.sql("SELECT stop_requested FROM model_instance WHERE id = $1", str(iid)) == [("f",)],
     "  Cancel in the confirm stops nothing")

# ---- busy: it names the request it serves
busy_rid = request(15)
t.ok(wait_state(iid, "BUSY"), "the instance is BUSY with the second request")
b.route("#/admin/instances/%s" % iid)
b.wait_text("#instance-state", "BUSY")
busy = confirm_text("#view .stop-instance")
t.like(busy, r"^Stop instance %s of stopme\? It serves request #%s, which is failed or requeued\.$" % (iid, busy_rid),
       "busy instance page: the confirm names the request it serves (%r)" % busy)
b.shots("stop-confirm-busy")
s.api("POST", "/api/admin/requests/%s/cancel" % busy_rid, token=adm, json={})

# ---- the id error in words (next to the model form's field)
b.route("#/admin/models")
b.click("#new-model")
b.wait_for("#model-form [name=id]")
b.fill("#model-form [name=id]", "Bad Id")
b.allow_http(422, "POST", "/api/models", "an invalid model id")
b.click("#save-model")
shown = b.wait(lambda: b.field_error("#model-form", "id"), "id error")
t.is_(shown, msg, "new model form: the API's id error in words next to the field")
t.ok(shown and not RE_CHARS.search(shown), "  no regular expression shown (%r)" % shown)
t.is_(b.console_errors(), [], "no console errors, no HTTP error but the deliberate 422 of the bad id")
b.quit()
s.stop()
t.done()
