#!/usr/bin/python3
# 389-kube-slow-api.t — a slow API server holds up only the request that waits for it (issue 15): with one runner, while one model's pod create is answered after 8 s (and later its pod delete after 6 s), requests of another model on the same runner keep completing at their normal speed; the slow create still succeeds and is neither retried nor duplicated.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
from kubestack import start, submit, wait_done, wait_for  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
CREATE_DELAY, DELETE_DELAY = 8, 6
# one runner: every request below runs on the same event loop
sim, s = start(hub={"hub.runners": "1", "kube.call_timeout_ms": "20000"})
anon = s.anon()
POD_CREATE = r"^/api/v1/namespaces/modelhub/pods$"


def model(mid, idle):
    s.sql("INSERT INTO model (id, execution_mode, image, image_tag, port, cpu_request_m, cpu_limit_m,"
          " memory_request_mib, memory_limit_mib, max_instances, idle_seconds)"
          " VALUES ($1, 'SYNC', 'modelhub/eos3b5e', 'latest', 80, 100, 1000, 64, 512, 1, $2)", mid, idle)


def faults(*fs):
    r = sim.api("POST", "/kubesim/faults", list(fs))
    assert r.status == 200, r.status


def faults_left():
    return sum(f["count"] for f in sim.api("GET", "/kubesim/faults").json()["items"])


def one(mid):
    """Submit one request of mid and wait for it: (status, seconds)."""
    t0 = time.time()
    st = wait_done(s, submit(s, anon, mid, ["CCO"]), 60)
    return st[0], time.time() - t0


def during(seconds, busy):
    """Requests of the warm model, one after another, for `seconds` while
    busy() holds: their times, and how many did not complete."""
    times, bad = [], 0
    end = time.time() + seconds
    while time.time() < end and busy():
        st, took = one("warm")
        times.append(took)
        bad += st != "COMPLETED"
    return times, bad


model("warm", 600)
model("slowpod", 0)
st, _ = one("warm")
t.is_(st, "COMPLETED", "warm model: first request starts its pod")
base = sorted(one("warm")[1] for _ in range(3))[1]
t.ok(base < 3, "a request on the warm pod alone: %.2f s (median of 3)" % base)

# ---- a pod create answered after CREATE_DELAY s
faults({"method": "POST", "path": POD_CREATE, "delay": CREATE_DELAY, "count": 1})
t0 = time.time()
slow = submit(s, anon, "slowpod", ["CCO"])
t.ok(wait_for(lambda: faults_left() == 0, 15), "the slow model's pod create reached the API server")


def creating():
    return s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'slowpod' AND state = 'REQUESTED'")[0][0] == "1"


times, bad = during(CREATE_DELAY - 2, creating)
t.ok(creating(), "  the slow create was still unanswered after the warm requests (%.1f s in)" % (time.time() - t0))
t.ok(len(times) >= 3, "  %d warm requests completed meanwhile (a blocking create: at most 1)" % len(times))
t.is_(bad, 0, "  all of them COMPLETED")
t.ok(times and max(times) < max(3.0, 3 * base),
     "  each at normal speed: slowest %.2f s (alone %.2f s; the create takes %d s)"
     % (max(times or [0]), base, CREATE_DELAY))
st = wait_done(s, slow, 60)
t.is_(st[:2], ("COMPLETED", None), "the slow model's request COMPLETED once its create was answered (%s)" % (st,))
t.ok(time.time() - t0 >= CREATE_DELAY - 0.5, "  not before the create's answer (%.1f s)" % (time.time() - t0))
n = s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'slowpod'")[0][0]
t.is_(n, "1", "  one instance: the slow create was not retried under it")

# ---- its pod delete (idle_seconds 0: stopped once the request ended) answered after DELETE_DELAY s
ended = lambda: s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'slowpod'"  # noqa: E731
                      " AND state = 'TERMINATED'")[0][0]
t.ok(wait_for(lambda: ended() == "1", 30), "the first slowpod instance ended")
faults({"method": "DELETE", "path": r"^/api/v1/namespaces/modelhub/pods/slowpod-", "delay": DELETE_DELAY,
        "count": 1})
st, _ = one("slowpod")
t.is_(st, "COMPLETED", "a second slowpod request COMPLETED; its pod is deleted next")
t.ok(wait_for(lambda: faults_left() == 0, 15), "  the slow delete reached the API server")
t1 = time.time()
times, bad = during(DELETE_DELAY - 2, lambda: ended() == "1")
t.ok(ended() == "1", "  the delete was still unanswered after the warm requests (%.1f s in)" % (time.time() - t1))
t.ok(len(times) >= 3 and bad == 0, "  %d warm requests COMPLETED meanwhile (%d not)" % (len(times), bad))
t.ok(times and max(times) < max(3.0, 3 * base), "  each at normal speed: slowest %.2f s" % max(times or [0]))
t.ok(wait_for(lambda: ended() == "2", 30), "the instance ended once the delete was answered")
t.done()
