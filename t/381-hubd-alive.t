#!/usr/bin/python3
# 381-hubd-alive.t — `modelhubctl alive`, the modelhubd liveness probe of deploy/k8s: fails with no modelhubd, passes while the supervisor's loop beats (also when idle and when Postgres is down), fails when the supervisor is frozen or was killed, and once modelhubd stopped.
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
HUNG = 3                       # hub.hung_seconds: the probe's default limit
s = Stack(hubd=False, nginx=False, config={"hub.runners": "1", "hub.hung_seconds": str(HUNG)})
alive_file = os.path.join(s.var_dir, "modelhubd.alive")


def alive(*args):
    # no database: the probe must not depend on it
    return s.ctl("alive", *args, env={"MODELHUB_DB_CONNINFO": "host=/nonexistent"})


r = alive()
t.is_(r.returncode, 1, "no modelhubd: not alive")
t.like(r.stderr, r"no .*modelhubd\.alive: modelhubd is not running", "  says so")
t.is_(alive("0").returncode, 2, "alive 0: usage error")

hub = s.start_hubd()
r = flows.poll(lambda: (lambda r: r if r.returncode == 0 else None)(alive()), 10, 0.2)
t.ok(r, "modelhubd running: alive (exit 0), without a database connection")
t.like(r.stdout if r else "", r"modelhubd pid %d alive: beat \d+ s ago \(limit %d s\)" % (hub.pid, HUNG),
       "  names the supervisor and the limit (hub.hung_seconds)")
time.sleep(HUNG + 1.5)
t.is_(alive().returncode, 0, "idle for longer than the limit: still alive (the loop beats while idle)")
s.stop_postgres()
time.sleep(HUNG + 1.5)
t.is_(alive().returncode, 0, "Postgres down for longer than the limit: still alive")
s.start_postgres()

os.kill(hub.pid, signal.SIGSTOP)
time.sleep(HUNG + 2)
r = alive()
t.is_(r.returncode, 1, "supervisor frozen (SIGSTOP): not alive")
t.like(r.stderr, r"modelhubd \(pid %d\) silent for \d+ s \(limit %d s\)" % (hub.pid, HUNG), "  says how long")
t.is_(alive("60").returncode, 0, "  alive 60: a longer limit on the command line passes")
os.kill(hub.pid, signal.SIGCONT)
t.ok(flows.poll(lambda: alive().returncode == 0, 10, 0.3), "resumed: alive again")

s.expect_crashes = True   # the SIGKILL below
os.kill(hub.pid, signal.SIGKILL)
hub.wait(10)
r = alive()
t.ok(r.returncode == 1 and "is gone" in r.stderr, "modelhubd killed (its file left behind): not alive")
p = s.start_hubd()
t.ok(flows.poll(lambda: alive().returncode == 0, 20, 0.3), "restarted: alive")
p.send_signal(signal.SIGTERM)
t.is_(p.wait(30), 0, "SIGTERM: modelhubd stops")
t.ok(not os.path.exists(alive_file), "  and removes its liveness file")
t.is_(alive().returncode, 1, "stopped: not alive")
t.done()
