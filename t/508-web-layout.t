#!/usr/bin/python3
# 508-web-layout.t — issue 19 defects 8 and 9: text contrast >= 4.5:1 (3:1 large) on the main pages and the instance legend, the header focus ring >= 3:1, the header "Sign up" button readable on hover; under 600 px the menu folds behind a Menu button (header short, aria-expanded, closes on navigation); messages appear in a fixed toast area inside the viewport however far the page is scrolled; the loader shows while a page's module loads (route transition). Screenshots at 1280 and 390 px.
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
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

s = Stack(config={"auth.pwhash_fast": "1"})
s.add_demo_models()
b = Browser(s.url, t, name="508")

# ---- anonymous pages: contrast, hover, focus ring
b.go("#/models")
b.wait_text("#models-list", "eos3b5e")
t.is_(b.low_contrast(), [], "models page: no text below 4.5:1")
ActionChains(b.driver).move_to_element(b.find("#signup-link")).perform()
t.is_(b.low_contrast(".userbox"), [], "the header Sign up button is readable on hover")
b.go("#/login")
b.wait_for("#login-form")
t.is_(b.low_contrast(), [], "login page: no text below 4.5:1")
b.driver.execute_script("document.getElementById('skip-link').focus()")
ActionChains(b.driver).send_keys(Keys.TAB).perform()   # keyboard focus: :focus-visible
t.ok(b.driver.execute_script("return document.activeElement.classList.contains('brand')"), "Tab reaches the header link")
ring = b.focus_ring_contrast(".topbar .brand")
t.ok(ring is not None and ring >= 3, "header focus ring at least 3:1 (%s)" % ring)

# ---- admin pages
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
b.route("#/admin/instances")
b.wait_for(".legend")
t.is_(b.low_contrast(), [], "instances page with the band legend: no text below 4.5:1")
b.shots("admin-instances")

# ---- the loader during a route transition (module not loaded yet)
b.driver.execute_cdp_cmd("Network.enable", {})
b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
    "offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
b.route("#/admin/health")
b.wait_js("return document.body.dataset.routeLoading === '1' && !document.getElementById('loader').hidden",
          "loader while the page module loads", timeout=5)
t.pass_("route transition: the loader shows while the page's module loads")
b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
    "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
b.wait_for("#hub-health")

# ---- messages in view on a long page
b.route("#/admin/models/eos3b5e")
b.wait_for("form")
b.driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
b.driver.execute_async_script("""const d = arguments[arguments.length - 1];
import('/ui.js').then((m) => { m.flash('Model saved.', 'success'); d(1); });""")
rect = b.driver.execute_script("""const r = document.querySelector('#messages .message').getBoundingClientRect();
return [r.top, r.bottom, innerHeight, scrollY];""")
t.ok(rect[3] > 0 and rect[0] >= 0 and rect[1] <= rect[2], "scrolled %d px down: the message is inside the viewport %s" % (rect[3], rect[:3]))

# ---- a burst of messages does not pile up over the page's controls
shown = b.driver.execute_async_script("""const d = arguments[arguments.length - 1];
import('/ui.js').then((m) => {
  m.clearFlash();
  m.flash('Something failed.', 'error');
  for (let i = 1; i <= 5; i++) m.flash('Saved ' + i + '.', 'success');
  d([...document.querySelectorAll('#messages .message')].map((e) => e.firstChild.textContent));
});""")
t.is_(shown, ["Something failed.", "Saved 4.", "Saved 5."],
      "six messages at once: three shown, the newest, the error kept")
b.driver.execute_async_script("""const d = arguments[arguments.length - 1];
import('/ui.js').then((m) => { m.clearFlash(); d(1); });""")

# ---- under 600 px: the menu folds
b.route("#/models")
b.wait_text("#models-list", "eos3b5e")
b.driver.set_window_size(390, 844)
b.wait(lambda: b.find("#menu-toggle").is_displayed(), "Menu button at 390 px")
h = b.driver.execute_script("return document.querySelector('.topbar').getBoundingClientRect().height")
t.ok(h <= 120, "header at 390 px is %d px high (was 230)" % h)
t.ok(not b.find("#admin-nav").is_displayed(), "the menu is folded")
b.shot("menu-folded-390")
b.click("#menu-toggle")
t.is_(b.find("#menu-toggle").get_attribute("aria-expanded"), "true", "Menu button: aria-expanded true")
b.wait_for("#admin-nav a[href='#/admin/requests']")
b.shot("menu-open-390")
b.click("#admin-nav a[href='#/admin/requests']")
b.wait_route("#/admin/requests")
t.is_(b.find("#menu-toggle").get_attribute("aria-expanded"), "false", "choosing a page folds the menu again")
t.ok(not b.find("#admin-nav").is_displayed(), "and hides it")
b.driver.set_window_size(1280, 900)
t.ok(not b.find("#menu-toggle").is_displayed() and b.find("#admin-nav").is_displayed(),
     "at 1280 px no Menu button, the menu shows")
b.shots("admin-requests")

errs = b.console_errors()
t.is_(errs, [], "no console errors")
b.quit()
s.stop()
t.done()
