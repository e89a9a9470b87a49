#!/usr/bin/python3
# 207-janitor.t — the janitor's sweeps: retention deletes requests older
# than hub.retention_days in batches (inputs and results go with them),
# keeps recent and running ones, deletes old terminated instance rows,
# deletes sessions past their absolute expiry, records the pass in job_run;
# queued requests of a disabled model fail MODEL_DISABLED before anything of
# it is ever computed.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, nginx=False, config={"hub.runners": "1", "hub.retention_days": "7"})
s.sql("INSERT INTO model (id) VALUES ('m')")
# 2500 old requests (3 batches), each with an input and a result
s.sql("WITH w AS (INSERT INTO work_request (model_id, anon_session_id, input_count, status, created_at)"
      " SELECT 'm', 1, 1, 'COMPLETED', now() - interval '8 days' FROM generate_series(1, 2500)"
      " RETURNING id),"
      " i AS (INSERT INTO work_request_input SELECT id, 1, 'CCO' FROM w)"
      " INSERT INTO work_request_result (request_id, ordinal, record) SELECT id, 1, '{}' FROM w")
old_queued = s.sql("INSERT INTO work_request (model_id, anon_session_id, input_count, status, created_at)"
                   " VALUES ('m', 1, 1, 'FAILED', now() - interval '30 days') RETURNING id")[0][0]
old_running = s.sql("INSERT INTO work_request (model_id, anon_session_id, input_count, status, created_at,"
                    " lease_expires_at, runner_id, attempts) VALUES ('m', 1, 1, 'RUNNING',"
                    " now() - interval '8 days', now() + interval '1 hour', 'x/runner-0/1', 1)"
                    " RETURNING id")[0][0]
recent = s.sql("INSERT INTO work_request (model_id, anon_session_id, input_count, status, created_at)"
               " SELECT 'm', 1, 1, 'COMPLETED', now() - interval '6 days' FROM generate_series(1, 3)"
               " RETURNING id")
s.sql("INSERT INTO model_instance (model_id, backend, state, termination_reason, started_at, terminated_at)"
      " VALUES ('m', 'local', 'TERMINATED', 'IDLE', now() - interval '9 days', now() - interval '8 days'),"
      " ('m', 'local', 'TERMINATED', 'IDLE', now() - interval '2 days', now() - interval '2 days')")
s.sql("INSERT INTO session (token_hash, kind, expires_at, absolute_expires_at) VALUES"
      " ('\\x01', 'ANON', now() - interval '2 days', now() - interval '1 day'),"
      " ('\\x02', 'ANON', now() + interval '1 hour', now() + interval '1 day')")
# a disabled model with a queued request and its only runner kept busy elsewhere
s.sql("INSERT INTO model (id, enabled) VALUES ('off', false)")
dis = s.sql("INSERT INTO work_request (model_id, anon_session_id, input_count) VALUES ('off', 1, 1)"
            " RETURNING id")[0][0]

s.start_hubd()
deadline = time.time() + 30
while time.time() < deadline and "retention pass" not in open(s.logs["hubd"]).read():
    time.sleep(0.2)
time.sleep(0.5)
t.like(open(s.logs["hubd"]).read(), r"janitor days=7 requests=2501 instances=1 sessions=\d",
       "janitor logs one retention pass at start")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE model_id = 'm' AND created_at < now() - interval '7 days'"
            " AND status <> 'RUNNING'"), [("0",)], "requests older than 7 days deleted (2501, in batches)")
t.is_(s.sql("SELECT count(*) FROM work_request_input i WHERE NOT EXISTS"
            " (SELECT 1 FROM work_request w WHERE w.id = i.request_id)"), [("0",)],
      "  their inputs went with them")
t.is_(s.sql("SELECT count(*) FROM work_request_result"), [("0",)], "  and their results")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE id = ANY($1::bigint[])",
            "{" + ",".join(r[0] for r in recent) + "}"), [("3",)], "recent requests kept")
t.is_(s.sql("SELECT status FROM work_request WHERE id = $1", old_running), [("RUNNING",)],
      "an old request still running is kept")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE id = $1", old_queued), [("0",)],
      "a 30-day-old failed request is gone")
t.is_(s.sql("SELECT count(*) FROM model_instance"), [("1",)], "old terminated instance rows deleted, recent kept")
t.is_(s.sql("SELECT encode(token_hash, 'hex') FROM session"), [("02",)], "expired session deleted, live kept")
t.is_(s.sql("SELECT count(*) FROM job_run WHERE job = 'retention'"), [("1",)], "pass recorded in job_run")
deadline = time.time() + 15
while time.time() < deadline and s.sql("SELECT status FROM work_request WHERE id = $1", dis)[0][0] == "QUEUED":
    time.sleep(0.2)
t.is_(s.sql("SELECT status, failure_reason FROM work_request WHERE id = $1", dis),
      [("FAILED", "MODEL_DISABLED")], "queued request of a disabled model: FAILED MODEL_DISABLED")
t.done()
