#!/usr/bin/python3
"""kubesim.py — Kubernetes API simulator used to test modelhub's kubernetes backend.

Runs in: one process started by the tests under t/ (or by hand), as root or not.
Called by: the real kubectl, the python3-kubernetes client and modelhub's
  kubernetes backend (libcurl), over HTTP or HTTPS with a Bearer token.
Owns: the listening socket (ThreadingHTTPServer, one thread per connection), an
  in-memory object store (namespaces, pods, events, nodes, Cluster API
  MachineDeployments and Machines, ConfigMaps) with a bounded watch history, a controller
  thread (scheduler, node lifecycle, MachineDeployment reconciler, state dump),
  a sampler thread (/proc scan: CPU and RSS per process group), one "kubelet"
  thread per container, and the model processes it starts (one process group each).
Shared state: none outside the process except the optional state file
  <state-dir>/state.json and the container logs under <state-dir>/logs/.
Modules: kubesim_core.py (selectors, patches, store, resource table),
  kubesim_cluster.py (nodes, scheduler, kubelet, metrics, state file),
  kubesim_api.py (HTTP handler), kubesim_autoscaler.py (an external
  autoscaler behaving like cluster-autoscaler or Karpenter, config
  "external_autoscaler"); this file parses options and starts them.
  Documentation: docs/kubernetes.md §3.

DESIGN
The simulator implements the subset of the API that modelhub and kubectl use,
with the real wire formats: discovery (/version, /api, /api/v1, /apis, groups),
Status objects for errors, lists with labelSelector/fieldSelector/limit/continue,
watches (chunked JSON lines) resuming from a resourceVersion, 410 Gone when the
version left the bounded history or belongs to an earlier run (resourceVersions
start at the microsecond clock, so every start is a new epoch above all earlier
versions), merge / strategic-merge (as merge) / JSON patch, pods/log,
nodes/{n}/proxy/metrics/resource (Prometheus text computed from the real CPU time
and RSS of the pod processes), metrics.k8s.io PodMetrics/NodeMetrics, and the
autoscaling/v1 Scale subresource of MachineDeployments, which adds and removes
simulated nodes (Ready after a delay).

Pods really run: an image "modelhub/<name>:<tag>" (any registry prefix) maps
to the demo model <name> of --models-dir (names from its catalog.json, or the
"models" list of the config), started as
  /usr/bin/python3 <models-dir>/serve.py --model <name> --host <podIP> --port <port> <args>
  (or <models-dir>/serve with the same arguments when that is an executable)
with the container env. Every pod gets its own loopback address in 127.0.0.0/8
(127.<b>.x.y) as status.podIP. Memory limits are enforced by polling RSS
(OOMKilled, exit 137). Timings (pull, back-off, probe period) are shortened for
tests and set in the config's "timing" object.

Locking: one RLock (Store.lock) guards every object; a Condition on it wakes
watchers. Threads never hold the lock while sleeping, starting processes or
probing a pod over HTTP.
"""

import argparse
import faulthandler
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # t/kube/ is distributed as a directory: no __pycache__ in it
from kubesim_api import Handler  # noqa: E402
from kubesim_cluster import Simulator  # noqa: E402
from kubesim_core import log  # noqa: E402


# ---------------------------------------------------------------- main

def make_cert(state_dir):
    """Self-signed certificate for 127.0.0.1/localhost (also the CA for clients)."""
    cert, key = os.path.join(state_dir, "tls.crt"), os.path.join(state_dir, "tls.key")
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=kubesim", "-keyout", key, "-out", cert,
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-addext", "basicConstraints=critical,CA:TRUE"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """One log line for a failed connection (e.g. a client refusing our
        certificate), not socketserver's traceback."""
        err = sys.exc_info()[1]
        log("connection error", "warn", peer="%s:%s" % client_address[:2], error=repr(err)[:200])


def main(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API simulator for modelhub tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (see --ready-file)")
    p.add_argument("--tls", action="store_true", help="serve HTTPS")
    p.add_argument("--cert", help="PEM certificate (default: self-signed in --state-dir)")
    p.add_argument("--key", help="PEM key")
    p.add_argument("--config", help="JSON: nodes, machinedeployments, namespaces, users, timing")
    p.add_argument("--token", help="Bearer token with full access")
    p.add_argument("--models-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
    p.add_argument("--state-dir", required=True, help="logs, state.json, generated certificate")
    p.add_argument("--restore", action="store_true", help="load <state-dir>/state.json (a restarted API server)")
    p.add_argument("--persist", action="store_true",
                   help="write <state-dir>/state.json every second when changed and at exit (implied by --keep-processes)")
    p.add_argument("--keep-processes", action="store_true", help="leave pod processes running on exit (for --restore)")
    p.add_argument("--ready-file", help="write the port here once listening")
    p.add_argument("--history", type=int, default=1000, help="watch events kept for resuming")
    p.add_argument("--ip-octet", type=int, default=0, help="second octet of pod IPs 127.B.x.y (default from pid)")
    p.add_argument("--port-offset", type=int, default=0,
                   help="when not root, container ports below 1024 are bound at port+offset")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = p.parse_args(argv)
    cfg = {}
    if args.config:
        try:
            with open(args.config) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit("kubesim: bad config %s: %s" % (args.config, e))
    args.models_dir = os.path.abspath(args.models_dir)
    args.persist = args.persist or args.keep_processes
    os.makedirs(args.state_dir, exist_ok=True)
    sim = Simulator(args, cfg)
    Handler.sim = sim
    httpd = Server((args.host, args.port), Handler)
    args.port = httpd.server_address[1]
    if args.tls:
        cert, key = (args.cert, args.key) if args.cert else make_cert(args.state_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    if args.restore:
        sim.restore()
    sim.bootstrap()
    sim.sampler.scan()
    threading.Thread(target=sim.sampler.run, args=(sim.stopping,), name="sampler", daemon=True).start()
    threading.Thread(target=sim.controller, name="controller", daemon=True).start()

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # kill -USR2: every thread's stack into the log (where a stall is)
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % args.port)
        os.replace(args.ready_file + ".tmp", args.ready_file)
    log("ready", port=args.port, tls=int(args.tls), epoch=sim.store.epoch, models=",".join(sorted(sim.models)))
    print("ready %d" % args.port, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        sim.shutdown(args.keep_processes)
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
