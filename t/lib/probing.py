"""probing.py — what the parallel-probing tests share (t/221 SYNC, t/222
ASYNC): alkane inputs and their weights, the model's call log read across
its instances, overlapping calls, the probe width set by SIGHUP.

Runs in: the test process. Called by: t/221-parallel-probing.t,
t/222-parallel-probing-async.t.
Owns: nothing; reads the instances' call logs under the stack's var dir.
"""
import glob
import json
import os
import signal
import time

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
