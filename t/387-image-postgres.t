#!/usr/bin/python3
# 387-image-postgres.t — scripts/build-image --postgres writes the modelhub-postgres OCI archive (user 999:999, entrypoint, port 5432, volumes: checked with skopeo) whose file system, unpacked with umoci, runs as the local-postgres StatefulSet runs it (kubectl kustomize: its user, environment, volume mounts, read-only root, probes): a first start without a password is refused, a first start initialises the data directory, logins are scram-sha-256 over TCP (a wrong password refused), modelhubctl migrate applies every migration, the StatefulSet's pg_isready probes pass, and the data survives a restart.
"""Run by `make check-image` with t/380 (the first build of the base root
file system downloads packages; later runs reuse build/image/cache)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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
missing = [x for x in ("mmdebstrap", "umoci", "skopeo", "unshare", "nsenter", "psql") if not shutil.which(x)]
if missing:
    t.skip_all("missing %s: scripts/install-deps build" % " ".join(missing))

import yaml  # noqa: E402
from podroot import image_rootfs  # noqa: E402
from simtest import KUBECTL  # noqa: E402
from stack import free_port  # noqa: E402

UID = 999
PW = "s3cret-for-387"
out = os.path.join(os.path.abspath(BUILD), "image")
with open(os.path.join(TOP, "configure.ac")) as f:
    version = f.read().split("AC_INIT([modelhub], [", 1)[1].split("]", 1)[0]
tag = subprocess.run([os.path.join(TOP, "scripts", "build-image"), "--postgres", "--print-tag"],
                     stdout=subprocess.PIPE, text=True).stdout.strip()
t.is_(tag, "modelhub-postgres:" + version, "build-image --postgres tags modelhub-postgres:<configure version>")

# ---- the StatefulSet as kustomize renders it
r = subprocess.run([KUBECTL, "kustomize", os.path.join(TOP, "deploy", "k8s", "overlays", "local-postgres")],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
docs = [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []
sts = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "modelhub-postgres"]
t.ok(sts, "local-postgres renders a modelhub-postgres StatefulSet")
if not sts:
    t.bail_out("no StatefulSet")
pod = sts[0]["spec"]["template"]["spec"]
ctr = pod["containers"][0]
t.is_(ctr["image"].rsplit("/", 1)[-1], tag, "  its image is what build-image --postgres tags")
t.is_((pod["securityContext"].get("runAsUser"), pod["securityContext"].get("runAsGroup")), (UID, UID),
      "  runs as 999:999")
t.ok(ctr["securityContext"].get("readOnlyRootFilesystem"), "  read-only root file system")
mounts = sorted(m["mountPath"] for m in ctr["volumeMounts"])
menv = {e["name"]: e.get("value") for e in ctr["env"]}
t.is_(sorted(menv), ["PGDATA", "POSTGRES_DB", "POSTGRES_PASSWORD", "POSTGRES_USER"], "  environment of the entry point")

# ---- build and the archive's config
t0 = time.time()
r = subprocess.run([os.path.join(TOP, "scripts", "build-image"), "--postgres", "--out", out],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
t.is_(r.returncode, 0, "scripts/build-image --postgres succeeds (%.0f s)" % (time.time() - t0))
if r.returncode != 0:
    t.diag(r.stdout[-3000:])
    t.bail_out("no image")
t.diag(r.stdout.strip().splitlines()[-1])
archive = os.path.join(out, "modelhub-postgres-%s.oci.tar" % version)
t.ok(os.path.isfile(archive), "OCI archive %s" % os.path.relpath(archive, BUILD))
r = subprocess.run(["skopeo", "inspect", "--config", "oci-archive:%s:%s" % (archive, tag)],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
t.is_(r.returncode, 0, "skopeo inspect --config oci-archive:...:%s" % tag)
conf = json.loads(r.stdout or "{}").get("config", {})
t.is_(conf.get("User"), "%d:%d" % (UID, UID), "runs as user 999:999 (postgres, not root)")
t.is_(conf.get("Entrypoint"), ["/usr/bin/modelhub-postgres-entrypoint"], "entrypoint initialises and runs Postgres")
t.is_(sorted(conf.get("ExposedPorts", {})), ["5432/tcp"], "exposes 5432/tcp")
t.is_(sorted(conf.get("Volumes", {})), mounts, "its volumes are the StatefulSet's mounts (%s)" % " ".join(mounts))
ienv = dict(e.split("=", 1) for e in conf.get("Env") or [] if "=" in e)

HOLDER = r"""
set -eu
root=$1 host=$2; shift 2
mount --bind "$root" "$root"
mount --rbind /dev "$root/dev"
mount --rbind /proc "$root/proc"
mount -o remount,bind,ro "$root"
for m in "$@"; do
	d=$host/$(echo "$m" | tr / _)
	mount --bind "$d" "$root$m"
done
: >"$host/ready"
exec sleep 100000
"""

work, root, runtime = image_rootfs(archive, tag, out)
host = tempfile.mkdtemp(prefix="modelhub-pg387-", dir=out)
holder = pg = None
port = free_port()


def vol(m):
    return os.path.join(host, m.replace("/", "_"))


def in_pod(argv, env):
    return ["nsenter", "-t", str(holder.pid), "-m", "--", "chroot", "--userspec=%d:%d" % (UID, UID), root] + argv


def pod_env(**extra):
    e = {"PATH": ienv.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": ienv.get("LC_ALL", "C.UTF-8")}
    e.update({k: v for k, v in menv.items() if v is not None})
    e.update(extra)
    return e


def start_pg(**extra):
    env = pod_env(**extra)
    log = open(os.path.join(host, "postgres.log"), "a")
    return subprocess.Popen(in_pod(["/usr/bin/modelhub-postgres-entrypoint", "-c", "port=%d" % port], env),
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def wait_sock(p, timeout=90):
    sock = os.path.join(vol("/run/postgresql"), ".s.PGSQL.%d" % port)
    end = time.time() + timeout
    while time.time() < end and p.poll() is None:
        if os.path.exists(sock):
            return True
        time.sleep(0.2)
    return False


def stop_pg(p):
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)    # fast shutdown, as the kubelet's SIGTERM then SIGKILL would not wait for
        try:
            return p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            return p.wait()
    return p.returncode if p else None


def psql(sql, password=PW):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    return subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                           "-U", "modelhub", "-d", "modelhub", "-c", sql],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=30)


def log_text():
    with open(os.path.join(host, "postgres.log"), errors="replace") as f:
        return f.read()


try:
    t.ok(all(os.path.isdir(root + m) for m in mounts), "the image has a directory for every mount")
    for m in mounts:
        os.makedirs(vol(m))
        os.chown(vol(m), UID, UID)
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", HOLDER,
                               "holder", root, host] + mounts,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    end = time.time() + 20
    while not os.path.exists(os.path.join(host, "ready")) and time.time() < end and holder.poll() is None:
        time.sleep(0.1)
    t.ok(os.path.exists(os.path.join(host, "ready")), "pod mount namespace (read-only root, volumes)")

    # ---- first start without the Secret's password: refused, nothing written
    p = start_pg()
    rc = p.wait(60)
    t.is_(rc, 1, "first start without POSTGRES_PASSWORD exits 1")
    t.ok("POSTGRES_PASSWORD is not set" in log_text(), "  saying why")
    t.is_(os.listdir(vol("/var/lib/postgresql/data")), [], "  the data volume is left empty")

    # ---- first start: initdb, then the server
    pg = start_pg(POSTGRES_PASSWORD=PW)
    t.ok(wait_sock(pg), "first start initialises the data directory and listens (port %d)" % port)
    t.ok("initialised /var/lib/postgresql/data/pgdata (user modelhub, database modelhub)" in log_text(),
         "  the entry point says what it created")
    t.ok(PW not in log_text(), "  the password is in no log line")
    r = psql("SELECT current_user, current_setting('server_version_num')::int / 10000, "
             "current_setting('server_encoding'), current_setting('password_encryption')")
    t.is_(r.stdout.strip(), "modelhub|15|UTF8|scram-sha-256",
          "TCP login with the password: user modelhub, PostgreSQL 15, UTF8, scram-sha-256 (%s)" % r.stderr.strip())
    r = psql("SELECT 1", password="wrong")
    t.ok(r.returncode != 0 and "password authentication failed" in r.stderr, "  a wrong password is refused")
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = ctr[probe]["exec"]["command"]
        r = subprocess.run(in_pod(cmd, None), env=pod_env(PGPORT=str(port)), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        t.is_(r.returncode, 0, "  the StatefulSet's %s passes (%s)" % (probe, r.stdout.strip()))

    # ---- the hub's schema
    cfgf = os.path.join(host, "modelhub.conf")
    with open(cfgf, "w") as f:
        f.write("db.conninfo = host=127.0.0.1 port=%d dbname=modelhub user=modelhub password=%s connect_timeout=5\n"
                "db.schema = modelhub\n" % (port, PW))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELHUB_", "PG"))}
    env.update(MODELHUB_CONFIG=cfgf, MODELHUB_SQL_DIR=os.path.join(TOP, "sql"))
    r = subprocess.run([os.path.join(BUILD, "modelhubctl"), "-c", cfgf, "migrate"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    t.is_(r.returncode, 0, "modelhubctl migrate against the image's Postgres (%s)" % r.stdout.strip()[-200:])
    shipped = len([f for f in os.listdir(os.path.join(TOP, "sql")) if f.endswith(".sql")])
    n = psql("SELECT count(*) FROM modelhub.schema_migration").stdout.strip()
    t.is_(n, str(shipped), "  every migration applied (%s)" % n)
    psql("INSERT INTO modelhub.job_run (job, last_at) VALUES ('t387', now())")

    # ---- restart: the volume keeps the data, no second initdb
    t.is_(stop_pg(pg), 0, "fast shutdown")
    with open(os.path.join(host, "postgres.log"), "w"):
        pass
    pg = start_pg()    # no password needed once initialised
    t.ok(wait_sock(pg), "restart on the same volume without POSTGRES_PASSWORD")
    t.ok("initialised" not in log_text(), "  no second initdb")
    t.is_(psql("SELECT job FROM modelhub.job_run WHERE job = 't387'").stdout.strip(), "t387", "  data kept")
    t.is_(stop_pg(pg), 0, "stops cleanly")
finally:
    stop_pg(pg)
    if holder:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    shutil.rmtree(host, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
t.done()
