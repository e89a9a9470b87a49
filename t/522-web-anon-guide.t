#!/usr/bin/python3
# 522-web-anon-guide.t — in headless Chromium, an anonymous visitor's model page links the command-line guide (docs/anonymous-requests.md) next to the curl recipe; the link opens the guide as text served by nginx, without console errors.
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
from stack import Stack, SRCDIR     # noqa: E402

s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
s.add_demo_models()
with open(os.path.join(SRCDIR, "docs", "anonymous-requests.md")) as f:
    first = f.readline().strip()

b = Browser(s.url, t, name="522")
b.go("#/models/eos3b5e")
link = b.wait_for("#anon-guide")
t.is_(link.get_attribute("href"), s.url.rstrip("/") + "/docs/anonymous-requests.md",
      "the model page links the guide")
b.click(".curl summary")
b.wait(lambda: link.is_displayed(), "guide link visible")
t.pass_("the link shows with the curl recipe")
t.like(link.text, r"command line", "the link says what it is")
b.shot("guide-link")
t.is_(b.console_errors(), [], "no console errors on the model page")
b.driver.get(link.get_attribute("href"))
body = b.wait(lambda: b.driver.find_element("css selector", "body").text, "guide text")
t.ok(body.startswith(first), "following the link shows the guide's text (%r)" % first)
t.like(body, r"/api/auth/anon", "with the token step")
t.is_(b.console_errors(), [], "the guide: no console error, no HTTP error (its /favicon.ico is the app's icon, not a 404)")
b.quit()
s.stop()
t.done()
