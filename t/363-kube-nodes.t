#!/usr/bin/python3
# 363-kube-nodes.t — kubernetes backend with a least-privilege token (exactly t/kube/required-permissions.txt): node metrics of several simulated nodes reach the segment and GET /api/nodes, pod metrics reach GET /api/instances; nodes/proxy forbidden -> metrics.k8s.io fallback; token file re-read when it rotates; TLS with the wrong CA fails.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import KubeSim, base_config, kube_config, submit, wait_done, wait_for  # noqa: E402
from simtest import TOP, need_root_or_skip  # noqa: E402
from stack import Stack  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
NS = "modelhub-models"
PERMS = os.path.join(TOP, "t", "kube", "required-permissions.txt")
cfg = base_config(
    namespaces=[NS],
    nodes=[{"name": "node-%s" % c, "cpu": "2", "memory": "4Gi", "pods": 20, "group": "static"}
           for c in "abc"],
    users=[{"token": "least-token", "name": "system:serviceaccount:modelhub:modelhub",
            "allow_file": PERMS},
           {"token": "noproxy-token", "name": "system:serviceaccount:modelhub:noproxy",
            "allow_file": PERMS, "deny": ["get nodes/proxy"]},
           {"token": "rotated-token", "name": "system:serviceaccount:modelhub:modelhub",
            "allow_file": PERMS}])
sim = KubeSim(cfg, tls=True).start()
hub = {"hub.runners": "1", "metrics.interval_ms": "500", "kube.scrape_nodes": "all"}  # every node, model pods or not
hub.update(kube_config(sim, NS))
tokfile = os.path.join(sim.tmp, "token")
with open(tokfile, "w") as f:
    f.write("least-token\n")
hub["kube.token"] = None
hub["kube.token_file"] = tokfile
s = Stack(hubd=False, config=hub)
s.add_demo_models()
s.start_hubd()
anon, admin = s.anon(), s.admin_token


def hubd_log():
    with open(s.logs["hubd"], errors="replace") as f:
        return f.read()


def nodes():
    r = s.api("GET", "/api/nodes", token=admin)
    return {n["name"]: n for n in (r.json or {}).get("items", [])}


def sampled_nodes():
    n = nodes()
    ok = {k: v for k, v in n.items() if k.startswith("node-") and v.get("last_sample_at_ms")
          and (v.get("memory") or {}).get("usage") is not None}
    return ok if len(ok) == 3 else None


# ---- node metrics of three nodes, with the least-privilege token
got = wait_for(sampled_nodes, 20)
t.ok(got, "three simulated nodes sampled into the segment, served by GET /api/nodes")
if got:
    a = got["node-a"]
    t.ok((a.get("memory") or {}).get("usage", 0) > 0, "  node memory usage > 0 (%s)" % a.get("memory"))
t.ok("kubescrape" not in hubd_log() or "forbidden" not in hubd_log(), "  proxy allowed: no fallback")

# ---- pod metrics of a running instance (load model burns CPU per input)
rid = submit(s, anon, "load", ["C" * (1 + i % 8) for i in range(60)])
iid = wait_for(lambda: (s.sql("SELECT id FROM model_instance WHERE model_id = 'load'") or [[None]])[0][0], 30)


def inst_sampled():
    r = s.api("GET", "/api/instances/%s" % iid, token=admin)
    j = r.json or {}
    text = r.text
    return j if r.status == 200 and '"mem' in text and j.get("source", "segment") and \
        (j.get("aggregates") or j.get("metrics") or {}) else None


st = wait_done(s, rid, 90)
t.is_(st[0], "COMPLETED", "load request completes with the least-privilege token (%s)" % (st,))
r = s.api("GET", "/api/instances/%s" % iid, token=admin)
t.is_(r.status, 200, "GET /api/instances/{id} answers")
samples = s.api("GET", "/api/instances/%s/samples" % iid, token=admin)
sj = samples.json or {}
items = sj.get("items") or sj.get("samples") or []
t.ok(samples.status == 200 and len(items) > 0, "  pod samples reached the instance (%d samples)" % len(items))
t.ok(any((x.get("cpu_m") or 0) > 0 for x in items if isinstance(x, dict)),
     "  CPU of the pod seen (from the kubelet counter)")
t.ok(any((x.get("memory_mib") or 0) > 10 for x in items if isinstance(x, dict)),
     "  working set of the pod seen")
t.ok("API call refused" not in hubd_log(), "no call outside required-permissions.txt was refused")

# ---- token rotation: the file is replaced, the new token is used
os.rename(tokfile, tokfile + ".old")
with open(tokfile + ".new", "w") as f:
    f.write("rotated-token\n")
os.rename(tokfile + ".new", tokfile)
time.sleep(1.5)
rid = submit(s, anon, "descriptors", ["CCO"])
st = wait_done(s, rid, 60)
t.is_(st[0], "COMPLETED", "after the token file rotated, requests still work")
t.ok(hubd_log().count("token (re)loaded") >= 2, "  token re-read from the file")

# ---- nodes/proxy forbidden: metrics.k8s.io fallback
with open(tokfile + ".new", "w") as f:
    f.write("noproxy-token\n")
os.rename(tokfile + ".new", tokfile)
t.ok(wait_for(lambda: "using metrics.k8s.io" in hubd_log(), 20), "proxy forbidden: scraper falls back to metrics.k8s.io")
before = {k: v.get("last_sample_at_ms") for k, v in nodes().items()}
time.sleep(2.5)
after = nodes()
t.ok(all(after[k].get("last_sample_at_ms", 0) > (before.get(k) or 0) for k in ("node-a", "node-b", "node-c")),
     "  nodes keep getting samples from metrics.k8s.io")

# ---- TLS: a CA that did not sign the server's certificate
wrong = os.path.join(sim.tmp, "wrong-ca.crt")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                os.path.join(sim.tmp, "wrong.key"), "-out", wrong, "-days", "1", "-subj", "/CN=wrong"],
               capture_output=True, check=True)
s.stop_hubd()
with open(tokfile, "w") as f:
    f.write("least-token\n")
s.set_config(**{"kube.ca_file": wrong})
s.start_hubd()
rid = submit(s, anon, "eos3b5e", ["CCO"])
st = wait_done(s, rid, 60)
t.is_(st[:2], ("FAILED", "CLUSTER_ERROR"), "wrong CA: the pod cannot be created, request fails at once (%s)" % (st,))
t.like(hubd_log(), r"(?i)certificate|SSL", "  TLS verification error logged")
t.is_([p for p in sim.api("GET", "/api/v1/namespaces/%s/pods" % NS).json()["items"]
       if p["metadata"]["labels"].get("modelhub/model") == "eos3b5e"], [], "  no pod was created")
t.done()
