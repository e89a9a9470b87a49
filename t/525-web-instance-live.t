#!/usr/bin/python3
# 525-web-instance-live.t — issue 19 #1 / "live views update in place" on the instance pages: the instance page keeps its Stop button (and keyboard focus on it) across its 2 s polls, keeps the history table across its 10 s refresh and morph() keeps an opened <details> (a pod status dump) open; the Stop confirm on the page and on an active instance card speaks of the instance as last polled (a card made while the instance was BUSY, now IDLE: "serves no request now", not the old request). Real stack with modelhubd (local backend); no console error, no HTTP error.
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

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
adm = s.admin_token
# one input costs 2 s: a 4-input request keeps the instance BUSY for about 8 s
MODEL = {"id": "liveinst", "execution_mode": "SYNC",
         "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e",
                           "--input-cost", "2", "--host", "{host}", "--port", "{port}"],
         "max_instances": 1, "idle_seconds": 600, "details": {"title": "Live instance", "columns": ["mol_weight"]}}
t.status(s.api("POST", "/api/models", token=adm, json=MODEL), 201, "register a slow model")


def request(n):
    r = s.api("POST", "/api/requests", token=adm, json={"model_id": "liveinst", "inputs": ["CCO"] * n})
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


def instance_id():
    deadline = time.time() + 60
    while time.time() < deadline:
        rows = s.sql("SELECT id FROM model_instance WHERE model_id = 'liveinst'")
        if rows:
            return rows[0][0]
        time.sleep(0.2)
    return None


b = Browser(s.url, t, name="525")
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


# ---- a card made while BUSY, asked after the instance went IDLE
rid = request(4)
iid = instance_id()
t.ok(iid and wait_state(iid, "BUSY"), "the instance is BUSY with the request")
card = "#active-instances .instance-card[data-id='%s']" % iid
stop_css = card + " .stop-instance"
b.route("#/admin/instances")
b.wait_text(card, "#%s" % rid)
t.pass_("the active card is drawn while the instance serves request #%s" % rid)
t.ok(wait_state(iid, "IDLE"), "the instance is IDLE after the request")
b.wait(lambda: b.find(card).get_attribute("data-state") == "IDLE", "card: IDLE", timeout=15)
asked = confirm_text(stop_css)
t.is_(asked, "Stop instance %s of liveinst? It serves no request now." % iid,
      "card made while BUSY, now IDLE: the confirm says it serves no request (not #%s)" % rid)

# ---- the instance page: BUSY, then IDLE, with the Stop button focused
rid2 = request(4)
t.ok(wait_state(iid, "BUSY"), "BUSY again with request #%s" % rid2)
b.route("#/admin/instances/%s" % iid)
b.wait_text("#instance-state", "BUSY")
btn = b.wait_for("#instance-detail .stop-instance")
b.driver.execute_script("arguments[0].focus()", btn)
time.sleep(5)   # more than two polls of 2 s
t.ok(b.driver.execute_script("return document.activeElement === arguments[0] && arguments[0].isConnected", btn),
     "instance page: the Stop button keeps keyboard focus across polls (same element)")
t.ok(wait_state(iid, "IDLE"), "IDLE after request #%s" % rid2)
b.wait_text("#instance-state", "IDLE", timeout=15)
t.ok(b.driver.execute_script("return arguments[0].isConnected", btn), "  the same Stop button after the change to IDLE")
asked = confirm_text("#instance-detail .stop-instance")
t.is_(asked, "Stop instance %s of liveinst? It serves no request now." % iid,
      "instance page opened while BUSY, now IDLE: the confirm says it serves no request (not #%s)" % rid2)

# ---- the history is refreshed in place (every 10 s): its table stays
tbl = b.wait_for("#instance-events table")
time.sleep(12.5)
t.ok(b.driver.execute_script("return arguments[0].isConnected", tbl),
     "the history's table is the same element after its refresh (updated in place)")
# an opened <details> (a pod status dump on Kubernetes) survives morph()
kept = b.driver.execute_async_script("""
const done = arguments[arguments.length - 1];
import('/ui.js').then(({ el, morph }) => {
  const box = el('div', el('details', el('summary', 'Pod status'), el('pre', 'a')));
  const det = box.firstChild;
  det.open = true;
  morph(box, el('details', el('summary', 'Pod status'), el('pre', 'b')));
  done([box.firstChild === det, det.open, det.textContent]);
}).catch((e) => done(String(e)));""")
t.is_(kept, [True, True, "Pod statusb"], "morph(): an opened <details> stays open, its text updated")

t.is_(b.console_errors(), [], "no console errors, no HTTP error response")
b.quit()
s.stop()
t.done()
