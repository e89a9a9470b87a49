#!/usr/bin/python3
# 230-runner-concurrency.t — one runner process drives many requests at once
# (issue 15): 12 requests to a model whose /run sleeps 6 s all run together
# on one runner with one Postgres connection; a model's max_instances still
# bounds it, and its requests start in FIFO order; the runner's log tags
# each line with its own request. The 6 s model is bench/sleep-model.c (no
# CPU, starts at once), so instance start-up under load does not spread the
# calls out.
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
s = Stack(hubd=False, config={"hub.runners": "1", "hub.max_concurrent_requests": "64"})
anon = s.anon()


def add_model(mid, max_instances, *args, server=None):
    argv = (server or ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e"]) + [
        "--host", "{host}", "--port", "{port}"] + list(args)
    s.sql("INSERT INTO model (id, local_command, details, model_version, max_instances, idle_seconds)"
          " VALUES ($1, $2::text[], '{\"columns\":[\"mol_weight\"]}'::jsonb, 'v1', $3, 60)",
          mid, flows.argv_literal(argv), max_instances)


add_model("sleepy", 12, "--call-cost", "6", server=[os.path.join(BUILDDIR, "bench", "sleep-model-bench")])
add_model("fifo", 2, "--call-cost", "1")
s.start_hubd()
submit = functools.partial(flows.submit, t, s, anon)
N = 12


def sample(model):
    """(requests RUNNING, instances BUSY) of model, and the runner's Postgres connections."""
    row = s.sql("SELECT (SELECT count(*) FROM work_request WHERE model_id = $1 AND status = 'RUNNING'),"
                " (SELECT count(*) FROM model_instance WHERE model_id = $1 AND state = 'BUSY'),"
                " (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'runner%')", model)[0]
    return tuple(int(x) for x in row)


def drive(model, ids, timeout):
    """Poll until every request of ids ended; peaks of (running, busy, runner connections)."""
    peak = [0, 0, 0]
    deadline = time.time() + timeout
    while time.time() < deadline:
        cur = sample(model)
        peak = [max(a, b) for a, b in zip(peak, cur)]
        left = s.sql("SELECT count(*) FROM work_request WHERE id = ANY($1::bigint[])"
                     " AND status IN ('QUEUED', 'RUNNING')", "{%s}" % ",".join(map(str, ids)))[0][0]
        if left == "0":
            break
        time.sleep(0.2)
    return peak


# ---- many requests on one runner process
t0 = time.time()
ids = [submit("sleepy", ["C" * (k + 1)]) for k in range(N)]
peak = drive("sleepy", ids, 120)
took = time.time() - t0
st = s.sql("SELECT status, count(*) FROM work_request WHERE model_id = 'sleepy' GROUP BY status")
t.is_(st, [("COMPLETED", str(N))], "%d requests of a 6 s model all completed" % N)
t.is_(len(s.pids_of("runner")), 1, "  on one runner process")
t.is_(peak[1], N, "  %d model calls in flight at once (peak BUSY instances %d)" % (N, peak[1]))
t.ok(peak[2] == 1, "  through one Postgres connection of the runner (peak %d)" % peak[2])
t.ok(took < 6 * N / 3, "  in %.1f s, against %d s one at a time" % (took, 6 * N))
runs = s.sql("SELECT count(DISTINCT runner_id) FROM work_request WHERE model_id = 'sleepy'")[0][0]
t.is_(runs, "1", "  every request under the one runner id")
rec = s.sql("SELECT count(*) FROM work_request_result r JOIN work_request w ON w.id = r.request_id"
            " WHERE w.model_id = 'sleepy' AND r.record IS NOT NULL")[0][0]
t.is_(rec, str(N), "  one stored record per request")

# ---- max_instances and FIFO still hold
ids = [submit("fifo", ["CC"]) for _ in range(6)]
peak = drive("fifo", ids, 120)
t.ok(peak[1] <= 2, "max_instances 2 bounds the busy instances (peak %d)" % peak[1])
order = [int(x) for (x,) in s.sql("SELECT id FROM work_request WHERE model_id = 'fifo'"
                                  " ORDER BY started_at, id")]
t.is_(order, sorted(ids), "  its requests started in FIFO order")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE model_id = 'fifo' AND status = 'COMPLETED'")[0][0],
      "6", "  all completed")
inst = s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'fifo'")[0][0]
t.is_(inst, "2", "  on two warm instances, reused")

# ---- the log: each line of a request carries that request's id
log = open(s.logs["hubd"], errors="replace").read()
mixed = [ln for ln in log.splitlines() if "msg=\"request finished\"" in ln and "req=" not in ln]
t.is_(mixed, [], "log lines of requests keep their req= across task switches")
t.done()
