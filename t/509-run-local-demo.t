#!/usr/bin/python3
# 509-run-local-demo.t — issue 19 defect 7: scripts/run-local registers the demo models only when missing and says so: an admin's edit of a demo model survives `run-local restart` (it was re-registered, silently reverting the edit).
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



r = run_local()
if not t.is_(r.returncode, 0, "first run exits 0"):
    t.diag(r.stdout[-3000:])
    t.done()
t.like(r.stdout, r"demo models registered: .*eos3b5e", "first run registers the demo models and names them")
tok = open(os.path.join(var, "admin-token")).read().strip()
st, body = get("/api/models/eos3b5e", token=tok)
version = json.loads(body)["version"]
req = urllib.request.Request(url + "/api/models/eos3b5e", method="PATCH", data=json.dumps({
    "version": version, "description": "Edited by the admin.", "max_instances": 1}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + tok})
with urllib.request.urlopen(req, timeout=10) as resp:
    t.is_(resp.status, 200, "admin edits the demo model eos3b5e")
r2 = run_local("restart")
t.is_(r2.returncode, 0, "restart exits 0")
t.like(r2.stdout, r"demo models already registered, kept as they are: .*eos3b5e", "it says the demo models are kept")
t.ok("demo models registered:" not in r2.stdout, "and registers none again")
st, body = get("/api/models/eos3b5e", token=tok)
m = json.loads(body)
t.is_((m["description"], m["max_instances"]), ("Edited by the admin.", 1), "the admin's edit survived the restart")
t.done()
