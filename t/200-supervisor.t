#!/usr/bin/python3
# 200-supervisor.t — modelhubd's supervisor: --version, bad options, child
# restart after a crash (with growing back-off), a hung child (no heartbeat)
# killed and restarted, the janitor as a singleton across two replicas
# (the hub lease, takeover when the leader stops), hub_server rows, clean
# SIGTERM (exit 0, no children left, shm segment removed).
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, nginx=False, config={"hub.runners": "2", "hub.hung_seconds": "3"})

r = subprocess.run([s.bin("modelhubd"), "--version"], stdout=subprocess.PIPE, text=True)
t.is_(r.returncode, 0, "--version exits 0")
t.like(r.stdout, r"^modelhubd \d+\.\d+", "  and prints the version")
r = subprocess.run([s.bin("modelhubd"), "--bogus"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
t.is_(r.returncode, 2, "unknown option exits 2")


def children(sup_pid):
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read().rsplit(")", 1)[1].split()
            if int(st[1]) != sup_pid or st[0] == "Z":
                continue
            with open("/proc/%s/cmdline" % p) as f:
                title = f.read().replace("\0", " ").strip()
            out[title] = int(p)
        except (OSError, IndexError, ValueError):
            pass
    return out


def wait_for(cond, timeout=20):
    return flows.poll(cond, timeout, 0.05)


hub = s.start_hubd()
sup = hub.pid
kids = wait_for(lambda: (lambda c: c if "modelhubd: janitor" in c and "modelhubd: runner 1" in c else None)(children(sup)))
t.ok(kids, "supervisor forked runners and janitor (%s)" % sorted(kids or {}))
kids = kids or {}

# ---- crash -> restart, back-off grows
jan = kids.get("modelhubd: janitor")
os.kill(jan, signal.SIGKILL)
t0 = time.time()
new = wait_for(lambda: (lambda p: p if p and p != jan else None)(children(sup).get("modelhubd: janitor")))
d1 = time.time() - t0
t.ok(new, "killed janitor restarted (after %.1f s)" % d1)
os.kill(new, signal.SIGKILL)
t0 = time.time()
new2 = wait_for(lambda: (lambda p: p if p and p != new else None)(children(sup).get("modelhubd: janitor")))
d2 = time.time() - t0
t.ok(new2 and d2 > d1 + 0.5, "  second crash in a row waits longer (%.1f s > %.1f s)" % (d2, d1))

# ---- hung child: SIGSTOP stops its heartbeat -> SIGKILL + restart
run1 = kids.get("modelhubd: runner 1")
os.kill(run1, signal.SIGSTOP)
t0 = time.time()
new = wait_for(lambda: (lambda p: p if p and p != run1 else None)(children(sup).get("modelhubd: runner 1")), 20)
t.ok(new, "hung runner (no heartbeat) killed and restarted after %.1f s" % (time.time() - t0))
t.ok(time.time() - t0 >= 2.5, "  not before hub.hung_seconds")
with open(s.logs["hubd"]) as f:
    log = f.read()
t.like(log, r'msg="child hung, killing"', "  logged")

# ---- hub_server: the children table with restarts
hs = wait_for(lambda: (lambda r: r if r and int(r[0][0] or 0) >= 2 else None)(
    s.sql("SELECT (SELECT sum((c->>'restarts')::int) FROM jsonb_array_elements(detail->'children') c)"
          " FROM hub_server")), 15)
t.ok(hs, "hub_server detail counts the restarts")
det = s.sql("SELECT detail ? 'queued', jsonb_array_length(detail->'assignment') FROM hub_server")
t.is_(det, [("t", "2")], "  and shows queue depths and the assignment of both runners")

# ---- janitor singleton across replicas
env = s.env({"MODELHUB_HUB_REPLICA_ID": "second", "MODELHUB_HUB_SHM_NAME": "/modelhub-second-%d" % os.getpid()})
log2 = os.path.join(s.tmp, "log", "hubd2.log")
with open(log2, "ab") as lf:
    hub2 = subprocess.Popen([s.bin("modelhubd"), "-c", s.config_path], stdout=lf, stderr=lf,
                            env=env, cwd=s.tmp, start_new_session=True)
wait_for(lambda: len(s.sql("SELECT replica_id FROM hub_server")) == 2, 15)
t.is_(len(s.sql("SELECT replica_id FROM hub_server")), 2, "second replica has its hub_server row")
time.sleep(2)
t.ok("holding the hub lease" not in open(log2).read(), "  its janitor does not lead while the first holds the lock")
os.kill(sup, signal.SIGTERM)
rc = hub.wait(timeout=30)
t.is_(rc, 0, "SIGTERM: supervisor exits 0")
t.is_(children(sup), {}, "  no children left")
t.ok(not os.path.exists("/dev/shm" + s.config["hub.shm_name"]), "  metrics segment removed")
t.ok(wait_for(lambda: "holding the hub lease" in open(log2).read(), 15),
     "the second replica's janitor takes over when the leader stops")
hub2.send_signal(signal.SIGTERM)
t.is_(hub2.wait(timeout=30), 0, "second replica stops cleanly")
t.done()
