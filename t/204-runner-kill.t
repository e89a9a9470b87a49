#!/usr/bin/python3
# 204-runner-kill.t — a runner SIGKILLed mid-request: its lease expires, the
# janitor requeues the request, another runner completes it without
# duplicate results, the dead runner's instance is recorded LOST and the
# runner is restarted. A lease that expires at max_attempts fails
# ATTEMPTS_EXHAUSTED. SIGTERM of modelhubd hands a running request back
# (QUEUED, attempt not counted, results kept) and a new modelhubd finishes it.
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
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "10",
                              "hub.lease_seconds": "3", "hub.max_attempts": "3"})
anon = s.anon()
argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "load", "--host", "{host}",
        "--port", "{port}", "--cpu-per-input", "0.15", "--mib-per-input", "0"]
s.sql("INSERT INTO model (id, execution_mode, local_command, max_instances)"
      " VALUES ('slow', 'SYNC', $1::text[], 2)", flows.argv_literal(argv))
s.start_hubd()


def submit(inputs):
    r = s.api("POST", "/api/requests", token=anon, json={"model_id": "slow", "inputs": inputs})
    return (r.json or {}).get("id")


def row(rid):
    return s.sql("SELECT status, failure_reason, attempts, runner_id, done_count"
                 " FROM work_request WHERE id = $1", rid)[0]


def wait_for(cond, timeout=60):
    return flows.poll(cond, timeout, 0.1)


def alive(pid):
    """Running (a zombie waiting for our subreaper does not count)."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def nres(rid):
    return int(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1", rid)[0][0])


mols = ["C" * (1 + i % 6) for i in range(40)]

# ---- SIGKILL the runner after its first chunk
rid = submit(mols)
wait_for(lambda: nres(rid) >= 10)
st = row(rid)
t.is_(st[0], "RUNNING", "request running with results stored")
runner_pid = int(st[3].rsplit("/", 1)[1])
inst = s.sql("SELECT id, pid FROM model_instance WHERE state <> 'TERMINATED'")
os.kill(runner_pid, signal.SIGKILL)
done = wait_for(lambda: row(rid)[0] in ("COMPLETED", "FAILED") and row(rid), 90)
t.is_(done and done[0], "COMPLETED", "requeued after the lease and completed (%s)" % (done,))
t.is_(done and done[2], "2", "  attempts = 2")
t.ok(done and done[3] and not done[3].endswith("/%d" % runner_pid), "  by another runner (%s)" % (done and done[3]))
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
            rid), [("40", "40")], "  40 results, no duplicates")
r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=anon)
recs = [x["record"] for x in (r.json or {}).get("results", [])]
t.ok(len(recs) == 40 and all(x and x.get("n_atoms") == 1 + i % 6 for i, x in enumerate(recs)),
     "  values correct and in order")
if inst:
    lost = wait_for(lambda: s.sql("SELECT state, termination_reason FROM model_instance WHERE id = $1",
                                  inst[0][0]) == [("TERMINATED", "LOST")], 30)
    t.ok(lost, "the dead runner's instance is recorded LOST")
    t.ok(not alive(inst[0][1]), "  and its process died with the runner")
else:
    t.fail("an instance was running")
t.ok(wait_for(lambda: any("modelhubd: runner" in open("/proc/%s/cmdline" % p).read().replace("\0", " ")
                          for p in os.listdir("/proc") if p.isdigit() and p != str(runner_pid)
                          and os.path.exists("/proc/%s/cmdline" % p)), 10),
     "the runner was restarted")

# ---- ATTEMPTS_EXHAUSTED: a lease expiring at max_attempts fails the request
sess = s.sql("SELECT id FROM session WHERE kind = 'ANON' ORDER BY id DESC LIMIT 1")[0][0]
rid2 = s.sql("INSERT INTO work_request (model_id, anon_session_id, input_count, status, attempts,"
             " runner_id, lease_expires_at, started_at) VALUES ('slow', $1::bigint, 1, 'RUNNING', 3,"
             " 'gone/runner-0/1', now() - interval '1 minute', now()) RETURNING id", sess)[0][0]
s.sql("INSERT INTO work_request_input VALUES ($1::bigint, 1, 'CCO')", rid2)
st = wait_for(lambda: row(rid2)[0] == "FAILED" and row(rid2), 20)
t.is_(st and st[:2], ("FAILED", "ATTEMPTS_EXHAUSTED"), "expired lease at max_attempts: ATTEMPTS_EXHAUSTED")

# ---- SIGTERM: the running request is handed back, not counted, results kept
rid3 = submit(mols)
wait_for(lambda: nres(rid3) >= 10)
t0 = time.time()
s.stop_hubd()
t.ok(time.time() - t0 < 15, "modelhubd stops promptly on SIGTERM (%.1f s)" % (time.time() - t0))
st = row(rid3)
t.is_((st[0], st[2], st[3]), ("QUEUED", "0", None), "  running request handed back: QUEUED, attempt not counted")
kept = nres(rid3)
t.ok(10 <= kept < 40, "  %d results kept" % kept)
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE state <> 'TERMINATED'"), [("0",)],
      "  every instance stopped")
s.start_hubd()
st = wait_for(lambda: row(rid3)[0] == "COMPLETED" and row(rid3), 60)
t.is_(st and st[0], "COMPLETED", "a new modelhubd completes it")
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
            rid3), [("40", "40")], "  40 results, no duplicates")
t.is_(st and st[2], "1", "  attempts = 1")
t.done()
