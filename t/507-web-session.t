#!/usr/bin/python3
# 507-web-session.t — issue 19 defects 5 and 6: a disabled account is told "This account is disabled" (not "no permission"); the login rate limit speaks in minutes; molecules typed on a model page survive an expired session and the login that follows (sessionStorage draft); a tab logged out from another tab keeps its page as `next` and returns there after login; a deliberate log out drops the draft.
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

s = Stack(config={"auth.pwhash_fast": "1", "session.idle_seconds": "12",
                  "session.absolute_seconds": "3600", "login.max_failures": "3"})
s.add_demo_models()
s.user("draft_user", password="draft-user-password")
s.user("gone_user", password="gone-user-password")
s.user("locked_user", password="locked-user-password")
gone = s.sql("SELECT id FROM app_user WHERE username = 'gone_user'")[0][0]
t.status(s.api("PATCH", "/api/admin/users/%s" % gone, token=s.admin_token, json={"disabled": True}), 200,
         "admin disables gone_user")
b = Browser(s.url, t, name="507")


def login(user, password):
    b.wait_for("#login-form")
    b.fill("#login-form [name=username]", user)
    b.fill("#login-form [name=password]", password)
    b.click("#login-submit")


# ---- texts: disabled account, rate limit in minutes
b.go("#/login")
b.allow_http(403, "POST", "/api/auth/login", "logging in to a disabled account")
login("gone_user", "gone-user-password")
err = b.wait_text("#login-form .form-error", "disabled").text
t.like(err, r"^This account is disabled", "a disabled account is told so")
t.ok("permission" not in err, "not 'You do not have permission'")
wrong = [b.allow_http(401, "POST", "/api/auth/login", "wrong passwords until the rate limit"),
         b.allow_http(429, "POST", "/api/auth/login", "the rate limit after 3 failures")]
text = ""
for i in range(6):
    login("locked_user", "wrong-password-%d" % i)
    b.wait_idle()
    text = b.wait(lambda: b.find("#login-form .form-error").text, "an error").strip()
    if "again" in text:
        break
t.like(text, r"^Too many failed logins[^.]*\. Try again in 1[45] minutes\.$", "the rate limit in minutes: %r" % text)
b.shots("login-limited")
for w in wrong:
    b.end_allow(w)

# ---- a draft survives an expired session and the login after it
b.go("#/login")
login("draft_user", "draft-user-password")
b.wait_text("#current-user", "draft_user")
b.route("#/models/eos3b5e")
expiry = b.allow_http(401, "GET", "/api/auth/session", "the idle expiry: the page confirms the session is gone")
b.fill("#request-form textarea", "CCO\nCCN")
b.wait_route("#/login?next=%2Fmodels%2Feos3b5e", timeout=60)
t.pass_("idle expiry sends to the login page with next=/models/eos3b5e")
b.wait_idle()
b.end_allow(expiry)
login("draft_user", "draft-user-password")
b.wait_route("#/models/eos3b5e")
t.is_(b.wait_for("#request-form textarea").get_attribute("value"), "CCO\nCCN",
      "after logging in again the typed molecules are still there")

# ---- logged out from another tab: this tab keeps its page as next
first = b.driver.current_window_handle
b.driver.switch_to.new_window("tab")
b.driver.get(s.url + "/#/models")
b.wait_js("return document.body.dataset.ready === '1'", "second tab started")
b.click("#logout")
b.wait_for("#login-form")
b.driver.close()
b.driver.switch_to.window(first)
b.wait_route("#/login?next=%2Fmodels%2Feos3b5e", timeout=15)
t.pass_("the other tab's log out keeps this tab's page as next")
t.like(b.wait_text("#messages", "another tab").text, r"logged out in another tab", "and says why")
login("draft_user", "draft-user-password")
b.wait_route("#/models/eos3b5e")
t.pass_("logging in again returns to that page")
t.is_(b.wait_for("#request-form textarea").get_attribute("value"), "", "a deliberate log out dropped the draft")

errs = b.console_errors()
t.is_(errs, [], "no console errors")
b.quit()
s.stop()
t.done()
