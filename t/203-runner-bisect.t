#!/usr/bin/python3
# 203-runner-bisect.t — one bad molecule never fails a request (issue 8):
# with --strict demo models (whole-batch 500 / failed job, like ersilia-pack)
# a 100-input request with 3 invalid SMILES at different positions completes:
# 97 correct records in order, 3 null records with an error, calls within
# 2n; an all-invalid request ends FAILED MODEL_ERROR. A model registered by
# its own command line (local_command) and one without (built-in demo
# default) give the same results. In chunks of 10, rejected chunks are
# bisected while the next chunk's call (started before the previous answer
# is stored) is under way: nothing lost, doubled or reordered.
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
s = Stack(hubd=False, config={"hub.runners": "2", "hub.chunk_size": "100"})
anon = s.anon()


def add_model(mid, model, *args, mode="SYNC", command=True):
    argv = ["/usr/bin/python3", "{models_dir}/serve.py", "--model", model, "--host", "{host}",
            "--port", "{port}"] + list(args)
    arr = flows.argv_literal(argv) if command else None
    s.sql("INSERT INTO model (id, execution_mode, local_command, details)"
          " VALUES ($1, $2, $3::text[], '{\"columns\":[\"mol_weight\"]}')", mid, mode, arr)


submit = functools.partial(flows.submit, t, s, anon)
wait = functools.partial(flows.wait_request, s, timeout=120)


def weight(n):
    return 12.011 * n + 1.008 * (2 * n + 2)


add_model("strict-sync", "eos3b5e", "--strict")
add_model("strict-async", "eos3b5e", "--strict", mode="ASYNC")
add_model("eos3b5e", "eos3b5e", command=False)     # built-in default command
add_model("bycommand", "eos3b5e")                  # registered by its command line
s.start_hubd()

BAD = {6: "not_a_smiles", 49: "C1CC", 93: "Xx(("}
inputs = ["C" * (1 + i % 9) for i in range(100)]
for pos, text in BAD.items():
    inputs[pos] = text

for model in ("strict-sync", "strict-async"):
    rid = submit(model, inputs)
    st = wait(rid)
    t.is_(st[0], "COMPLETED", "%s: 100 inputs with 3 invalid complete (%s)" % (model, st))
    r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=anon)
    res = (r.json or {}).get("results", [])
    t.is_(len(res), 100, "  100 results")
    good = [i for i in range(100) if i not in BAD]
    t.ok(len(res) == 100 and all(res[i]["record"] and
                                 abs(res[i]["record"]["mol_weight"] - weight(1 + i % 9)) < 0.05
                                 for i in good), "  97 correct records in input order")
    t.ok(len(res) == 100 and all(res[i]["record"] is None and res[i].get("error") for i in BAD),
         "  the 3 invalid inputs: null record + error")
    t.ok(len(res) == 100 and all(res[i]["input"] == inputs[i] for i in range(100)), "  inputs echoed in order")
    calls, extra, errs = map(int, s.sql("SELECT model_calls, extra_calls, error_count FROM work_request"
                                        " WHERE id = $1", rid)[0])
    t.ok(calls <= 2 * 100, "  %d model calls for 100 inputs (bound 2n)" % calls)
    t.is_(extra, calls - 1, "  extra calls reported (%d)" % extra)
    t.is_(errs, 3, "  error_count 3")
    r = s.api("GET", "/api/requests/%s/result?format=csv" % rid, token=anon)
    lines = r.text.split("\r\n")
    t.is_(lines[1 + 6], "not_a_smiles,", "  CSV leaves the cells of a failed input empty")

for model in ("strict-sync", "strict-async"):
    rid = submit(model, ["bad1((", "bad2))", "Xx"])
    st = wait(rid)
    t.is_(st[:2], ("FAILED", "MODEL_ERROR"), "%s: every input invalid -> FAILED MODEL_ERROR" % model)
    t.like(st[2] or "", "every input failed", "  with a clear reason")

# ---- several chunks: the runner starts the next chunk's call before it
# parses and stores the previous answer; a rejected chunk among them is
# bisected while the next one's call is under way, and nothing is lost,
# doubled or reordered
s.set_config(hub__chunk_size="10")
os.kill(s.pid_of("hubd"), signal.SIGHUP)
time.sleep(1.5)
BAD2 = {15: "bad((", 33: "Xx))"}
inputs2 = ["C" * (1 + i % 7) for i in range(50)]
for pos, text in BAD2.items():
    inputs2[pos] = text
rid = submit("strict-sync", inputs2)
st = wait(rid)
t.is_(st[0], "COMPLETED", "50 inputs in chunks of 10, 2 rejected chunks: COMPLETED (%s)" % (st,))
r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=anon)
res = (r.json or {}).get("results", [])
t.ok(len(res) == 50 and all(res[i]["input"] == inputs2[i] for i in range(50)),
     "  50 results, inputs in order")
t.ok(len(res) == 50 and all(res[i]["record"] and
                            abs(res[i]["record"]["mol_weight"] - weight(1 + i % 7)) < 0.05
                            for i in range(50) if i not in BAD2), "  48 correct records")
t.ok(len(res) == 50 and all(res[i]["record"] is None and res[i].get("error") for i in BAD2),
     "  the 2 rejected inputs: null record + error")
t.is_(s.sql("SELECT count(*), count(DISTINCT ordinal) FROM work_request_result WHERE request_id = $1",
            rid), [("50", "50")], "  one result row per input")
calls, extra, errs = map(int, s.sql("SELECT model_calls, extra_calls, error_count FROM work_request"
                                    " WHERE id = $1", rid)[0])
t.ok(7 <= calls <= 5 + 2 * 18, "  %d model calls: 5 chunks, bisection of 2 (bound 2n-1 each)" % calls)
t.is_(extra, calls - 5, "  extra calls = calls - chunks (%d)" % extra)
t.is_(errs, 2, "  error_count 2")

mols = ["CCO", "c1ccccc1", "CC(=O)O", "bad(("]
out = {}
for model in ("eos3b5e", "bycommand"):
    rid = submit(model, mols)
    st = wait(rid)
    t.is_(st[0], "COMPLETED", "%s completes" % model)
    out[model] = s.sql("SELECT ordinal, record::text FROM work_request_result WHERE request_id = $1"
                       " ORDER BY ordinal", rid)
t.ok(out["eos3b5e"] and out["eos3b5e"] == out["bycommand"],
     "a model registered by local_command serves exactly like the built-in one")
t.done()
