#!/usr/bin/python3
# 210-supervisor-pg-stall.t — modelhubd's supervisor never waits on
# Postgres: with every Postgres process stopped (SIGSTOP) a SIGKILLed runner
# and janitor are restarted within their crash back-off; per-role exit
# handling (exit 0 after SIGTERM is a clean exit, SIGKILL a counted crash),
# the dealer child owns the hub_server row and it resumes after SIGCONT.
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack, descendants  # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, nginx=False, config={"hub.runners": "2"})


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
                out[f.read().replace("\0", " ").strip()] = int(p)
        except (OSError, IndexError, ValueError):
            pass
    return out


def replaced(sup, title, old, timeout):
    return flows.poll(lambda: (lambda p: p if p and p != old else None)(children(sup).get(title)),
                      timeout, 0.05)


def log_lines(pattern):
    with open(s.logs["hubd"]) as f:
        return [ln for ln in f if re.search(pattern, ln)]


hub = s.start_hubd()
sup = hub.pid
want = ["modelhubd: dealer", "modelhubd: janitor", "modelhubd: runner 0", "modelhubd: runner 1"]
kids = flows.poll(lambda: (lambda c: c if all(w in c for w in want) else None)(children(sup)), 20, 0.05)
t.ok(kids, "supervisor forked the dealer, two runners and the janitor (%s)" % sorted(kids or {}))
kids = kids or {}
t.ok(flows.poll(lambda: s.sql("SELECT pid FROM hub_server") == [(str(sup),)], 15, 0.1),
     "the dealer wrote the hub_server row with the supervisor's pid")

# ---- per-role exit handling: SIGTERM -> exit 0 (clean), SIGKILL -> crash
jan = kids.get("modelhubd: janitor")
os.kill(jan, signal.SIGTERM)
jan2 = replaced(sup, "modelhubd: janitor", jan, 10)
t.ok(jan2, "a janitor stopped with SIGTERM is restarted")
t.ok(log_lines(r"role=janitor .*exit=clean status=0 .*msg=\"janitor exited, restarting\""),
     "  logged as a clean exit (exit=clean status=0)")
t.ok(not log_lines(r"role=janitor .*crashes=[1-9]"), "  and not counted as a crash")
run1 = kids.get("modelhubd: runner 1")
os.kill(run1, signal.SIGKILL)
t.ok(replaced(sup, "modelhubd: runner 1", run1, 10), "a SIGKILLed runner is restarted")
t.ok(log_lines(r"role=runner index=1 .*exit=crash signal=9 .*crashes=1 errors=0 .*runner died"),
     "  logged as a crash with its signal and count")

# ---- Postgres stalled: every postgres process stopped
pg = s.pid_of("postgres")
pg_pids = [pg] + descendants(pg)
run0 = children(sup).get("modelhubd: runner 0")
jan = children(sup).get("modelhubd: janitor")
try:
    for p in pg_pids:
        os.kill(p, signal.SIGSTOP)
    time.sleep(1.0)  # the dealer and the runners are now stuck in libpq
    t0 = time.time()
    os.kill(run0, signal.SIGKILL)
    new_run0 = replaced(sup, "modelhubd: runner 0", run0, 6)
    d_run = time.time() - t0
    t.ok(new_run0, "Postgres stopped: a SIGKILLed runner is restarted (%.1f s)" % d_run)
    t.ok(d_run < 3.5, "  within its crash back-off (1 s), not after Postgres returns")
    t0 = time.time()
    os.kill(jan, signal.SIGKILL)
    new_jan = replaced(sup, "modelhubd: janitor", jan, 6)
    t.ok(new_jan, "  so is a SIGKILLed janitor (%.1f s)" % (time.time() - t0))
    t.ok(all(os.path.exists("/proc/%d" % p) and
             open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0] == "T" for p in pg_pids[:1]),
         "  while Postgres was still stopped")
finally:
    for p in pg_pids:
        try:
            os.kill(p, signal.SIGCONT)
        except OSError:
            pass

before = s.sql("SELECT heartbeat_at FROM hub_server")
t.ok(flows.poll(lambda: s.sql("SELECT heartbeat_at FROM hub_server") != before, 25, 0.5),
     "after SIGCONT the dealer's hub_server heartbeat moves again")
t.ok(flows.poll(lambda: all(w in children(sup) for w in want), 10, 0.1), "every child is running")
os.kill(sup, signal.SIGTERM)
t.is_(hub.wait(timeout=40), 0, "SIGTERM: supervisor exits 0")
t.is_(children(sup), {}, "  no children left")
t.done()
