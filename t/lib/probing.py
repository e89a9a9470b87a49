"""probing.py — what the parallel-probing tests share (t/221 SYNC, t/222
ASYNC): the stack with the --strict demo model (Probing.start), alkane
inputs and their weights, the model's call log read across its instances,
overlapping calls, the probe width set by SIGHUP.

Runs in: the test process. Called by: t/221-parallel-probing.t,
t/222-parallel-probing-async.t.
Owns: nothing; reads the instances' call logs under the stack's var dir.
"""
import glob
import json
import os
import signal
import functools
import time

import flows
from stack import Stack

CALLS = "calls.log"  # each instance writes it in its own directory (its cwd)


def valid(n):
    """n alkanes C, CC, ... C9, repeated."""
    return ["C" * (1 + i % 9) for i in range(n)]


def weight(smi):
    """Molecular weight of an alkane C...C."""
    n = len(smi)
    return 12.011 * n + 1.008 * (2 * n + 2)


def argv(*extra):
    """The --strict demo model's command, logging its calls (0.3 s a call, 0.3 s more failed)."""
    return ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e", "--host", "{host}",
            "--port", "{port}", "--strict", "--call-cost", "0.3", "--fail-cost", "0.3",
            "--call-log", CALLS] + list(extra)


class Probing:
    def __init__(self, s, token, model):
        self.s, self.token, self.model = s, token, model

    @classmethod
    def start(cls, t, model, mode, max_instances):
        """A stack (2 runners, chunks of 100) running the --strict demo
        model (argv()) as model in mode (SYNC or ASYNC) with max_instances
        and idle_seconds 600; the Probing of an anonymous caller, with
        .submit and .wait (240 s) bound to it."""
        s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "100"})
        s.sql("INSERT INTO model (id, execution_mode, local_command, details, max_instances,"
              " idle_seconds) VALUES ($1, $2, $3::text[], $4::jsonb, $5, 600)", model, mode,
              flows.argv_literal(argv()), '{"columns":["mol_weight"],"input":"Compound"}',
              max_instances)
        s.start_hubd()
        pr = cls(s, s.anon(), model)
        pr.submit = functools.partial(flows.submit, t, s, pr.token)
        pr.wait = functools.partial(flows.wait_request, s, timeout=240)
        return pr

    def row(self, rid):
        return self.s.api("GET", "/api/requests/%s" % rid, token=self.token).json or {}

    def results(self, rid):
        return (self.s.api("GET", "/api/requests/%s/result?format=json" % rid,
                           token=self.token).json or {}).get("results", [])

    def idle(self):
        return int(self.s.sql("SELECT count(*) FROM model_instance WHERE model_id = $1"
                              " AND state = 'IDLE'", self.model)[0][0])

    def busy_for(self, rid):
        return int(self.s.sql("SELECT count(*) FROM model_instance WHERE model_id = $1"
                              " AND state = 'BUSY' AND current_request_id = $2", self.model, rid)[0][0])

    def calls_of(self, t0, t1):
        """The model's calls (or ASYNC jobs) between two wall-clock times."""
        out = []
        for path in glob.glob(os.path.join(self.s.var_dir, "instances", "*", CALLS)):
            with open(path) as f:
                for line in f:
                    c = json.loads(line)
                    if c["start"] >= t0 and c["end"] <= t1:
                        out.append(c)
        return out

    def set_width(self, w):
        self.s.set_config(hub__probe_width=str(w))
        os.kill(self.s.pid_of("hubd"), signal.SIGHUP)
        time.sleep(1.5)


def overlaps(calls):
    """Pairs of calls of different instances that ran at the same time."""
    n = 0
    for i, a in enumerate(calls):
        for b in calls[i + 1:]:
            if a["pid"] != b["pid"] and a["start"] < b["end"] and b["start"] < a["end"]:
                n += 1
    return n


def compare_widths(t, pr, submit, wait, admin, inputs, bad, reason, wide, calls="calls"):
    """The same request (inputs, bad = {position: input only the model
    rejects}) at probe width `wide` and at 1, each checked: COMPLETED, every
    good input its own record in order, every bad one a null record and a
    reason matching `reason`, calls within plain halving's worst case (2n - 1
    per chunk of n, chunks of 100), the call log holding every call, the
    `wide` warm instances IDLE again; then the wide run spread over several
    instances with overlapping calls and took less time than the serial one."""
    s, n = pr.s, len(inputs)
    chunks = (n + 99) // 100
    runs = {}
    for width in (wide, 1):
        pr.set_width(width)
        s.api("DELETE", "/api/models/%s/cache" % pr.model, token=admin)   # forget the bad inputs
        t0 = time.time()
        rid = submit(pr.model, inputs)
        st = wait(rid)
        t1 = time.time()
        r, res = pr.row(rid), pr.results(rid)
        secs = float(s.sql("SELECT extract(epoch FROM finished_at - started_at) FROM work_request"
                           " WHERE id = $1", rid)[0][0])
        log = pr.calls_of(t0, t1)
        runs[width] = (secs, len({c["pid"] for c in log}), overlaps(log))
        t.is_(st[0], "COMPLETED", "probe width %d: %d inputs, %d only the model rejects: COMPLETED"
              % (width, n, len(bad)))
        t.ok(len(res) == n and all(res[i]["record"] and
                                   abs(res[i]["record"].get("mol_weight", 0) - weight(inputs[i])) < 0.05
                                   for i in range(n) if i not in bad),
             "  %d records, each its own input's (molecular weight), in input order" % (n - len(bad)))
        t.ok(len(res) == n and all(res[p]["record"] is None and reason.match(res[p]["error"] or "")
                                   for p in bad),
             "  each bad input: null record and the model's reason: %s"
             % sorted({res[p]["error"] for p in bad if p < len(res)}))
        made = r.get("model_calls", 0)
        t.ok(chunks < made <= 2 * n - chunks and r.get("extra_calls") == made - chunks,
             "  %d %s (%d extra), within halving's worst case" % (made, calls, r.get("extra_calls", -1)))
        t.is_(len(log), made, "  the model's call log has every one")
        t.ok(flows.wait_for(t, "the borrowed instances IDLE again", lambda: pr.idle() == wide, timeout=30),
             "  the borrowed instances are IDLE again")
    par, ser = runs[wide], runs[1]
    t.ok(par[1] >= 2 and par[2] > 0,
         "width %d: %s on %d instances, %d pairs of different instances' %s overlapping"
         % (wide, calls, par[1], par[2], calls))
    t.ok(ser[1] == 1 and ser[2] == 0, "width 1: all on one instance, none overlapping (%d, %d)"
         % (ser[1], ser[2]))
    t.ok(par[0] < 0.85 * ser[0], "width %d took %.1f s, width 1 %.1f s: less time (%.2fx)"
         % (wide, par[0], ser[0], par[0] / ser[0]))
