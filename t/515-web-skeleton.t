#!/usr/bin/python3
# 515-web-skeleton.t — issue 19 "skeleton rows": while the first answer of a list is on its way (the API slowed to 1.5 s by Chromium's network emulation), My requests and Admin → Work requests show placeholder rows (hidden from screen readers, which get "Loading…"), replaced by the rows when the answer comes; no console error.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from stack import Stack             # noqa: E402

s = Stack(config={"auth.pwhash_fast": "1"})
s.add_demo_models()
adm = s.admin_token
r = s.api("POST", "/api/requests", token=adm, json={"model_id": "eos3b5e", "inputs": ["CCO"]})
t.status(r, 201, "a request (stays QUEUED: no modelhubd)")
rid = r.json["id"]

b = Browser(s.url, t, name="515")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
b.driver.execute_cdp_cmd("Network.enable", {})


def slow(ms):
    b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": ms, "downloadThroughput": -1, "uploadThroughput": -1})


for route, box in (("#/requests", "#requests-list"), ("#/admin/requests", "#admin-requests")):
    b.route("#/models")
    b.wait_for("#models-list")
    b.wait_idle()
    slow(1500)
    b.route(route)
    sk = b.wait_for(box + " .skeleton", timeout=5)
    t.ok(len(b.finds(box + " .skeleton-table tr")) >= 3, "%s: placeholder rows while the list loads" % route)
    t.is_(b.find(box + " .skeleton-table").get_attribute("aria-hidden"), "true", "  hidden from screen readers")
    t.is_(b.driver.execute_script("return arguments[0].querySelector('.sr-only').textContent", sk), "Loading…",
          "  which hear Loading…")
    slow(0)
    b.wait_for("%s tr[data-id='%s']" % (box, rid))
    t.ok(not b.exists(box + " .skeleton"), "%s: the rows replace them" % route)
t.is_(b.console_errors(), [], "no console errors")
b.quit()
s.stop()
t.done()
