#!/usr/bin/python3
# 202-runner-failures.t — failure paths of the runners with real model
# servers: disabled model, a local_command that cannot run, server crash
# mid-request (one retry on a new instance, then MODEL_ERROR), OOM kill at
# the cgroup limit, never-ready instance (INSTANCE_START_TIMEOUT), chunk
# timeout (TIMEOUT, after a SIGHUP config reload), cancellation of a running
# request, admin stop of an instance (idle, and busy: the request goes on
# elsewhere), idle instances stopped after idle_seconds, whole-request
# deadline.
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
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "10",
                              "hub.instance_start_timeout": "4"})
SERVE = os.path.join(s.srcdir, "models", "serve.py")
anon = s.anon()


def add_model(mid, model, *args, mode="SYNC", mem=512, max_instances=2, idle=60, enabled=True):
    argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", model, "--host", "{host}",
            "--port", "{port}"] + list(args)
    arr = flows.argv_literal(argv)
    s.sql("INSERT INTO model (id, execution_mode, local_command, memory_request_mib,"
          " memory_limit_mib, max_instances, idle_seconds, enabled)"
          " VALUES ($1, $2, $3::text[], 64, $4::int, $5::int, $6::int, $7::boolean)",
          mid, mode, arr, mem, max_instances, idle, enabled)


submit = functools.partial(flows.submit, t, s, anon)
wait = functools.partial(flows.wait_request, s)


def nresults(rid):
    return int(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1", rid)[0][0])


mols = ["C" * (1 + i % 7) for i in range(30)]
add_model("crash3", "eos3b5e", "--crash-after-calls", "3")
add_model("crash2", "eos3b5e", "--crash-after-calls", "2")
add_model("oomy", "load", "--mib-per-input", "20", "--cpu-per-input", "0", mem=128)
add_model("never", "eos3b5e", "--never-ready")
add_model("slow", "load", "--cpu-per-input", "0.3", "--mib-per-input", "0", idle=1)
add_model("dis", "eos3b5e")
s.sql("INSERT INTO model (id, local_command) VALUES ('badcmd', ARRAY['/nonexistent/serve', '--port', '{port}'])")
s.start_hubd()

# ---- disabled while queued: a request that is already QUEUED when the model
# is disabled fails MODEL_DISABLED (never waits forever).
s.sql("UPDATE model SET enabled = false WHERE id = 'dis'")
sess = s.sql("SELECT id FROM session WHERE kind = 'ANON' ORDER BY id DESC LIMIT 1")[0][0]
rid = s.sql("WITH w AS (INSERT INTO work_request (model_id, anon_session_id, input_count)"
            " VALUES ('dis', $1::bigint, 1) RETURNING id),"
            " i AS (INSERT INTO work_request_input SELECT id, 1, 'CCO' FROM w)"
            " SELECT id FROM w", sess)[0][0]
s.sql("SELECT pg_notify('work_queued', 'dis')")
st = wait(rid, 20)
t.is_(st[:2], ("FAILED", "MODEL_DISABLED"), "queued request of a disabled model: FAILED MODEL_DISABLED")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'dis'"), [("0",)],
      "  no instance started for it")

# ---- crash on the 3rd call: 3 chunks, the 3rd is retried on a new instance
rid = submit("crash3", mols)
st = wait(rid)
t.is_(st[0], "COMPLETED", "server crash mid-request: retried once on a new instance (%s)" % (st,))
t.is_(nresults(rid), 30, "  all 30 results")
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
            rid), [("30", "30")], "  no duplicates")
t.is_(s.sql("SELECT termination_reason FROM model_instance WHERE model_id = 'crash3'"
            " AND state = 'TERMINATED'"), [("FAILED",)], "  the crashed instance ended FAILED")

# ---- crash on every 2nd call: the retry crashes too -> MODEL_ERROR
rid = submit("crash2", mols)
st = wait(rid)
t.is_(st[:2], ("FAILED", "MODEL_ERROR"), "second instance crash: FAILED MODEL_ERROR")
t.like(st[2] or "", "instance", "  detail names the instance failure")
t.is_(nresults(rid), 20, "  finished chunks kept (2 x 10)")
t.is_(s.sql("SELECT count(*) FROM work_request_result WHERE request_id = $1 AND error IS NOT NULL",
            rid), [("0",)], "  no input blamed for a dead instance")

# ---- OOM at the memory limit (cgroup or RSS watch)
rid = submit("oomy", mols)
st = wait(rid)
t.is_(st[:2], ("FAILED", "OOM_KILLED"), "instance over its memory limit: FAILED OOM_KILLED (%s)" % (st,))
inst = s.sql("SELECT id, termination_reason FROM model_instance WHERE model_id = 'oomy'")
t.is_([r[1] for r in inst], ["OOMKILLED"], "  instance termination_reason OOMKILLED")
t.ok(inst and s.sql("SELECT count(*) FROM instance_event WHERE instance_id = $1 AND kind = 'OOM_KILLED'",
                    inst[0][0]) == [("1",)], "  OOM_KILLED event recorded")

# ---- a command that cannot run (wrong local_command)
rid = submit("badcmd", ["CCO"])
st = wait(rid, 30)
t.is_(st[:2], ("FAILED", "MODEL_ERROR"), "local_command that cannot start: FAILED MODEL_ERROR")
t.like(st[2] or "", "exited before it was ready", "  detail says the instance never came up")
t.ok(s.sql("SELECT termination_reason FROM model_instance WHERE model_id = 'badcmd'") == [("FAILED",)],
     "  instance recorded FAILED")
t.like((s.sql("SELECT text FROM instance_log l JOIN model_instance i ON i.id = l.instance_id"
              " WHERE i.model_id = 'badcmd'") or [("",)])[0][0], "exec /nonexistent/serve failed",
       "  the cause is in the instance log")

# ---- never ready
t0 = time.time()
rid = submit("never", ["CCO"])
st = wait(rid, 30)
t.is_(st[:2], ("FAILED", "INSTANCE_START_TIMEOUT"), "never-ready instance: INSTANCE_START_TIMEOUT")
t.ok(time.time() - t0 < 15, "  within the configured 4 s (+ slack)")
t.is_(s.sql("SELECT state FROM model_instance WHERE model_id = 'never'"), [("TERMINATED",)],
      "  the instance was stopped")

# ---- cancel a running request: the runner stops sending chunks
rid = submit("slow", mols)  # 3 chunks x 10 x 0.3 s
st = wait(rid, 30, until=("RUNNING",))
time.sleep(1.0)
r = s.api("DELETE", "/api/requests/%s" % rid, token=anon)
t.ok(r.status in (200, 202, 204), "cancel accepted (%s)" % r.status)
time.sleep(5)
n1 = nresults(rid)
time.sleep(4)
t.is_(s.sql("SELECT status FROM work_request WHERE id = $1", rid), [("CANCELLED",)],
      "  status stays CANCELLED")
t.ok(n1 < 30 and nresults(rid) == n1, "  no further chunks after the cancel (%d results)" % n1)

# the cancelled call was cut short and may still run in the model: its
# instance is recycled, never handed to the next request busy (issue 17)
t.is_(s.sql("SELECT state, termination_reason FROM model_instance WHERE model_id = 'slow'"),
      [("TERMINATED", "STOPPED")], "  the instance of the cut call was recycled")

# ---- idle_seconds: the slow model's instance (idle 1 s) is stopped when idle
st = wait(submit("slow", ["CCO"]), 30)
t.is_(st[0], "COMPLETED", "a new slow request completes on a new instance")
deadline = time.time() + 15
while time.time() < deadline and s.sql(
        "SELECT count(*) FROM model_instance WHERE model_id = 'slow' AND state <> 'TERMINATED'") != [("0",)]:
    time.sleep(0.2)
t.is_(s.sql("SELECT termination_reason FROM model_instance WHERE model_id = 'slow' ORDER BY id"),
      [("STOPPED",), ("IDLE",)], "idle instance stopped after idle_seconds (reason IDLE)")

# ---- admin stop (stop_requested) of an idle instance
rid = submit("crash3", ["CCO"])
wait(rid)
# the request is COMPLETED before its instance is released to IDLE (the
# next statement of the runner): wait for it
deadline = time.time() + 15
iid = []
while time.time() < deadline and not iid:
    iid = s.sql("SELECT id FROM model_instance WHERE model_id = 'crash3' AND state = 'IDLE'")
    if not iid:
        time.sleep(0.1)
t.is_(len(iid), 1, "an idle crash3 instance")
if iid:
    pid = s.sql("SELECT pid FROM model_instance WHERE id = $1", iid[0][0])[0][0]
    s.sql("UPDATE model_instance SET stop_requested = true WHERE id = $1", iid[0][0])
    s.sql("SELECT pg_notify('instance_stop', $1)", iid[0][0])
    deadline = time.time() + 10
    while time.time() < deadline and s.sql("SELECT state FROM model_instance WHERE id = $1",
                                           iid[0][0]) != [("TERMINATED",)]:
        time.sleep(0.2)
    t.is_(s.sql("SELECT state, termination_reason FROM model_instance WHERE id = $1", iid[0][0]),
          [("TERMINATED", "STOPPED")], "stop_requested: instance stopped (STOPPED)")
    alive = True
    try:
        os.kill(int(pid), 0)
    except OSError:
        alive = False
    t.ok(not alive, "  its process is gone")
    kinds = [k for (k,) in s.sql("SELECT kind FROM instance_event WHERE instance_id = $1", iid[0][0])]
    t.ok("STOP_REQUESTED" in kinds and "TERMINATED" in kinds, "  STOP_REQUESTED and TERMINATED events")

# ---- admin stop of a BUSY instance: the call is aborted, the request goes
# on with a new instance and completes
rid = submit("slow", mols)
busy = None
deadline = time.time() + 20
while time.time() < deadline and not busy:
    busy = s.sql("SELECT id FROM model_instance WHERE model_id = 'slow' AND state = 'BUSY'")
    time.sleep(0.1)
t.ok(busy, "a busy slow instance")
if busy:
    s.sql("UPDATE model_instance SET stop_requested = true WHERE id = $1", busy[0][0])
    s.sql("SELECT pg_notify('instance_stop', $1)", busy[0][0])
st = wait(rid, 60)
t.is_(st[0], "COMPLETED", "request completes on another instance after an admin stop (%s)" % (st,))
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
            rid), [("30", "30")], "  30 results, no duplicates")
if busy:
    t.is_(s.sql("SELECT state, termination_reason FROM model_instance WHERE id = $1", busy[0][0]),
          [("TERMINATED", "STOPPED")], "  the stopped instance ended STOPPED")

# ---- chunk timeout after a SIGHUP reload (hub.chunk_timeout 1 s; a chunk takes 3 s)
s.set_config(hub__chunk_timeout="1")
os.kill(s.pid_of("hubd"), signal.SIGHUP)
time.sleep(1)
rid = submit("slow", mols)
st = wait(rid, 30)
t.is_(st[:2], ("FAILED", "TIMEOUT"), "chunk over hub.chunk_timeout: FAILED TIMEOUT (%s)" % (st,))

# ---- whole-request deadline (hub.request_timeout 2 s; 3 chunks of 3 s)
s.set_config(hub__chunk_timeout="600", hub__request_timeout="2")
os.kill(s.pid_of("hubd"), signal.SIGHUP)
time.sleep(1)
t0 = time.time()
rid = submit("slow", mols)
st = wait(rid, 30)
t.is_(st[:2], ("FAILED", "TIMEOUT"), "request over hub.request_timeout: FAILED TIMEOUT")
t.like(st[2] or "", "request deadline", "  detail names the request deadline")
t.ok(time.time() - t0 < 10, "  failed near the deadline (%.1f s)" % (time.time() - t0))
t.done()
