#!/usr/bin/python3
# 505-web-live.t — issue 19 defect 1: live views update in place. On a running request's page the focused Cancel button keeps keyboard focus across polls while progress moves, and Enter on it cancels; My requests and Admin → Work requests keep focus on a row's link while cells change and a new row appears above it; durations tick between polls; status changes are announced once through the live region (#live-status).
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
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "2", "hub.chunk_size": "2"})
# A slow model: 0.4 s per input, results stored two at a time, so the
# progress bar moves every ~1 s for many polls.
r = s.api("POST", "/api/models", token=s.admin_token, json={
    "id": "slow", "enabled": True, "execution_mode": "SYNC", "max_instances": 2,
    "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e",
                      "--input-cost", "0.4", "--host", "{host}", "--port", "{port}"],
    "details": {"title": "Slow molecular weight", "columns": ["mol_weight"]}})
t.status(r, 201, "slow model registered")
tok = s.user("live_user", password="live-user-password")


def submit(n):
    r = s.api("POST", "/api/requests", token=tok, json={"model_id": "slow", "inputs": ["C" * (i % 6 + 1) for i in range(n)]})
    assert r.status == 201, r.text
    return r.json["id"]


def progress(css):
    return b.find(css + " [role=progressbar]").get_attribute("aria-valuenow")


b = Browser(s.url, t, name="505")
b.go("#/login")
b.fill("#login-form [name=username]", "live_user")
b.fill("#login-form [name=password]", "live-user-password")
b.click("#login-submit")
b.wait_text("#current-user", "live_user")

# ---- a running request's page: focus on Cancel survives the polls
rid = submit(40)
b.route("#/requests/%d" % rid)
b.wait(lambda: b.find("#request-status").get_attribute("data-status") == "RUNNING", "RUNNING", timeout=60)
b.wait(lambda: int(progress("#request-detail")) > 0, "first results", timeout=60)
b.driver.execute_script("document.getElementById('cancel-request').focus()")
t.is_(b.focused(), "button#cancel-request", "Cancel focused")
p0 = progress("#request-detail")
d0 = (b.finds("#request-detail .duration") or [None])[0]
d0 = d0.text if d0 else None
b.wait(lambda: int(progress("#request-detail")) >= int(p0) + 4, "progress moved on", timeout=30)
calls = b.find("#request-calls").text
t.ok(int((calls.split() or ["0"])[0]) >= 1 and b.find("#request-status").get_attribute("data-status") == "RUNNING",
     "while RUNNING with results, Model calls counts the calls made so far (%s, not 0)" % calls)
t.is_(b.focused(), "button#cancel-request", "after several polls (progress %s → %s) Cancel still has focus"
      % (p0, progress("#request-detail")))
d1 = (b.finds("#request-detail .duration") or [None])[0]
t.ok(d0 and d1 and d1.text != d0, "the duration ticks (%r → %r)" % (d0, d1 and d1.text))
b.driver.execute_script("window.confirm = () => true;")
ActionChains(b.driver).send_keys(Keys.ENTER).perform()
b.wait(lambda: b.find("#request-status").get_attribute("data-status") == "CANCELLED", "CANCELLED", timeout=15)
t.pass_("Enter on the focused Cancel cancels the request")
t.like(b.wait_text("#live-status", "cancelled").text, r"Request #%d is now cancelled" % rid,
       "the status change is announced in the live region")
t.ok("CANCELLED CANCELLED" not in b.find("#request-detail").text, "the status is not repeated as its reason")

# ---- My requests: focus on a row's link while cells change and a row is added above
rid2 = submit(30)
b.route("#/requests")
row = "#requests-list tr[data-id='%d']" % rid2
b.wait(lambda: b.find(row).get_attribute("data-status") == "RUNNING", "list: RUNNING", timeout=60)
link = b.find(row + " a[href='#/requests/%d']" % rid2)
b.driver.execute_script("arguments[0].focus()", link)
want = "a[#/requests/%d]" % rid2
t.is_(b.focused(), want, "row link focused")
p0 = progress(row)
rid3 = submit(4)
b.wait_for("#requests-list tr[data-id='%d']" % rid3, timeout=10)
b.wait(lambda: int(progress(row)) >= int(p0) + 4, "list progress moved on", timeout=30)
t.is_(b.focused(), want, "a new row above and changed cells: focus still on the same request's link")
b.wait(lambda: b.find(row).get_attribute("data-status") == "COMPLETED", "list: COMPLETED", timeout=60)
t.like(b.wait_text("#live-status", "#%d" % rid2).text, r"Request #%d is now completed" % rid2,
       "the list announces the status change")
t.is_(b.focused(), want, "focus kept when the row completes")
b.shots("my-requests")

# ---- Admin → Work requests
b.click("#logout")
b.wait_for("#login-form")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
rid4 = submit(30)
b.route("#/admin/requests")
row = "#admin-requests tr[data-id='%d']" % rid4
b.wait(lambda: b.find(row).get_attribute("data-status") == "RUNNING", "admin: RUNNING", timeout=60)
owner = b.find(row + " a")
b.driver.execute_script("arguments[0].focus()", owner)
want = b.focused()
t.like(want or "", r"^a\[#/admin/requests\?user_id=\d+\]$", "owner link focused")
rid5 = submit(2)
b.wait_for("#admin-requests tr[data-id='%d']" % rid5, timeout=10)
b.wait(lambda: b.find(row).get_attribute("data-status") == "COMPLETED", "admin: COMPLETED", timeout=60)
t.is_(b.focused(), want, "admin work requests: focus kept through new rows and a status change")
b.shots("admin-requests")

errs = b.console_errors()
t.is_(errs, [], "no console errors")
b.quit()
s.stop()
t.done()
