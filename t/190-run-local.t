#!/usr/bin/python3
# 190-run-local.t — scripts/run-local in a copy of the tree: a working site,
# the admin login and token it prints, its curl example run verbatim, a
# second run that keeps state, status, stop, and a busy port refused.
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

srcdir = os.path.abspath(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
sys.path.insert(0, os.path.join(srcdir, "t", "lib"))
from tap import TAP                                    # noqa: E402
from stack import free_port, descendants, _alive, _set_subreaper, diag  # noqa: E402

t = TAP()
builddir = os.path.abspath(os.environ.get("top_builddir", srcdir))
if not os.access(os.path.join(builddir, "modelhub-fcgi"), os.X_OK):
    builddir = os.path.join(srcdir, "build")

# A copy of what run-local needs, so var/ and the cluster are throwaway.
base = "/tmp" if os.geteuid() == 0 else None
top = tempfile.mkdtemp(prefix="modelhub-rl-", dir=base)
os.chmod(top, 0o755)
for d in ("scripts", "nginx", "web", "models", "sql"):
    shutil.copytree(os.path.join(srcdir, d), os.path.join(top, d),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "test-suite.log"))
shutil.copy(os.path.join(srcdir, "configure.ac"), top)
# make distcheck's sources are read-only; the copy must be removable.
for d, _dirs, files in os.walk(top):
    for n in [d] + [os.path.join(d, f) for f in files]:
        os.chmod(n, os.stat(n).st_mode | stat.S_IWUSR)
var = os.path.join(top, "var")
port = free_port()
url = "http://127.0.0.1:%d" % port
_set_subreaper()
env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
env.update({"MODELHUB_PORT": str(port), "MODELHUB_BUILD_DIR": builddir,
            "MODELHUB_SKIP_BUILD": "1"})


def run_local(*args, extra=None, timeout=180):
    e = dict(env)
    e.update(extra or {})
    return subprocess.run([os.path.join(top, "scripts", "run-local")] + list(args),
                          env=e, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, cwd="/")


def cleanup():
    run_local("stop", timeout=60)
    for p in descendants(os.getpid()):
        try:
            os.kill(p, 9)
        except OSError:
            pass
    if os.environ.get("MODELHUB_KEEP_TMP") != "1":
        shutil.rmtree(top, ignore_errors=True)


import atexit  # noqa: E402
atexit.register(cleanup)


def get(path, token=None, data=None, headers=None):
    req = urllib.request.Request(url + path, data=data, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def pid(name):
    try:
        with open(os.path.join(var, "run", name + ".pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ---- a password the API would reject stops the setup with the reason
r = run_local(extra={"MODELHUB_ADMIN_PASSWORD": "short"})
t.isnt(r.returncode, 0, "too short MODELHUB_ADMIN_PASSWORD: run-local fails")
t.like(r.stdout, r"create-admin failed", "... and says create-admin failed")
t.like(r.stdout, r"password .*rejected", "... with modelhubctl's reason")
t.ok(not os.path.exists(os.path.join(var, "admin-token")), "... and writes no token")

# ---- first run
r = run_local()
if not t.is_(r.returncode, 0, "run-local exits 0"):
    t.diag(r.stdout[-3000:])
    for log in ("fcgi.log", "hubd.log", "nginx-error.log", "migrate.log"):
        p = os.path.join(var, "log", log)
        if os.path.exists(p):
            t.diag("---- " + log)
            t.diag(open(p).read()[-1500:])
    t.done()
out = r.stdout
t.like(out, re.escape("modelhub is running: " + url), "prints the URL")
m = re.search(r"password\s+(\S+)\s+\(generated; shown only this once\)", out)
t.ok(m, "prints the generated admin password")
password = m.group(1) if m else ""
tokfile = os.path.join(var, "admin-token")
t.ok(os.path.exists(tokfile), "var/admin-token written")
mode = stat.S_IMODE(os.stat(tokfile).st_mode) if os.path.exists(tokfile) else None
t.is_(mode, 0o600, "var/admin-token is mode 600")
admin_token = open(tokfile).read().strip() if os.path.exists(tokfile) else ""

st, body = get("/api/health")
t.is_(st, 200, "the site answers /api/health")
st, body = get("/")
t.is_(st, 200, "the site serves the pages")
st, body = get("/api/admin/requests", token=admin_token)
t.is_(st, 200, "the admin token reaches admin routes")
st, body = get("/api/auth/login", data=json.dumps({"username": "admin", "password": password})
               .encode(), headers={"Content-Type": "application/json"})
t.is_(st, 200, "the printed admin password logs in")
st, body = get("/api/models")
ids = [m["id"] for m in json.loads(body).get("items", [])] if st == 200 else []
t.ok("eos3b5e" in ids, "demo models registered (%s)" % ",".join(ids))

# ---- the printed curl example, verbatim
lines = out.splitlines()
try:
    i = next(n for n, x in enumerate(lines) if x.startswith("Try it with curl"))
    example = [x.strip() for x in lines[i + 1:i + 6]]
except StopIteration:
    example = []
t.ok(len(example) == 5 and example[0].startswith("TOKEN="), "curl example printed")
script = "\n".join(example[:3]) + '\necho\necho "TOKEN=$TOKEN"\n'
r = subprocess.run(["sh", "-c", script], text=True, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=30)
o = r.stdout.strip().splitlines()
sub = json.loads(o[0]) if o and o[0].startswith("{") else {}
anon = o[-1][len("TOKEN="):] if o and o[-1].startswith("TOKEN=") else ""
t.ok(sub.get("id") and sub.get("status") in ("QUEUED", "RUNNING", "COMPLETED"),
     "example submits a request (%s)" % (sub.get("id") or o[:1],))
status = None
deadline = time.time() + 120
while sub.get("id") and time.time() < deadline:
    st, body = get("/api/requests/%s" % sub["id"], token=anon)
    status = json.loads(body).get("status") if st == 200 else None
    if status in ("COMPLETED", "FAILED", "CANCELLED"):
        break
    time.sleep(1)
t.is_(status, "COMPLETED", "the example's request completes (modelhubd + demo model)")
if len(example) == 5 and sub.get("id"):
    r = subprocess.run(["sh", "-c", "TOKEN=%s; %s" % (anon, example[4].replace(
        "<id>", str(sub["id"])))], text=True, stdout=subprocess.PIPE, timeout=30)
    t.like(r.stdout, r"46\.0", "the example's CSV download has CCO's molecular weight")
else:
    t.fail("the example's CSV download")

# ---- second run: keeps the database, token and admin; restarts the daemons
old = {n: pid(n) for n in ("modelhub-fcgi", "modelhubd")}
r = run_local()
t.is_(r.returncode, 0, "second run exits 0")
t.like(r.stdout, r"admin account exists", "second run keeps the admin")
t.like(r.stdout, r"PostgreSQL already running", "second run keeps PostgreSQL")
t.ok("shown only this once" not in r.stdout, "no new password on the second run")
t.is_(open(tokfile).read().strip(), admin_token, "token file unchanged")
st, _ = get("/api/admin/requests", token=admin_token)
t.is_(st, 200, "old admin token still valid")
new = {n: pid(n) for n in ("modelhub-fcgi", "modelhubd")}
t.ok(all(new[n] and new[n] != old[n] for n in new), "daemons restarted (%s -> %s)" % (old, new))
t.ok(old["modelhub-fcgi"] is None or not _alive(old["modelhub-fcgi"]), "old modelhub-fcgi gone")
if sub.get("id"):
    st, body = get("/api/requests/%s" % sub["id"], token=anon)
    t.is_(st, 200, "data survives the second run")
r = run_local("status")
t.is_(r.returncode, 0, "status: exit 0 when everything runs")

# ---- token file lost: a new token for the existing admin
os.unlink(tokfile)
r = run_local()
t.is_(r.returncode, 0, "run without var/admin-token exits 0")
t.like(r.stdout, r"exists already; writing a new token", "... keeps the account")
tok2 = open(tokfile).read().strip() if os.path.exists(tokfile) else ""
t.ok(tok2 and tok2 != admin_token, "... writes a new token")
st, _ = get("/api/admin/requests", token=tok2)
t.is_(st, 200, "... which works")

# ---- a busy port is refused before anything starts
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen(1)
r = run_local(extra={"MODELHUB_PORT": str(busy.getsockname()[1])})
t.ok(r.returncode != 0, "busy port: run-local fails")
t.like(r.stdout, r"something else listens", "busy port: says why")
busy.close()
st, _ = get("/api/health")
t.is_(st, 200, "busy port: the running site was left alone")

# ---- stop
pids = [pid("modelhub-fcgi"), pid("modelhubd")]
r = run_local("stop")
t.is_(r.returncode, 0, "stop exits 0")
time.sleep(0.5)
t.ok(not any(p and _alive(p) for p in pids), "stop ends modelhub-fcgi and modelhubd")
try:
    get("/api/health")
    t.fail("nothing listens after stop")
except OSError:
    t.pass_("nothing listens after stop")
r = run_local("status")
t.ok(r.returncode != 0, "status: non-zero when stopped")
r = run_local("stop")
t.is_(r.returncode, 0, "stop when nothing runs: exit 0")
r = run_local("bogus")
t.isnt(r.returncode, 0, "unknown command: non-zero")
t.like(r.stdout, r"usage: scripts/run-local", "unknown command: usage")
if t.failed:
    diag(r.stdout)
t.done()
