"""
podroot.py — run modelhub from its container image's file system, the way a
pod would, on a machine that cannot run containers: a read-only root file
system, writable volumes, the image's non-root user.

Runs in: t/380-image.t under /usr/bin/python3, as root.
Called by: t/380-image.t (and any later test of the image).
Owns: the unpacked image (image_rootfs(): a directory the caller removes),
one "pod" holder process per ImageStack (a private mount namespace kept open
by `sleep`; every command of the stack enters it with nsenter), and what
stack.Stack owns (Postgres, daemons, temp dir).

The pod's mount namespace (private: nothing shows on the host):
    <rootfs>             bind-mounted read-only (readOnlyRootFilesystem)
    <rootfs>/dev, /proc  the host's (shared memory in /dev/shm, /dev/urandom)
    <rootfs>/tmp         a tmpfs (emptyDir)
    <rootfs>/run/modelhub, /run/nginx, /var/lib/modelhub
                         <stack tmp>/pod/{run-modelhub,run-nginx,var}, owned
                         by the image user (the pod's emptyDir volumes; the
                         test sees the FastCGI socket from outside)
    <rootfs><stack tmp>  the stack's temp dir (config, Postgres socket), so a
                         path means the same inside and outside
Commands run as `nsenter -t HOLDER -m chroot --userspec=UID:GID ROOTFS
/usr/bin/modelhub-entrypoint CMD...`: nsenter and chroot exec, so the pid
the stack holds is the daemon's own.

NOTES
- The daemons use the image's installed files (/usr/share/modelhub: sql/,
  web/, nginx/ template) and programs, never the build tree: MODELHUB_SQL_DIR
  is not passed in.
- The holder's command line names the stack's temp dir, so stack.py's
  watchdog kills it when the test dies.
"""

import json
import os
import subprocess
import tempfile

from stack import Stack, StackError, free_port

ENTRY = "/usr/bin/modelhub-entrypoint"
UID = GID = 10001

_HOLDER = r"""
set -eu
root=$1 tmp=$2 pod=$3
mount --bind "$root" "$root"
mount --rbind /dev "$root/dev"
mount --rbind /proc "$root/proc"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/tmp"
mkdir -p "$root$tmp"
mount --bind "$tmp" "$root$tmp"
mount --bind "$pod/run-modelhub" "$root/run/modelhub"
mount --bind "$pod/run-nginx" "$root/run/nginx"
mount --bind "$pod/var" "$root/var/lib/modelhub"
: >"$pod/ready"
exec sleep 100000
"""


def image_rootfs(archive, ref, parent):
    """Unpack the OCI archive's image `ref` with umoci; returns (bundle dir,
    rootfs path). The caller removes the bundle dir."""
    work = tempfile.mkdtemp(prefix="modelhub-img-", dir=parent)
    layout = os.path.join(work, "oci")
    os.makedirs(layout)
    subprocess.run(["tar", "-C", layout, "-xf", archive], check=True)
    bundle = os.path.join(work, "bundle")
    r = subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (layout, ref), bundle],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise StackError("umoci unpack failed: %s" % r.stdout[-2000:])
    with open(os.path.join(bundle, "config.json")) as f:
        runtime = json.load(f)
    return work, os.path.join(bundle, "rootfs"), runtime


class ImageStack(Stack):
    """stack.Stack whose modelhubctl, modelhub-fcgi, modelhubd and nginx run
    from `rootfs` inside a pod-like mount namespace. Extra keyword: rootfs."""

    def __init__(self, rootfs, config=None, **kw):
        self.rootfs = rootfs
        self.holder = None
        cfg = {"fcgi.socket": "/run/modelhub/fcgi.sock", "fcgi.pidfile": "/run/modelhub/fcgi.pid",
               "hub.var_dir": "/var/lib/modelhub", "hub.models_dir": None}
        cfg.update(config or {})
        super().__init__(config=cfg, **kw)

    # ------------------------------------------------------------ the pod
    def _start_pod(self):
        pod = os.path.join(self.tmp, "pod")
        for d in ("run-modelhub", "run-nginx", "var"):
            os.makedirs(os.path.join(pod, d), exist_ok=True)
            os.chown(os.path.join(pod, d), UID, GID)
        self.pod_dir = pod
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                                        "sh", "-c", _HOLDER, "holder", self.rootfs, self.tmp, pod],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._wait("pod mount namespace", lambda: os.path.exists(os.path.join(pod, "ready")),
                   self.holder, timeout=20)

    def enter(self):
        """argv prefix running a command of the image inside the pod."""
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", "chroot",
                "--userspec=%d:%d" % (UID, GID), self.rootfs, ENTRY]

    def run_in(self, *argv, env=None, timeout=60, input=None):
        """One command of the image in the pod (as its user); CompletedProcess."""
        return subprocess.run(self.enter() + list(argv), input=input, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=self.env(env), timeout=timeout, cwd=self.tmp)

    # ---------------------------------------------- Stack, from the image
    def env(self, extra=None):
        e = super().env(extra)
        e.pop("MODELHUB_SQL_DIR", None)   # the image's /usr/share/modelhub/sql
        return e

    def _migrate(self):
        self._start_pod()
        super()._migrate()

    def ctl(self, *args, env=None, input=None, timeout=60):
        return self.run_in("modelhubctl", "-c", self.config_path, *args, env=env,
                           timeout=timeout, input=input)

    def add_demo_models(self):
        """The catalog installed in the image."""
        return self._ctl_ok("add-model", "/usr/share/modelhub/models/catalog.json")

    def bin(self, name):
        return name

    def _spawn(self, name, argv):
        return self._spawn_env(name, argv, None)

    def start_fcgi(self):
        sock = os.path.join(self.pod_dir, "run-modelhub", "fcgi.sock")
        p = self._spawn("fcgi", ["modelhub-fcgi", "-c", self.config_path])
        self._wait("modelhub-fcgi socket", lambda: os.path.exists(sock), p)

    def start_nginx(self):
        self.logs["nginx"] = os.path.join(self.tmp, "log", "nginx.log")
        for _ in range(5):
            self.port = free_port()
            p = self._spawn_env("nginx", ["nginx"], {"NGINX_PORT": str(self.port),
                                                      "NGINX_LISTEN": "127.0.0.1"})
            try:
                self._wait("nginx", lambda: self._port_open(self.port), p, timeout=10)
                self.url = "http://127.0.0.1:%d" % self.port
                return
            except StackError:
                self._stop_proc("nginx")
        raise StackError("nginx from the image did not start")

    def _spawn_env(self, name, argv, extra):
        log = os.path.join(self.tmp, "log", name + ".log")
        self.logs[name] = log
        with open(log, "ab") as lf:
            # nginx reopens /dev/stderr as the image user (a pipe in a pod)
            os.fchown(lf.fileno(), UID, GID)
            p = subprocess.Popen(self.enter() + argv, stdin=subprocess.DEVNULL, stdout=lf,
                                 stderr=lf, env=self.env(extra), cwd=self.tmp,
                                 start_new_session=True)
        self.procs[name] = p
        return p

    def _stop_all(self):
        try:
            super()._stop_all()
        finally:
            h = self.holder
            if h is not None and h.poll() is None:
                h.kill()
                h.wait(5)
