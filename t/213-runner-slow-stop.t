#!/usr/bin/python3
# 213-runner-slow-stop.t — stopping a local instance that ignores SIGTERM (SIGKILL after the 5 s grace) holds up no other request of its runner (issue 15): while the idle instance is being stopped, a request in flight on another model ends on time and new requests are claimed and complete at their normal speed.
import functools
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack, BUILDDIR  # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1", "hub.max_concurrent_requests": "16"})
anon = s.anon()
SLEEP = os.path.join(BUILDDIR, "bench", "sleep-model-bench")
GRACE = 5  # RUNNER_STOP_GRACE_MS


def add_model(mid, argv, idle):
    s.sql("INSERT INTO model (id, local_command, details, model_version, max_instances, idle_seconds)"
          " VALUES ($1, $2::text[], '{\"columns\":[\"mol_weight\"]}'::jsonb, 'v1', 1, $3)",
          mid, flows.argv_literal(argv), idle)


# SIG_IGN survives exec: the model server never hears the SIGTERM
add_model("stubborn", ["/bin/sh", "-c", "trap '' TERM; exec %s --host {host} --port {port} --call-cost 0.1" % SLEEP],
          1)
add_model("quick", [SLEEP, "--host", "{host}", "--port", "{port}", "--call-cost", "0.2"], 600)
add_model("long", [SLEEP, "--host", "{host}", "--port", "{port}", "--call-cost", "3"], 600)
s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)


def one(mid):
    t0 = time.time()
    st = flows.wait_request(s, submit(mid, ["CC"]), 60)
    return st[0], time.time() - t0


def state():
    r = s.sql("SELECT state FROM model_instance WHERE model_id = 'stubborn'")
    return r[0][0] if r else None


t.is_(one("quick")[0], "COMPLETED", "quick model warm")
t.is_(one("long")[0], "COMPLETED", "long model warm")
base = sorted(one("quick")[1] for _ in range(3))[1]
t.is_(one("stubborn")[0], "COMPLETED", "a request on the model that ignores SIGTERM")
t.ok(flows.poll(lambda: state() == "TERMINATING", 20, 0.02), "its instance idles out: being stopped")
t0 = time.time()
longreq = submit("long", ["CC"])
times, bad = [], 0
while time.time() - t0 < GRACE - 1.5 and state() == "TERMINATING":
    st, took = one("quick")
    times.append(took)
    bad += st != "COMPLETED"
during = state() == "TERMINATING"
t.ok(during, "  still being stopped after the requests below (%.1f s in)" % (time.time() - t0))
t.ok(len(times) >= 3 and bad == 0,
     "  %d requests of another model claimed and COMPLETED meanwhile (%d not; a blocking stop: at most 1)"
     % (len(times), bad))
t.ok(times and max(times) < max(2.5, 3 * base),
     "  each at normal speed: slowest %.2f s (alone %.2f s)" % (max(times or [0]), base))
st = flows.wait_request(s, longreq, 30)
took = float(s.sql("SELECT extract(epoch FROM finished_at - created_at) FROM work_request WHERE id = $1",
                   longreq)[0][0])
t.is_(st[0], "COMPLETED", "a 3 s request in flight during the stop COMPLETED")
t.ok(took < 3 + 2.5, "  on time: %.2f s from submission to finish" % took)
t.ok(flows.poll(lambda: state() == "TERMINATED", 20, 0.05), "the stubborn instance ended")
stopped = time.time() - t0
t.ok(stopped >= GRACE - 1.5, "  after its grace (%.1f s after the request of long was sent)" % stopped)
r = s.sql("SELECT termination_reason FROM model_instance WHERE model_id = 'stubborn'")[0][0]
t.is_(r, "IDLE", "  recorded as an idle stop")
log = open(s.logs["hubd"], errors="replace").read()
t.ok("did not stop in time, killing" in log, "  killed after the grace (log)")
t.done()
