#!/usr/bin/python3
# 112-pgrestart.t — Postgres restarted under a running modelhub-fcgi: while
# it is down /api/health answers 503 (and /api/ping, which needs no
# database, still 200); after it is back every request succeeds on every
# worker without restarting modelhub-fcgi, reads and writes, for "fast" and
# "immediate" shutdowns, also with requests in flight during the restart.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
WORKERS = 3
s = Stack(config={"fcgi.workers": str(WORKERS)})
adm = s.admin_token
fcgi_pid = s.pid_of("fcgi")
r = s.api("POST", "/api/models", json={"id": "m112"}, token=adm)
t.status(r, 201, "model created before the restarts")


def burst(n, what):
    """n authenticated reads; returns the statuses and worker pids seen."""
    statuses, pids = [], set()
    for _ in range(n):
        r = s.api("GET", "/api/models/m112", token=adm)
        statuses.append(r.status)
        h = s.api("GET", "/api/health")
        statuses.append(h.status)
        if h.json and "worker_pid" in h.json:
            pids.add(h.json["worker_pid"])
    return statuses, pids


st, pids = burst(10, "warm up")
t.ok(all(x == 200 for x in st), "all requests succeed before the restart")

for mode in ("fast", "immediate"):
    # ---- down: 503 from health, ping unaffected
    s.stop_postgres(mode)
    r = s.api("GET", "/api/health")
    t.status(r, 503, "%s: health while Postgres is down: 503" % mode)
    t.is_(((r.json or {}).get("error") or {}).get("code"), "db_unavailable",
          "%s: code db_unavailable" % mode)
    r = s.api("GET", "/api/ping")
    t.status(r, 200, "%s: /api/ping needs no database" % mode)
    r = s.api("GET", "/api/models", token=adm)
    t.ok(r.status in (401, 503), "%s: a DB-backed route fails cleanly while down (%d)"
         % (mode, r.status))
    t.ok(r.json and "error" in r.json, "%s: ... with a JSON error" % mode)
    s.start_postgres()

    # ---- back: every request on every worker succeeds at once
    st, pids = burst(6 * WORKERS, mode)
    bad = [x for x in st if x != 200]
    t.ok(not bad, "%s: every request after the restart succeeds (%d requests, failures %s)"
         % (mode, len(st), bad))
    # The harness runs Postgres with synchronous_commit=off, so an
    # immediate shutdown may drop the last commit: read the version back.
    version = int(s.api("GET", "/api/models/m112", token=adm).json["version"])
    r = s.api("PATCH", "/api/models/m112", json={"version": version, "description": mode},
              token=adm)
    t.status(r, 200, "%s: a write (transaction) after the restart succeeds" % mode)
    t.is_(s.pid_of("fcgi"), fcgi_pid, "%s: modelhub-fcgi was not restarted" % mode)

r = s.api("GET", "/api/health")
t.ok((r.json or {}).get("db_reconnects", 0) >= 1, "workers report reconnects in /api/health")

# ---- requests in flight while Postgres restarts
stop = threading.Event()
results = []


def hammer():
    while not stop.is_set():
        try:
            r = s.api("GET", "/api/models/m112", token=adm, timeout=20)
            results.append((time.monotonic(), r.status))
        except Exception as e:   # connection-level errors count as failures
            results.append((time.monotonic(), str(e)))


th = [threading.Thread(target=hammer) for _ in range(3)]
for x in th:
    x.start()
time.sleep(0.5)
s.restart_postgres("fast")
back = time.monotonic()
time.sleep(1.5)
stop.set()
for x in th:
    x.join()
before_ok = [x for x in results if x[0] < back - 5]
after = [x for x in results if x[0] > back + 0.2]
t.ok(len(results) > 20, "load ran during the restart (%d requests)" % len(results))
t.ok(all(x[1] == 200 for x in before_ok), "no failures before the restart")
t.ok(after and all(x[1] == 200 for x in after),
     "after the restart every request succeeds (%d requests, failures %s)"
     % (len(after), [x[1] for x in after if x[1] != 200][:5]))
t.is_(s.pid_of("fcgi"), fcgi_pid, "modelhub-fcgi survived everything")

s.stop()
t.done()
