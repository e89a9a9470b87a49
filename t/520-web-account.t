#!/usr/bin/python3
# 520-web-account.t — account pages in headless Chromium: guest use (start, guest id shown, submit and list, resume in another browser, new id, become an account keeping the requests), the account page (change password ending other sessions, change email, sessions list and end one, delete my data, delete my account), forgot password without SMTP, reset through an admin-made link, and the admin users page (search, ?username= deep link with request counts, reset link, delete with typed confirmation).
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


def yes(b):
    """Answer every window.confirm with OK (the page asks before deleting)."""
    b.driver.execute_script("window.confirm = () => true")


def submit(b, smiles):
    b.route("#/models/eos3b5e")
    b.wait_for("#request-form")
    b.fill("#request-form textarea", smiles)
    b.click("#submit-request")
    b.wait_route("#/requests/")
    return b.hash().rsplit("/", 1)[1]


# ---- guest
b = Browser(s.url, t, name="520")
b.go("#/login")
t.is_(b.unlabelled(), [], "login page with the guest box: every control labelled")
b.click("#guest-start")
b.wait_route("#/account")
gid = b.wait_for("#guest-id").get_attribute("value")
t.like(gid, r"^[0-9a-f]{64}$", "guest id shown once after 'Use without an account'")
b.wait_text("#current-user", "Guest")
t.pass_("the user box says Guest")
t.is_(b.driver.execute_script("return document.cookie"), "", "the session cookie is HttpOnly (not readable)")
rid = submit(b, "CCO\nC\n")
t.like(rid, r"^\d+$", "a guest submits from the model page")
b.route("#/requests")
b.wait_for("#requests-list tr[data-id='%s']" % rid)
t.pass_("the guest's request is listed")
b.shot("guest-requests")

b2 = Browser(s.url, t, name="520b")
b2.go("#/login")
b2.click("#guest-box details summary")
b2.fill("#guest-resume-form [name=guest_id]", "00" * 32)
wrong = b2.allow_http(422, "POST", "/api/auth/guest/resume", "an unknown guest id")
b2.click("#guest-resume")
t.like(b2.wait(lambda: b2.field_error("#guest-resume-form", "guest_id"), "unknown id error"), r"not a live guest id",
       "a wrong guest id: error next to the field")
b2.end_allow(wrong)
b2.fill("#guest-resume-form [name=guest_id]", gid)
b2.click("#guest-resume")
b2.wait_for("#requests-list tr[data-id='%s']" % rid)
t.pass_("another browser continues as the guest with its id and sees the request")

b.route("#/account")
b.wait_for("#guest-new-id")
yes(b)
b.click("#guest-new-id")
gid2 = b.wait(lambda: (b.find("#guest-id").get_attribute("value") if b.exists("#guest-id") else None), "new id")
t.ok(gid2 != gid and len(gid2) == 64, "a new guest id replaces the old one")
b2.allow_http(401, "GET", "/api/requests/%s" % rid, "the guest id this browser used was replaced")
b2.route("#/requests/%s" % rid)
b2.wait_route("#/login")
t.pass_("the other browser, on the old id, is sent to log in")
b2.quit()

b.fill("#claim-form [name=username]", "guest_made")
b.fill("#claim-form [name=email]", "guest_made@example.com")
b.fill("#claim-form [name=password]", "guest-made-pass-1")
b.fill("#claim-form [name=password2]", "guest-made-pass-2")
b.click("#claim-form button[type=submit]")
t.like(b.wait(lambda: b.field_error("#claim-form", "password2"), "mismatch"), r"does not match", "claim form checks the repeat")
b.fill("#claim-form [name=password2]", "guest-made-pass-1")
b.click("#claim-form button[type=submit]")
b.wait_route("#/requests")
b.wait_text("#current-user", "guest_made")
b.wait_for("#requests-list tr[data-id='%s']" % rid)
t.pass_("the guest became an account and kept its request")
owner = s.sql("SELECT u.username FROM work_request w JOIN app_user u ON u.id = w.user_id WHERE w.id = $1", rid)
t.is_(owner, [("guest_made",)], "the request now belongs to the account")

# ---- account page
other = s.login("guest_made", "guest-made-pass-1")
b.route("#/account")
b.wait_for("#account-sessions tr[data-id]")
t.is_(len(b.finds("#account-sessions tr[data-id]")), 2, "two sessions listed (browser and the API login)")
t.is_(b.unlabelled(), [], "account page: every control labelled")
b.shot("account")
b.click("#account-sessions button")
b.wait(lambda: len(b.finds("#account-sessions tr[data-id]")) == 1, "session ended")
t.is_(s.api("GET", "/api/auth/session", token=other).status, 401, "ending a session from the page revokes it")

other = s.login("guest_made", "guest-made-pass-1")
wrong = b.allow_http(403, "POST", "/api/account/password", "a wrong current password")
b.fill("#password-form [name=current_password]", "wrong-password-x")
b.fill("#password-form [name=new_password]", "guest-made-pass-9")
b.fill("#password-form [name=new_password2]", "guest-made-pass-9")
b.click("#password-form button[type=submit]")
t.like(b.wait(lambda: b.field_error("#password-form", "current_password"), "wrong pw"), r"is wrong",
       "wrong current password shown next to the field")
b.end_allow(wrong)
b.fill("#password-form [name=current_password]", "guest-made-pass-1")
b.click("#password-form button[type=submit]")
b.wait_text("#messages", "Password changed")
t.is_(s.api("GET", "/api/auth/session", token=other).status, 401, "changing the password ended the other session")
b.route("#/requests")
b.wait_for("#requests-list")
t.ok(b.exists("#current-user"), "this browser stays logged in")

b.route("#/account")
b.fill("#email-form [name=email]", "new_mail@example.com")
b.fill("#email-form [name=current_password]", "guest-made-pass-9")
b.click("#email-form button[type=submit]")
b.wait_text("#messages", "Email changed")
t.is_(s.sql("SELECT email FROM app_user WHERE username = 'guest_made'"), [("new_mail@example.com",)], "email changed")

yes(b)
b.fill("#delete-data-form [name=current_password]", "guest-made-pass-9")
b.click("#delete-data-form button[type=submit]")
b.wait_text("#messages", "Deleted 1 requests")
t.is_(s.sql("SELECT count(*) FROM work_request")[0][0], "0", "delete my data: the request is gone")

# ---- forgot password (no SMTP here) and a reset through an admin's link
s.user("rita")
b3 = Browser(s.url, t, name="520c")
b3.go("#/login")
b3.click("#forgot-link")
b3.fill("#forgot-form [name=login]", "rita")
b3.click("#forgot-form button[type=submit]")
b3.wait_text("#forgot-result", "Ask an administrator")
t.pass_("without SMTP the page says to ask an administrator")

ba = Browser(s.url, t, name="520admin")
ba.go("#/login")
ba.fill("#login-form [name=username]", "t_admin")
ba.fill("#login-form [name=password]", s.admin_password)
ba.click("#login-submit")
ba.wait_for("#admin-nav")
rita = s.login("rita")
s.api("POST", "/api/requests", token=rita, json={"model_id": "eos3b5e", "inputs": ["CCO"]})
ba.route("#/admin/users?username=rita")
ba.wait_text("#user-request-counts", "1 in all: 1 queued")
t.pass_("?username= deep link opens the user with request counts")
ba.fill("#admin-users-search [name=q]", "RI")
ba.click("#admin-users-search button[type=submit]")
ba.wait_route("#/admin/users?q=RI")
ba.wait(lambda: [e.get_attribute("data-username") for e in ba.finds("#admin-users tr[data-id]")] == ["rita"],
        "search result")
t.pass_("prefix search (any case) lists only rita; the query is kept in the route")
t.is_(ba.unlabelled(), [], "admin users page: every control labelled")
ba.click("#admin-users button[data-details='rita']")
ba.click("#reset-link")
url = ba.wait_for("#reset-link-url").get_attribute("value")
t.like(url, r"^http://127\.0\.0\.1:\d+/#/reset-password\?token=[0-9a-f]{64}$", "a reset link shown to the admin")
ba.shot("admin-user-detail")

b3.driver.get(url)
b3.wait_js("return document.body.dataset.ready === '1'", "app started")
b3.fill("#reset-form [name=new_password]", "rita-new-password")
b3.fill("#reset-form [name=new_password2]", "rita-new-password")
b3.click("#reset-form button[type=submit]")
b3.wait_for("#reset-login")
t.is_(s.api("GET", "/api/auth/session", token=rita).status, 401, "the reset ended rita's sessions")
b3.click("#reset-login")
b3.fill("#login-form [name=username]", "rita")
b3.fill("#login-form [name=password]", "rita-new-password")
b3.click("#login-submit")
b3.wait_text("#current-user", "rita")
t.pass_("rita logs in with the new password")
b3.driver.get(url)
b3.wait_js("return document.body.dataset.ready === '1'", "app started")
b3.fill("#reset-form [name=new_password]", "rita-other-password")
b3.fill("#reset-form [name=new_password2]", "rita-other-password")
b3.allow_http(422, "POST", "/api/auth/password-reset/confirm", "a reset link used a second time")
b3.click("#reset-form button[type=submit]")
b3.wait_text("#reset-form .form-error", "already used")
t.pass_("the link works once")
b3.quit()

ba.fill("#delete-user-form [name=confirm]", "rit")
ba.click("#delete-user")
b.wait(lambda: "type rita exactly" in ba.find("#delete-user-form").text, "typed confirmation")
t.pass_("delete needs the username typed exactly")
ba.fill("#delete-user-form [name=confirm]", "rita")
ba.click("#delete-user")
ba.wait_text("#messages", "rita and their data deleted")
t.is_(s.sql("SELECT count(*) FROM app_user WHERE username = 'rita'")[0][0], "0", "rita deleted")
t.is_(s.sql("SELECT count(*) FROM work_request")[0][0], "0", "with her request")
ba.quit()

# ---- delete my account
b.route("#/account")
b.fill("#delete-account-form [name=current_password]", "guest-made-pass-9")
yes(b)
b.click("#delete-account-form button[type=submit]")
b.wait_text("#messages", "account and its data have been deleted")
t.ok(not b.exists("#current-user"), "logged out")
t.is_(s.sql("SELECT count(*) FROM app_user WHERE username = 'guest_made'")[0][0], "0", "account gone")
t.is_(b.console_errors(), [], "no console errors, no HTTP error but the deliberate ones "
      "(deleting the account does not call log out on the ended session: no 401)")
t.done()
