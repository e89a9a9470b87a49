#!/usr/bin/python3
# 380-image.t — scripts/build-image writes an OCI archive (user, entrypoint, port checked with skopeo) whose file system, unpacked with umoci and run read-only as its non-root user in a pod-like mount namespace, migrates the test Postgres and serves health, signup and a demo request through the simulator.
"""Run by `make check-image` (scripts/test runs it once; it is not in
`make check` because the first build of the base root file system downloads
packages: about 1-4 min, later runs reuse build/image/cache in seconds)."""

import json
import os
import shutil
import subprocess
import sys
import time

TOP = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("top_builddir") or os.path.join(TOP, "build")
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "t", "kube"))
from tap import TAP  # noqa: E402

t = TAP()
if os.geteuid() != 0:
    t.skip_all("needs root (mmdebstrap, chroot, mount namespaces)")
missing = [x for x in ("mmdebstrap", "umoci", "skopeo", "unshare", "nsenter") if not shutil.which(x)]
if missing:
    t.skip_all("missing %s: scripts/install-deps build" % " ".join(missing))

from kubestack import KubeSim, base_config, kube_config, records, submit, wait_done  # noqa: E402
from podroot import UID, ImageStack, image_rootfs  # noqa: E402

out = os.path.join(os.path.abspath(BUILD), "image")
tag = subprocess.run([os.path.join(TOP, "scripts", "build-image"), "--print-tag"],
                     stdout=subprocess.PIPE, text=True).stdout.strip()
with open(os.path.join(TOP, "configure.ac")) as f:
    version = f.read().split("AC_INIT([modelhub], [", 1)[1].split("]", 1)[0]
t.is_(tag, "modelhub:" + version, "build-image tags modelhub:<configure version>")

t0 = time.time()
r = subprocess.run([os.path.join(TOP, "scripts", "build-image"), "--out", out],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
t.is_(r.returncode, 0, "scripts/build-image succeeds (%.0f s)" % (time.time() - t0))
if r.returncode != 0:
    t.diag(r.stdout[-3000:])
    t.bail_out("no image")
t.diag(r.stdout.strip().splitlines()[-1])
archive = os.path.join(out, "modelhub-%s.oci.tar" % version)
t.ok(os.path.isfile(archive), "OCI archive %s" % os.path.relpath(archive, BUILD))

# ---- the archive's config, as a registry client sees it
r = subprocess.run(["skopeo", "inspect", "--config", "oci-archive:%s:%s" % (archive, tag)],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
t.is_(r.returncode, 0, "skopeo inspect --config oci-archive:...:%s" % tag)
conf = json.loads(r.stdout or "{}").get("config", {})
t.is_(conf.get("User"), "%d:%d" % (UID, UID), "runs as user 10001:10001 (not root)")
t.is_(conf.get("Entrypoint"), ["/usr/bin/modelhub-entrypoint"], "entrypoint chooses the program")
t.is_(sorted(conf.get("ExposedPorts", {})), ["8080/tcp"], "exposes 8080/tcp (nginx)")
t.is_(sorted(conf.get("Volumes", {})), ["/run/modelhub", "/run/nginx", "/tmp", "/var/lib/modelhub"],
      "writable paths are volumes")
r = subprocess.run(["skopeo", "inspect", "oci-archive:%s" % archive], stdout=subprocess.PIPE, text=True)
t.is_(len(json.loads(r.stdout or "{}").get("Layers", [])), 1, "one layer, no base image")

work, root, runtime = image_rootfs(archive, tag, out)
try:
    t.is_(runtime.get("process", {}).get("user", {}).get("uid"), UID, "umoci runtime config: uid 10001")
    for p in ("usr/bin/modelhub-fcgi", "usr/bin/modelhubd", "usr/bin/modelhubctl", "usr/sbin/nginx",
              "usr/bin/cgi-fcgi", "usr/share/modelhub/sql/001_init.sql", "usr/share/modelhub/web/index.html",
              "usr/share/modelhub/nginx/modelhub.conf.in"):
        t.ok(os.path.exists(os.path.join(root, p)), "image holds /%s" % p)
    bad = [p for p in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/cpp", "usr/bin/chromium", "usr/bin/python3",
                       "usr/include/stdio.h", "var/lib/apt/lists/lock")
           if os.path.lexists(os.path.join(root, p))]
    t.is_(bad, [], "no compiler, headers, browser, Python or apt lists")
    st = os.stat(os.path.join(root, "var/lib/modelhub"))
    t.is_((st.st_uid, os.stat(os.path.join(root, "usr/bin/modelhubd")).st_uid), (UID, 0),
          "volumes owned by the image user, programs by root")
    size = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(root) for f in fs)
    t.diag("unpacked root file system: %.0f MiB, archive %.0f MiB"
           % (size / 1048576.0, os.path.getsize(archive) / 1048576.0))
    t.ok(size < 200 * 1048576, "unpacked image under 200 MiB")

    # ---- a stack whose programs all come from the image
    sim = KubeSim(base_config(), tls=True).start()
    s = ImageStack(root, config=dict(kube_config(sim), **{"hub.runners": "1"}))
    t.pass_("modelhubctl migrate from the image against the test Postgres")
    n = s.sql("SELECT count(*) FROM schema_migration")[0][0]
    shipped = len([f for f in os.listdir(os.path.join(TOP, "sql")) if f.endswith(".sql")])
    t.is_(int(n), shipped, "  applied every migration the image ships (%s)" % n)
    for prog in ("modelhub-fcgi", "modelhubd", "modelhubctl"):
        r = s.run_in(prog, "--version")
        t.ok(r.returncode == 0 and version in r.stdout + r.stderr, "%s --version in the image" % prog)
    r = s.run_in("sh", "-c", "id -u; touch /usr/x 2>&1; touch /var/lib/modelhub/x && echo writable")
    t.like(r.stdout, r"^%d\n" % UID, "commands run as uid %d" % UID)
    t.like(r.stdout, r"Read-only file system", "the root file system is read-only")
    t.like(r.stdout, r"writable", "  and /var/lib/modelhub (a volume) is writable")

    ca = os.path.join(s.tmp, "kube-ca.crt")
    shutil.copy(sim.ca, ca)
    os.chmod(ca, 0o644)
    s.set_config(kube__ca_file=ca)
    s.add_demo_models()
    h = s.api("GET", "/api/health")
    t.ok(h.status == 200 and (h.json or {}).get("version") == version, "GET /api/health via the image's nginx")
    probe = s.run_in("sh", "-c", "REQUEST_METHOD=GET SCRIPT_NAME=/api/ping REQUEST_URI=/api/ping "
                     "cgi-fcgi -bind -connect /run/modelhub/fcgi.sock")
    t.ok(probe.returncode == 0 and '"ok"' in probe.stdout, "FastCGI liveness probe (cgi-fcgi /api/ping)")
    page = s.api("GET", "/")
    t.ok(page.status == 200 and b"<html" in page.body.lower(), "web UI served from /usr/share/modelhub/web")
    tok = s.user("imguser")
    t.ok(tok, "signup and login")
    s.start_hubd()
    rid = submit(s, tok, "eos3b5e", ["CCO"])
    st = wait_done(s, rid, 90)
    t.is_(st and st[0], "COMPLETED", "a demo request completes (modelhubd from the image, pod on the simulator)")
    rec = records(s, tok, rid)
    t.ok(rec and abs(float(rec[0]["mol_weight"]) - 46.07) < 0.01, "  with the right result")
    r = s.ctl("alive")
    t.ok(r.returncode == 0 and "alive" in r.stdout, "modelhubd liveness probe (modelhubctl alive) in the image")
    s.stop()
    sim.stop()
finally:
    shutil.rmtree(work, ignore_errors=True)
t.done()
