#!/usr/bin/python3
# 381-hubd-alive.t — `modelhubctl alive`, the modelhubd liveness probe of deploy/k8s: fails with no modelhubd, passes while modelhubd and its children beat (also when idle and when Postgres is down), fails naming the child when the supervisor and a child are frozen, and fails once modelhubd stopped or was killed.
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
HUNG = 3                       # hub.hung_seconds: the probe's default limit is twice that
s = Stack(hubd=False, nginx=False, config={"hub.runners": "1", "hub.hung_seconds": str(HUNG)})


def alive(*args):
    return s.ctl("alive", *args, env={"MODELHUB_DB_CONNINFO": "host=/nonexistent"})


def child_pid(sup, title):
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % p) as f:
                cmd = f.read().replace("\0", " ").strip()
        except (OSError, IndexError):
            continue
        if int(st[1]) == sup and st[0] != "Z" and cmd == title:
            return int(p)
    return None


r = alive()
t.is_(r.returncode, 1, "no modelhubd: not alive")
t.like(r.stderr, r"no modelhubd segment /modelhub-", "  says there is no segment")
r = alive("0")
t.is_(r.returncode, 2, "alive 0: usage error")

hub = s.start_hubd()
jan = flows.poll(lambda: child_pid(hub.pid, "modelhubd: janitor"), 20, 0.05)
t.ok(jan, "modelhubd started its janitor")
r = flows.poll(lambda: (lambda r: r if r.returncode == 0 else None)(alive()), 10, 0.2)
t.ok(r, "modelhubd running: alive (exit 0), without a database connection")
t.like(r.stdout if r else "", r"modelhubd pid %d alive: \d+ children beat within %d s" % (hub.pid, 2 * HUNG),
       "  names the supervisor, the children and the limit (2 x hub.hung_seconds)")
time.sleep(2 * HUNG + 1)
t.is_(alive().returncode, 0, "idle for longer than the limit: still alive (children beat while idle)")
s.stop_postgres()
time.sleep(1)
t.is_(alive().returncode, 0, "Postgres down: still alive (the probe must not restart the hub for it)")
s.start_postgres()

# a stuck supervisor no longer kills its silent child: the probe sees the silence
os.kill(hub.pid, signal.SIGSTOP)
os.kill(jan, signal.SIGSTOP)
time.sleep(2 * HUNG + 1.5)
r = alive()
t.is_(r.returncode, 1, "supervisor and janitor frozen: not alive")
t.like(r.stderr, r"child janitor \(pid %d\) silent for \d+ s" % jan, "  names the silent child")
r = alive("60")
t.is_(r.returncode, 0, "  alive 60: a longer limit given on the command line passes")
os.kill(jan, signal.SIGCONT)
os.kill(hub.pid, signal.SIGCONT)
t.ok(flows.poll(lambda: alive().returncode == 0, 20, 0.3), "resumed: alive again")

os.kill(hub.pid, signal.SIGKILL)
hub.wait(10)
seg = "/dev/shm" + s.config["hub.shm_name"]
if os.path.exists(seg):
    r = alive()
    t.ok(r.returncode == 1 and "is gone" in r.stderr, "modelhubd killed, segment left behind: not alive")
else:
    t.pass_("modelhubd killed: segment gone with it")
s.expect_crashes = True   # the SIGKILL above
p = s.start_hubd()
t.ok(flows.poll(lambda: alive().returncode == 0, 20, 0.3), "restarted: alive")
p.send_signal(signal.SIGTERM)
t.is_(p.wait(30), 0, "SIGTERM: modelhubd stops")
r = alive()
t.is_(r.returncode, 1, "stopped: not alive")
t.done()
