#!/usr/bin/python3
# 231-runner-reload.t — concurrency and the runner count change without a
# restart (issue 15): SIGHUP with a new hub.max_concurrent_requests lets the
# same runner process run more requests at once; a new hub.runners adds or
# retires runner processes while the others keep running.
import functools
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
s = Stack(hubd=False, config={"hub.runners": "1", "hub.max_concurrent_requests": "2"})
anon = s.anon()
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e", "--host", "{host}",
        "--port", "{port}", "--call-cost", "5"]
s.sql("INSERT INTO model (id, local_command, details, model_version, max_instances, idle_seconds)"
      " VALUES ('sleepy', $1::text[], '{\"columns\":[\"mol_weight\"]}'::jsonb, 'v1', 8, 60)",
      flows.argv_literal(argv))
hubd = s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)


def running():
    return int(s.sql("SELECT count(*) FROM work_request WHERE status = 'RUNNING'")[0][0])


def peak_running(secs):
    peak, deadline = 0, time.time() + secs
    while time.time() < deadline:
        peak = max(peak, running())
        time.sleep(0.2)
    return peak


def hup(**kv):
    s.set_config(**kv)
    os.kill(hubd.pid, signal.SIGHUP)


runner = flows.wait_for(t, "a runner", lambda: s.pids_of("runner") or None, 30)
ids = [submit("sleepy", ["C" * (k + 1)]) for k in range(6)]
t.ok(flows.wait_for(t, "a running request", lambda: running() > 0 or None, 60), "requests run")
t.is_(peak_running(3), 2, "hub.max_concurrent_requests 2: two requests at once")

hup(hub__max_concurrent_requests="6")
peak = peak_running(6)
t.ok(peak >= 4, "after SIGHUP with 6: %d requests at once" % peak)
t.is_(s.pids_of("runner"), runner, "  the same runner process (no restart)")
log = open(s.logs["hubd"], errors="replace").read()
t.like(log, r"max_tasks=6 msg=\"config reloaded\"", "  the runner logged its new limit")
done = flows.wait_for(t, "the six requests", lambda: s.sql(
    "SELECT count(*) FROM work_request WHERE status = 'COMPLETED'") == [("6",)] or None, 90)
t.ok(done, "  all six completed")

# ---- the runner count
hup(hub__runners="2")
two = flows.wait_for(t, "two runners", lambda: len(s.pids_of("runner")) == 2 or None, 30)
t.ok(two, "SIGHUP with hub.runners 2 starts a second runner")
t.ok(runner[0] in s.pids_of("runner"), "  the first runner kept running")
ids = [submit("sleepy", ["CC"]) for _ in range(4)]
st = [flows.wait_request(s, i, 90)[0] for i in ids]
t.is_(st, ["COMPLETED"] * 4, "  requests complete with two runners")
hup(hub__runners="1")
one = flows.wait_for(t, "one runner", lambda: len(s.pids_of("runner")) == 1 or None, 30)
t.ok(one, "SIGHUP with hub.runners 1 retires the second")
t.ok(runner[0] in s.pids_of("runner"), "  the first runner is the one left")
rid = submit("sleepy", ["CCC"])
t.is_(flows.wait_request(s, rid, 60)[0], "COMPLETED", "  and still serves")
t.ok(hubd.poll() is None, "modelhubd was never restarted")
t.done()
