#!/usr/bin/python3
# 178-anon-guide-served.t — nginx serves docs/anonymous-requests.md at /docs/anonymous-requests.md as UTF-8 plain text, byte for byte, with the site's security headers; nothing else under /docs/ is served, and the installed layout (docs/ next to web/) is what the template expects.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP              # noqa: E402
from stack import Stack, SRCDIR  # noqa: E402

t = TAP()
s = Stack(hubd=False)
with open(os.path.join(SRCDIR, "docs", "anonymous-requests.md"), "rb") as f:
    doc = f.read()

r = s.api("GET", "/docs/anonymous-requests.md")
t.is_(r.status, 200, "GET /docs/anonymous-requests.md: 200")
t.like(r.headers.get("content-type", ""), r"^text/plain; charset=utf-8$", "served as UTF-8 plain text")
t.ok(r.body == doc, "the body is the document, byte for byte (%d bytes)" % len(doc))
t.like(r.headers.get("content-security-policy", ""), r"default-src 'self'", "with the site's CSP")
t.is_(r.headers.get("x-content-type-options"), "nosniff", "and nosniff (the browser keeps it text)")
t.like(r.headers.get("cache-control", ""), r"no-cache", "revalidated on every use (a new release shows at once)")

r = s.api("HEAD", "/docs/anonymous-requests.md")
t.is_(r.status, 200, "HEAD works too")

for path in ("/docs/api.md", "/docs/", "/docs/../README.md", "/docs/anonymous-requests.md/x"):
    r = s.api("GET", path)
    t.ok(r.status in (400, 404), "%s is not served (%d)" % (path, r.status))

with open(os.path.join(SRCDIR, "nginx", "local.mk")) as f:
    mk = f.read()
t.like(mk, r"dist_servedocs_DATA = docs/anonymous-requests\.md", "make install puts the guide in $(pkgdatadir)/docs")
with open(os.path.join(SRCDIR, "nginx", "modelhub.conf.in")) as f:
    conf = f.read()
t.like(conf, r"alias @WEB_ROOT@/\.\./docs/anonymous-requests\.md;",
       "the template reads it next to web/ (both in the tree and installed)")
s.stop()
t.done()
