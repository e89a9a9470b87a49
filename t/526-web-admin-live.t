#!/usr/bin/python3
# 526-web-admin-live.t — issue 19 "live views update in place" on the last polled admin pages: Nodes (every 2 s) keeps a node's opened "all fields" open and the autoscaler section's elements across passes, and that section is not a live region read out at every pass; Hub health (every 5 s) keeps keyboard focus on its "All metrics" link and its tables. Real stack with modelhubd (local backend: one node); no console error, no HTTP error.
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

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "metrics.interval_ms": "500"})
b = Browser(s.url, t, name="526")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")


def js(script, e):
    """script on element e; None when e is gone (replaced by a redraw)."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        return b.driver.execute_script(script, e)
    except StaleElementReferenceException:
        return None


def same(e):
    return js("return arguments[0].isConnected", e)


# ---- Nodes: an opened node stays open, the autoscaler section is kept
b.route("#/admin/nodes")
b.wait(lambda: len(b.finds("#nodes tbody tr")) >= 1 and "No nodes" not in b.find("#nodes").text, "a node")
det = b.wait_for("#nodes tbody tr details")
det.find_element("css selector", "summary").click()
t.ok(b.driver.execute_script("return arguments[0].open", det), "a node's 'all fields' opened")
first = b.wait_for("#autoscaler > *")
time.sleep(9)   # four passes of the nodes table, two of the autoscaler
t.ok(same(det) and js("return arguments[0].open", det),
     "nodes page: the opened 'all fields' is the same element and still open after 4 polls")
t.ok(same(first), "  the autoscaler section's content is kept (updated in place)")
t.ok(b.find("#autoscaler").get_attribute("aria-live") in (None, "off"),
     "  the autoscaler section is not a live region (it would be read out at every pass)")

# ---- Hub health: focus on a link survives the 5 s polls
b.route("#/admin/health")
link = b.wait_for("#hub-metrics a[href='/metrics']")
table = b.wait_for("#hub-metrics table")
b.driver.execute_script("arguments[0].focus()", link)
time.sleep(11)  # two polls
t.ok(js("return document.activeElement === arguments[0] && arguments[0].isConnected", link),
     "hub health: keyboard focus stays on 'All metrics' across polls")
t.ok(same(table), "  its tables are kept (updated in place)")

t.is_(b.console_errors(), [], "no console errors, no HTTP error")
b.quit()
s.stop()
t.done()
