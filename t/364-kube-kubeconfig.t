#!/usr/bin/python3
# 364-kube-kubeconfig.t — `modelhubctl kubeconfig FILE [CONTEXT]` reads a kubeconfig written by the real kubectl (YAML, embedded CA) and prints kube.* lines that run a request against kubesim; JSON kubeconfigs, named contexts, and bad files (no context, certificate user, flow style, missing file) are handled.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, submit, wait_done  # noqa: E402
from simtest import KUBECTL, need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
sim = KubeSim(base_config(), tls=True).start()
s = Stack(hubd=False, config={"hub.runners": "1"})
kc = os.path.join(sim.tmp, "kc.yaml")
env = dict(os.environ, KUBECONFIG=kc, HOME=sim.tmp)


def kubectl(*a):
    return subprocess.run([KUBECTL] + list(a), env=env, capture_output=True, text=True, check=True)


kubectl("config", "set-cluster", "sim", "--server=" + sim.url, "--certificate-authority=" + sim.ca,
        "--embed-certs=true")
kubectl("config", "set-credentials", "hub", "--token=" + sim.token)
kubectl("config", "set-context", "sim-ctx", "--cluster=sim", "--user=hub", "--namespace=modelhub")
kubectl("config", "set-credentials", "certy", "--client-certificate=" + sim.ca)
kubectl("config", "set-context", "cert-ctx", "--cluster=sim", "--user=certy")
kubectl("config", "use-context", "sim-ctx")
t.ok("certificate-authority-data:" in open(kc).read(), "kubectl wrote a YAML kubeconfig with an embedded CA")


def ctl(*a):
    r = s.ctl(*a)
    return r.returncode, r.stdout, r.stderr


rc, out, err = ctl("kubeconfig", kc)
t.is_(rc, 0, "modelhubctl kubeconfig: exit 0 (%s)" % err.strip())
lines = dict(ln.split(" = ", 1) for ln in out.splitlines() if " = " in ln)
t.is_(lines.get("kube.server"), sim.url, "  kube.server")
t.is_(lines.get("kube.token"), sim.token, "  kube.token")
t.is_(lines.get("kube.namespace"), "modelhub", "  kube.namespace from the context")
t.is_(lines.get("hub.backend"), "kubernetes", "  hub.backend")
ca = lines.get("kube.ca_file", "")
t.ok(ca and open(ca).read() == open(sim.ca).read(), "  CA written from certificate-authority-data")

# the printed lines run a request
s.set_config(**lines)
s.add_demo_models()
s.start_hubd()
anon = s.anon()
st = wait_done(s, submit(s, anon, "eos3b5e", ["CCO"]), 60)
t.is_(st[0], "COMPLETED", "a request runs on the cluster with exactly those lines (%s)" % (st,))
t.is_(s.sql("SELECT backend FROM model_instance")[0][0], "kubernetes", "  on a pod")

# in-cluster style: no kube.server, KUBERNETES_SERVICE_HOST/PORT from the environment
s.stop_hubd()
s.set_config(**{"kube.server": None})
os.environ["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
os.environ["KUBERNETES_SERVICE_PORT"] = str(sim.port)
s.start_hubd()
st = wait_done(s, submit(s, anon, "descriptors", ["CCO"]), 60)
t.is_(st[0], "COMPLETED", "in-cluster server from KUBERNETES_SERVICE_HOST/PORT (%s)" % (st,))
s.stop_hubd()
del os.environ["KUBERNETES_SERVICE_HOST"]
s.start_hubd()
time.sleep(1.5)
with open(s.logs["hubd"], errors="replace") as f:
    t.ok("no API server" in f.read(), "no server configured and not in a cluster: said so in the log")

# JSON kubeconfig (as simtest writes it), with a CA path
rc, out, err = ctl("kubeconfig", sim.kubeconfig)
t.ok(rc == 0 and ("kube.ca_file = %s" % sim.ca) in out, "JSON kubeconfig with certificate-authority path")

# bad inputs
rc, out, err = ctl("kubeconfig", kc, "cert-ctx")
t.ok(rc == 1 and "no token" in err, "client-certificate user refused with a reason")
rc, out, err = ctl("kubeconfig", kc, "nope")
t.ok(rc == 1 and "no context" in err, "unknown context refused")
bad = os.path.join(sim.tmp, "flow.yaml")
open(bad, "w").write("clusters: [{name: a}]\n")
rc, out, err = ctl("kubeconfig", bad)
t.ok(rc == 1 and "not supported" in err, "flow-style YAML refused")
rc, out, err = ctl("kubeconfig", os.path.join(sim.tmp, "missing"))
t.ok(rc == 1 and "cannot open" in err, "missing file refused")
rc, out, err = ctl("kubeconfig")
t.is_(rc, 2, "no file: usage error")
t.done()
