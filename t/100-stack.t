#!/usr/bin/python3
# 100-stack.t — harness smoke test: the real stack (Postgres, modelhub-fcgi,
# nginx from nginx/modelhub.conf.in) starts; health, security headers, gzip,
# static caching, JSON errors from nginx and the API; a non-default schema;
# stop() leaves nothing behind.
import gzip
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack, StackError, _alive, _cmdline, descendants   # noqa: E402

t = TAP()
srcdir = os.environ.get("top_srcdir",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
with open(os.path.join(srcdir, "configure.ac")) as f:
    version = re.search(r"AC_INIT\(\[modelhub\], \[([^\]]+)\]", f.read()).group(1)

# ---- release: every program reports the configure.ac version
for prog in ("modelhub-fcgi", "modelhubd", "modelhubctl"):
    builddir = os.environ.get("top_builddir", srcdir)
    r = subprocess.run([os.path.join(builddir, prog), "--version"], text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t.is_((r.returncode, r.stdout.strip()), (0, "%s %s" % (prog, version)),
          "%s --version" % prog)

MAX_BODY = 65536
s = Stack(config={"fcgi.max_body": str(MAX_BODY)})

# ---- health through nginx
r = s.api("GET", "/api/health")
t.status(r, 200, "GET /api/health answers 200 through nginx")
t.is_(r.json and r.json.get("status"), "ok", "health status ok")
t.is_(r.json and r.json.get("version"), version, "health reports the configure.ac version")
t.like(r.headers.get("content-type"), r"^application/json", "health is JSON")
t.ok(r.headers.get("x-request-id"), "API response carries X-Request-Id")

# ---- security headers, on pages and on API answers
csp_re = r"default-src 'self'.*frame-ancestors 'none'"
for path in ("/", "/api/health", "/api/no-such-route"):
    r = s.api("GET", path)
    t.like(r.headers.get("content-security-policy"), csp_re, "%s: CSP header" % path)
    t.is_(r.headers.get("x-content-type-options"), "nosniff", "%s: nosniff" % path)
    t.ok(r.headers.get("referrer-policy"), "%s: Referrer-Policy" % path)
    t.is_(r.headers.get("x-content-type-options", "").count("nosniff"), 1,
          "%s: header not duplicated" % path)
    t.is_(r.headers.get("server"), "nginx", "%s: no nginx version disclosed" % path)

# ---- static files and caching
r = s.api("GET", "/")
t.status(r, 200, "GET / serves index.html")
t.like(r.text, r"(?i)<!doctype html>", "index.html is an HTML page")
t.like(r.headers.get("cache-control"), r"no-cache", "index.html: Cache-Control no-cache")
r = s.api("GET", "/index.html")
t.like(r.headers.get("cache-control"), r"no-cache", "/index.html: Cache-Control no-cache")
# Code is revalidated on every use (no content hashes in file names);
# images are cached. Any file of web/ will do (the pages change, the rule
# does not).
webfiles = sorted(os.listdir(os.path.join(srcdir, "web")))
js = [f for f in webfiles if f.endswith(".js")][0]
r = s.api("GET", "/" + js)
t.status(r, 200, "GET /%s" % js)
t.like(r.headers.get("content-type"), r"^text/javascript", "js served as text/javascript")
t.like(r.headers.get("cache-control"), r"no-cache", "js: Cache-Control no-cache")
etag = r.headers.get("etag")
t.ok(etag, "js: ETag for revalidation")
r = s.api("GET", "/" + js, headers={"If-None-Match": etag or "x"})
t.status(r, 304, "js: revalidation answers 304 without a body")
img = [f for f in webfiles if f.endswith((".svg", ".png", ".ico"))]
if img:
    r = s.api("GET", "/" + img[0])
    t.like(r.headers.get("cache-control"), r"max-age=604800", "%s: cached a week" % img[0])
else:
    t.skip("no image in web/")
r = s.api("GET", "/no-such-page.html")
t.status(r, 404, "missing static file: 404")

# ---- gzip
r = s.api("GET", "/", headers={"Accept-Encoding": "gzip"})
t.is_(r.headers.get("content-encoding"), "gzip", "index.html gzipped on request")
t.like(r.headers.get("vary"), r"Accept-Encoding", "Vary: Accept-Encoding")
try:
    t.like(gzip.decompress(r.body).decode(), r"<html", "gzip body decodes to the page")
except OSError as e:
    t.fail("gzip body decodes: %r" % e)
r = s.api("GET", "/", headers={"Accept-Encoding": "identity"})
t.ok(r.headers.get("content-encoding") is None, "no gzip without Accept-Encoding")
# JSON from the API: the demo catalogue is well above gzip_min_length.
s.add_demo_models()
r = s.api("GET", "/api/models", token=s.admin_token)
t.status(r, 200, "GET /api/models as admin")
plain = r.body
t.ok(len(plain) >= 512, "catalogue JSON is %d bytes (>= gzip_min_length)" % len(plain))
r = s.api("GET", "/api/models", token=s.admin_token, headers={"Accept-Encoding": "gzip"})
t.is_(r.headers.get("content-encoding"), "gzip", "API JSON gzipped on request")
try:
    t.is_(gzip.decompress(r.body), plain, "gzipped JSON decodes to the same body")
except OSError as e:
    t.fail("gzipped JSON decodes: %r" % e)
r = s.api("GET", "/api/health", headers={"Accept-Encoding": "gzip"})
t.ok(r.headers.get("content-encoding") is None, "small JSON (< gzip_min_length) not gzipped")

# ---- unknown API route: JSON 404 from the API, through nginx
r = s.api("GET", "/api/no-such-route")
t.status(r, 404, "unknown /api route: 404")
t.ok(r.json and isinstance(r.json.get("error"), dict) and r.json["error"].get("code"),
     "unknown route: JSON error with a code")

# ---- body limits: the API's own 413 and nginx's, both JSON
r = s.api("POST", "/api/auth/signup", data=b"x" * (MAX_BODY + 10),
          headers={"Content-Type": "application/json"})
t.status(r, 413, "body over fcgi.max_body: 413")
t.ok(r.json and r.json.get("error", {}).get("code"), "API 413 is a JSON error")
r = s.api("POST", "/api/auth/signup", data=b"x" * (MAX_BODY + 2 * 1024 * 1024),
          headers={"Content-Type": "application/json"})
t.status(r, 413, "body over nginx client_max_body_size: 413")
t.is_(r.json and r.json.get("error", {}).get("code"), "body_too_large",
      "nginx 413 is a JSON error too")

# ---- API server down: nginx answers JSON, the harness restarts it
s.stop_fcgi()
r = s.api("GET", "/api/health")
t.status(r, 502, "modelhub-fcgi down: 502")
t.is_(r.json and r.json.get("error", {}).get("code"), "unavailable", "502 is a JSON error")
s.start_fcgi()
try:
    s.wait_health()
    t.pass_("modelhub-fcgi restarted, health answers again")
except StackError as e:
    t.fail("modelhub-fcgi restarted: %s" % e)

# ---- harness helpers
rows = s.sql("SELECT $1::int + 1, $2::text IS NULL", 41, None)
t.is_(rows, [("42", "t")], "s.sql with parameters and NULL")
t.is_(s.sql("SELECT current_schema()"), [("modelhub",)], "s.sql search_path = db.schema")
fcgi_pid = s.pid_of("fcgi")
t.ok(fcgi_pid and _alive(fcgi_pid), "pid_of(fcgi)")
tok = s.anon()
t.ok(len(tok) >= 32, "s.anon() gives a token")
tok = s.user("harness_user")
r = s.api("GET", "/api/auth/session", token=tok)
t.status(r, 200, "s.user() token is a valid session")
r = s.api("GET", "/api/models", token=s.admin_token)
t.status(r, 200, "s.admin_token works")
r = s.ctl("list-models")
t.is_(r.returncode, 0, "s.ctl(list-models) runs with the stack's config")
pg_before = s.pid_of("postgres")
s.restart_postgres()
t.isnt(s.pid_of("postgres"), pg_before, "restart_postgres() gives a new postmaster")
t.is_(s.sql("SELECT 1"), [("1",)], "s.sql after a Postgres restart")

# ---- a second stack: non-default schema, no nginx (direct FastCGI)
s2 = Stack(nginx=False, config={"db.schema": "mh_other"})
r = s2.api("GET", "/api/health")
t.status(r, 200, "direct FastCGI health with schema mh_other")
n = s2.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'mh_other'")
t.ok(int(n[0][0]) > 0, "migrations created tables in mh_other")
n = s2.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'modelhub'")
t.is_(n[0][0], "0", "nothing in the default schema")
# An orphan of the stack (as a model server left by a killed modelhubd):
# re-parented to us, recognised by the stack's config in its environment.
subprocess.run(["sh", "-c", "sleep 300 & echo $! > \"$1\"", "sh",
                os.path.join(s2.tmp, "orphan.pid")], env=s2.env(), check=True)
with open(os.path.join(s2.tmp, "orphan.pid")) as f:
    orphan = int(f.read())
t.ok(_alive(orphan), "orphan of the stack is running")
pids = [s2.pid_of("fcgi"), s2.pid_of("postgres"), orphan]
tmp2 = s2.tmp
s2.stop()
t.ok(not any(p and _alive(p) for p in pids), "stop() ends fcgi, postgres and orphans")
t.ok(not os.path.exists(tmp2) or os.environ.get("MODELHUB_KEEP_TMP") == "1",
     "stop() removes the temp dir")
t.ok(s.api("GET", "/api/health").status == 200, "first stack unaffected by the second's stop")

# ---- a crashed worker is noticed even though the master replaces it
s3 = Stack(nginx=False)
t.is_(s3.crash_lines(), [], "no crash lines in a fresh stack")
victim = [p for p in descendants(s3.pid_of("fcgi")) if _alive(p)][0]
os.kill(victim, signal.SIGSEGV)
deadline = time.time() + 10
while time.time() < deadline and not s3.crash_lines():
    time.sleep(0.1)
t.ok(s3.crash_lines(), "SIGSEGV of a worker shows in crash_lines()")
t.status(s3.api("GET", "/api/health"), 200, "the master replaced the worker")
s3.expect_crashes = True
t.is_(s3.crash_lines(), [], "expect_crashes silences it (tests that crash on purpose)")
s3.stop()

# ---- a stack that cannot start fails loudly and leaves nothing behind
try:
    Stack(nginx=False, config={"fcgi.socket": "/nonexistent-dir/fcgi.sock"})
    t.fail("unstartable stack raises StackError")
    bad = None
except StackError as e:
    t.like(str(e), r"modelhub-fcgi", "unstartable stack raises StackError naming the daemon")
    bad = e
t.ok(bad is not None and not os.path.exists(bad.stack_tmp),
     "failed start removed its temp dir at once")
left = [p for p in descendants(os.getpid()) if _alive(p) and bad is not None
        and bad.stack_tmp in _cmdline(p)]
t.is_(left, [], "failed start left no process")

s.stop()
t.done()
