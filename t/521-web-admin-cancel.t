#!/usr/bin/python3
# 521-web-admin-cancel.t — in headless Chromium: an admin cancels another user's queued request from the admin requests page (finished rows have no Cancel), the owner's request page shows the model version it was submitted with, and the API page (#/api) lists every operation of /api/openapi.json; no console errors.
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

s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
s.add_demo_models()
adm = s.admin_token
cur = s.api("GET", "/api/models/eos3b5e", token=adm).json["version"]
t.status(s.api("PATCH", "/api/models/eos3b5e", token=adm, json={"model_version": "4.2", "version": cur}), 200,
         "model at version 4.2")
alice = s.user("alice_c", "alice-c-password")
rid = s.api("POST", "/api/requests", token=alice, json={"model_id": "eos3b5e", "inputs": ["CCO"]}).json["id"]
done = s.api("POST", "/api/requests", token=alice, json={"model_id": "eos3b5e", "inputs": ["C"]}).json["id"]
s.api("DELETE", "/api/requests/%d" % done, token=alice)

b = Browser(s.url, t, name="521")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
b.route("#/admin/requests")
b.wait_for("#admin-requests tr[data-id='%d'] button" % rid)
t.ok(not b.exists("#admin-requests tr[data-id='%d'] button" % done), "a finished request has no Cancel button")
t.is_(b.unlabelled(), [], "every control labelled")
b.driver.execute_script("window.confirm = () => true")
b.click("#admin-requests tr[data-id='%d'] button" % rid)
b.wait_text("#messages", "Request #%d cancelled" % rid)
b.wait(lambda: b.find("#admin-requests tr[data-id='%d']" % rid).get_attribute("data-status") == "CANCELLED"
       or "CANCELLED" in b.find("#admin-requests tr[data-id='%d']" % rid).text, "row shows CANCELLED")
t.is_(s.sql("SELECT status, failure_detail FROM work_request WHERE id = $1", str(rid)),
      [("CANCELLED", "cancelled by an admin")], "the admin cancelled alice's request")
b.shot("admin-cancel")
t.is_(b.console_errors(), [], "admin: no console errors")
b.quit()
b = Browser(s.url, t, name="521b")
b.go("#/login")
b.fill("#login-form [name=username]", "alice_c")
b.fill("#login-form [name=password]", "alice-c-password")
b.click("#login-submit")
b.wait_text("#current-user", "alice_c")
b.route("#/requests/%d" % rid)
t.is_(b.wait_for("#request-model-version").text, "4.2", "the request page shows the model version")
b.wait_for("#request-status")
t.is_(b.find("#request-status").get_attribute("data-status"), "CANCELLED", "and that it was cancelled")

spec = s.api("GET", "/api/openapi.json").json
n = sum(len(v) for v in spec["paths"].values())
b.click("#nav a[href='#/api']")
b.wait_text("#api-count", "%d operations" % n)
t.is_(len(b.finds("#api-docs .api-op")), n, "#/api shows every operation of the description (%d)" % n)
t.ok(b.exists("#api-docs [data-op='POST /api/auth/guest/claim']"), "including the guest claim")
b.click("#api-docs [data-op='GET /api/admin/users/{user_id}'] details summary")
t.like(b.find("#api-docs [data-op='GET /api/admin/users/{user_id}'] pre").text, r"AdminUser = ",
       "an answer's schema opens on demand")
b.shot("api-docs")
t.is_(b.console_errors(), [], "user (request page, API page): no console errors")
b.quit()
s.stop()
t.done()
