"""simtest.py — helpers for the tests that run the Kubernetes API simulator.

Runs in: t/35x-*.t test scripts under /usr/bin/python3.
Called by: t/350-kubesim-kubectl.t, t/351-kubesim-python.t, t/352-kubesim-scheduler.t, t/370-kubesim-autoscale.t,
  t/353-kubesim-watch.t (and any later test that needs a fake cluster).
Owns: one kubesim.py process per KubeSim object (stopped with SIGTERM at exit,
  which also kills the pod processes it started; with keep_processes those
  survive it by design and cleanup() kills them), a temporary state
  directory, a kubeconfig for kubectl.

kubectl never sends a bearer token over plain HTTP, so kubectl talks to the
simulator over HTTPS with the self-signed certificate kubesim generates
(KubeSim(tls=True)); the python client and raw HTTP calls may use either.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(HERE))
KUBESIM = os.path.join(TOP, "t", "kube", "kubesim.py")
MODELS = os.path.join(TOP, "models")
KUBECTL = "/usr/bin/kubectl"
PY = "/usr/bin/python3"

FAST_TIMING = {"pull_seconds": 0.1, "backoff_initial": 0.5, "backoff_max": 2.0,
               "probe_period": 0.3, "node_ready_delay": 1.0, "sample_period": 0.3}


def base_config(**kw):
    cfg = {"namespaces": ["modelhub"],
           "nodes": [{"name": "node-a", "cpu": "2", "memory": "4Gi", "pods": 20, "group": "static"}],
           "timing": dict(FAST_TIMING)}
    cfg.update(kw)
    return cfg


class Resp:
    def __init__(self, status, headers, data):
        self.status, self.headers, self.data = status, headers, data
        self.text = data.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.data)


class KubeSim:
    """A running simulator. Use .api() for raw calls, .kubectl() for the real client."""

    def __init__(self, config=None, tls=True, token="sim-token", state_dir=None, restore=False,
                 keep_processes=False, extra_args=()):
        self.tmp = tempfile.mkdtemp(prefix="kubesim-")
        self.state_dir = state_dir or os.path.join(self.tmp, "state")
        self.config = config if config is not None else base_config()
        self.cfg_path = os.path.join(self.tmp, "config.json")
        with open(self.cfg_path, "w") as f:
            json.dump(self.config, f)
        self.tls, self.token = tls, token
        self.restore, self.keep = restore, keep_processes
        self.extra = list(extra_args)
        self.proc = None
        self.port = None
        atexit.register(self.cleanup)

    def start(self, timeout=15):
        ready = os.path.join(self.tmp, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        argv = [PY, KUBESIM, "--port", str(self.port or 0), "--config", self.cfg_path,
                "--token", self.token, "--models-dir", MODELS, "--state-dir", self.state_dir,
                "--ready-file", ready] + self.extra
        if self.tls:
            argv.append("--tls")
        if self.restore:
            argv.append("--restore")
        if self.keep:
            argv.append("--keep-processes")
        self.log = open(os.path.join(self.tmp, "kubesim.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log)
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(ready):
                with open(ready) as f:
                    self.port = int(f.read().strip())
                break
            if self.proc.poll() is not None:
                raise RuntimeError("kubesim exited with %s; log:\n%s" % (self.proc.returncode, self.log_text()))
            time.sleep(0.05)
        else:
            raise RuntimeError("kubesim not ready within %ss" % timeout)
        self.ca = os.path.join(self.state_dir, "tls.crt")
        self.url = "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig")
        self.write_kubeconfig(self.kubeconfig, self.token)
        return self

    def write_kubeconfig(self, path, token):
        cluster = {"server": self.url}
        if self.tls:
            cluster["certificate-authority"] = self.ca
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "sim",
               "clusters": [{"name": "sim", "cluster": cluster}],
               "users": [{"name": "sim", "user": {"token": token}}],
               "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim", "namespace": "modelhub"}}]}
        with open(path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.keep = False
        if self.proc and self.proc.poll() is None:
            self.stop()
        self.kill_pod_processes()
        if os.environ.get("KUBESIM_KEEP_TMP"):
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    def kill_pod_processes(self):
        """Pod processes of this simulator that outlived it: with
        --keep-processes they are meant to (a restarted simulator adopts
        them), so at the end of a test they are killed here. Each one has
        KUBERNETES_SERVICE_PORT = this simulator's port in its environment."""
        mark = ("KUBERNETES_SERVICE_PORT=%d" % self.port).encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if mark in env:
                try:
                    os.killpg(int(pid), signal.SIGKILL)
                except OSError:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass

    def log_text(self):
        try:
            with open(os.path.join(self.tmp, "kubesim.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- clients

    def conn(self, timeout=10):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def api(self, method, path, body=None, token=None, ctype="application/json", accept="application/json",
            timeout=10):
        c = self.conn(timeout)
        headers = {"Accept": accept}
        tok = self.token if token is None else token
        if tok:
            headers["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = ctype
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        out = Resp(r.status, dict(r.getheaders()), r.read())
        c.close()
        return out

    def kubectl(self, *args, timeout=30, stdin=None, token=None):
        """Run the real kubectl against the simulator; returns (rc, stdout, stderr)."""
        cfg = self.kubeconfig
        if token is not None:
            cfg = os.path.join(self.tmp, "kubeconfig-%d" % abs(hash(token)))
            self.write_kubeconfig(cfg, token)
        env = dict(os.environ, KUBECONFIG=cfg, HOME=self.tmp)
        p = subprocess.run([KUBECTL] + list(args), input=stdin, capture_output=True, text=True,
                           timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr

    def wait_for(self, fn, timeout=20, every=0.1):
        """Poll fn() until it returns a true value; returns it (or None on timeout)."""
        end = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.time() >= end:
                return None
            time.sleep(every)

    def pod(self, name, ns="modelhub"):
        r = self.api("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
        return r.json() if r.status == 200 else None

    def events(self, name, ns="modelhub"):
        r = self.api("GET", "/api/v1/namespaces/%s/events?fieldSelector=involvedObject.name%%3D%s" % (ns, name))
        return r.json()["items"]


def pod_manifest(name=None, model="eos3b5e", ns="modelhub", port=80, cpu="100m", mem="128Mi",
                 mem_limit="512Mi", env=None, args=None, restart="Never", labels=None, probe=True,
                 image=None, node_selector=None, tolerations=None, generate=None):
    c = {"name": "model", "image": image or "modelhub/%s:latest" % model,
         "ports": [{"containerPort": port}],
         "resources": {"requests": {"cpu": cpu, "memory": mem}}}
    if mem_limit:
        c["resources"]["limits"] = {"memory": mem_limit}
    if env:
        c["env"] = [{"name": k, "value": str(v)} for k, v in env.items()]
    if args:
        c["args"] = list(args)
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 1}
    md = {"namespace": ns, "labels": labels or {"app.kubernetes.io/managed-by": "modelhub",
                                                "modelhub/model": model}}
    if generate:
        md["generateName"] = generate
    else:
        md["name"] = name
    spec = {"restartPolicy": restart, "containers": [c]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def cs0(pod):
    """First container status (or {})."""
    css = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return css[0] if css else {}


def in_path(exe):
    return os.path.exists(exe) and os.access(exe, os.X_OK)


def need_root_or_skip(t):
    if os.geteuid() != 0:
        t.skip_all("pods bind port 80 on their loopback IP: run as root")
    if not in_path(PY):
        t.skip_all("%s missing" % PY)


sys.path.insert(0, os.path.join(TOP, "t", "lib"))
