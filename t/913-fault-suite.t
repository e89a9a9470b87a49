#!/usr/bin/python3
# 913-fault-suite.t — fault injection under load (issue 17, make check-long): about 200 requests from 20 clients while, in turn, every modelhubd child role, a FastCGI worker, a model instance and the supervisor itself are SIGKILLed, PostgreSQL is restarted (fast, then immediate) and nginx reloaded. Clients retry refused submits with their Idempotency-Key. Every accepted request must end COMPLETED with one result per input and none duplicated, and no model instance may outlive the run (rows and processes); the recovery time after each fault is printed.
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                        # noqa: E402
from stack import Stack, descendants       # noqa: E402
import flows                               # noqa: E402

T0 = time.time()
t = TAP()
s = Stack(hubd=False, nginx=True, config={
    "hub.runners": "2", "hub.chunk_size": "5", "hub.lease_seconds": "3", "hub.max_attempts": "10",
    "hub.replica_stale_seconds": "6", "fcgi.workers": "3", "anon.per_ip_per_hour": "10000",
    "quota.anon.requests_in_flight": "0"})
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e", "--host", "{host}",
        "--port", "{port}", "--call-cost", "0.05"]
# durable commits as in production (the test cluster runs with fsync and
# synchronous_commit off: an immediate restart would lose acknowledged
# commits, which no application can survive)
for k in ("fsync", "synchronous_commit", "full_page_writes"):
    s.sql("ALTER SYSTEM SET %s = on" % k)
s.sql("SELECT pg_reload_conf()")
s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds)"
      " VALUES ('ft', $1::text[], 2, 3)", flows.argv_literal(argv))
s.start_hubd()
random.seed(913)

CLIENTS, PER_CLIENT = 20, 10
accepted = {}          # request id -> input count
dups = []
lock = threading.Lock()
stop = threading.Event()


def submit_until_accepted(tok, key, inputs, deadline):
    """POST with an Idempotency-Key until 201/200 (faults give 5xx or
    connection errors); the id, or None past the deadline."""
    while time.time() < deadline:
        try:
            r = s.api("POST", "/api/requests", token=tok, timeout=15,
                      json={"model_id": "ft", "inputs": inputs}, headers={"Idempotency-Key": key})
            if r.status in (200, 201) and r.json and r.json.get("id"):
                return r.json["id"], r.status
        except OSError:
            pass
        time.sleep(0.3)
    return None, None


def client(k):
    tok = None
    while tok is None and not stop.is_set():
        try:
            tok = s.anon()
        except Exception:  # noqa: BLE001 (a fault in progress)
            time.sleep(0.3)
    for j in range(PER_CLIENT):
        inputs = ["C" * (1 + (k + j + i) % 8) for i in range(1 + (k * 3 + j) % 5)]
        rid, st = submit_until_accepted(tok, "c%d-%d" % (k, j), inputs, time.time() + 120)
        with lock:
            if rid in accepted:
                dups.append(rid)
            if rid:
                accepted[rid] = len(inputs)
        time.sleep(random.uniform(1.0, 6.0))


def healthy():
    try:
        return s.api("GET", "/api/health", timeout=3).status == 200
    except OSError:
        return False


def probe_ok(deadline):
    """A fresh request completes: the whole path works again."""
    tok = None
    while time.time() < deadline and tok is None:
        try:
            tok = s.anon()
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    rid, _st = submit_until_accepted(tok, "probe-%f" % time.time(), ["CCO"], deadline) if tok else (None, None)
    if not rid:
        return False
    with lock:
        accepted[rid] = 1
    while time.time() < deadline:
        try:
            if s.sql("SELECT status FROM work_request WHERE id = $1", rid)[0][0] == "COMPLETED":
                return True
        except Exception:  # noqa: BLE001 (Postgres restarting)
            pass
        time.sleep(0.2)
    return False


def recovered(what, t_fault):
    deadline = t_fault + 60
    ok = False
    while time.time() < deadline and not healthy():
        time.sleep(0.1)
    ok = probe_ok(deadline)
    took = time.time() - t_fault
    t.ok(ok, "after %s: a new request completes (recovery %.1f s)" % (what, took))
    return took


def kill_one(pids, what):
    if not pids:
        t.diag("no %s process found" % what)
        return False
    os.kill(pids[0], signal.SIGKILL)
    return True


def hubd_child(role):
    sup = s.pid_of("hubd")
    return [p for p in descendants(sup) if role in _comm_cmd(p)] if sup else []


def _comm_cmd(p):
    try:
        with open("/proc/%d/comm" % p) as f:
            c = f.read().strip()
        with open("/proc/%d/cmdline" % p, "rb") as f:
            return c + " " + f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def instance_procs():
    """Processes whose cwd is an instance directory of this stack."""
    out = []
    inst = os.path.join(s.var_dir, "instances")
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink("/proc/%s/cwd" % d).startswith(inst):
                    out.append(int(d))
            except OSError:
                pass
    return out


def fcgi_workers():
    m = s.pid_of("fcgi")
    return [p for p in descendants(m)] if m else []


threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
for th in threads:
    th.start()
time.sleep(3)
recovery = {}
faults = [("runner", lambda: kill_one(hubd_child("runner"), "runner")),
          ("dealer", lambda: kill_one(hubd_child("dealer"), "dealer")),
          ("janitor", lambda: kill_one(hubd_child("janitor"), "janitor")),
          ("scraper", lambda: kill_one(hubd_child("scraper"), "scraper")),
          ("monitor", lambda: kill_one(hubd_child("monitor"), "monitor")),
          ("fcgi worker", lambda: kill_one(fcgi_workers(), "fcgi worker")),
          ("model instance", lambda: kill_one(instance_procs(), "model instance"))]
for name, act in faults:
    t_fault = time.time()
    if act():
        recovery[name] = recovered("SIGKILL of the " + name, t_fault)
    else:
        t.ok(name == "model instance", "a %s to kill was found" % name)

# the supervisor itself: its children go with it; started again as a
# process manager (systemd, Kubernetes) would
t_fault = time.time()
kill_one([s.pid_of("hubd")], "supervisor")
gone = time.time() + 15
while time.time() < gone and (instance_procs() or hubd_child("runner")):
    time.sleep(0.1)
t.is_(instance_procs(), [], "SIGKILL of the supervisor: its model instances die with it")
s.start_hubd()
recovery["supervisor"] = recovered("SIGKILL of the supervisor (restarted)", t_fault)

for mode in ("fast", "immediate"):
    t_fault = time.time()
    s.restart_postgres(mode)
    recovery["postgres " + mode] = recovered("a %s restart of PostgreSQL" % mode, t_fault)

t_fault = time.time()
os.kill(s.pid_of("nginx"), signal.SIGHUP)
recovery["nginx reload"] = recovered("nginx reload", t_fault)
t.diag("recovery times: " + ", ".join("%s %.1f s" % kv for kv in recovery.items()))

for th in threads:
    th.join(180)
stop.set()
n_req = len(accepted)
t.ok(n_req >= CLIENTS * PER_CLIENT, "%d requests accepted (every client's %d, plus probes)"
     % (n_req, PER_CLIENT))
t.is_(dups, [], "an idempotent retry never made a second request")

deadline = time.time() + 120
ids = sorted(accepted)
while time.time() < deadline:
    left = int(s.sql("SELECT count(*) FROM work_request WHERE id = ANY($1::bigint[])"
                     " AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')",
                     "{%s}" % ",".join(str(i) for i in ids))[0][0])
    if left == 0:
        break
    time.sleep(0.5)
st = dict(s.sql("SELECT status, count(*) FROM work_request WHERE id = ANY($1::bigint[])"
                " GROUP BY status", "{%s}" % ",".join(str(i) for i in ids)))
t.is_(st, {"COMPLETED": str(n_req)}, "every accepted request ended COMPLETED")
t.is_(s.sql("SELECT count(*) FROM work_request")[0][0], str(n_req),
      "no request exists that a client was not told about")
res = s.sql("SELECT count(*), count(DISTINCT (request_id, ordinal)) FROM work_request_result")[0]
t.is_(res, (str(sum(accepted.values())),) * 2, "one result per input, none duplicated")
bad = s.sql("SELECT count(*) FROM work_request w WHERE done_count <> input_count OR"
            " (SELECT count(*) FROM work_request_result r WHERE r.request_id = w.id) <> input_count")
t.is_(bad[0][0], "0", "done_count = input_count = results for every request")

# no instance leaked: idle ones stop after idle_seconds (3); rows of killed
# processes end TERMINATED
deadline = time.time() + 45
while time.time() < deadline and (instance_procs() or s.sql(
        "SELECT count(*) FROM model_instance WHERE state <> 'TERMINATED'")[0][0] != "0"):
    time.sleep(0.5)
t.is_(instance_procs(), [], "no model instance process left")
t.is_(s.sql("SELECT state, count(*) FROM model_instance WHERE state <> 'TERMINATED' GROUP BY 1"), [],
      "every instance row TERMINATED")
took = time.time() - T0
t.ok(took < 180, "the suite ran in %.0f s (< 3 min)" % took)
s.stop()
t.done()
