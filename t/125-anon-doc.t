#!/usr/bin/python3
# 125-anon-doc.t — runs the ```sh blocks of docs/anonymous-requests.md exactly
# as written (only MODELHUB_URL is set) against the real stack with modelhubd
# and the demo models, and checks the downloaded molecular weights.
import csv
import io
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
srcdir = os.environ.get("top_srcdir",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
with open(os.path.join(srcdir, "docs", "anonymous-requests.md")) as f:
    doc = f.read()
blocks = re.findall(r"^```sh\n(.*?)^```$", doc, re.S | re.M)
t.ok(len(blocks) >= 5, "the doc has the sh blocks (url, token, file, submit, poll, download)")
script = "\n".join(blocks)
for what, pat in (("anonymous token", r"/api/auth/anon"),
                  ("CSV submit on the model path", r"/api/models/eos3b5e/requests"),
                  ("poll", r"/api/requests/\$REQ\""),
                  ("CSV download", r"/result\?format=csv")):
    t.like(script, pat, "doc shows: %s" % what)
t.ok("127.0.0.1:8080" in script and "MODELHUB_URL" in script,
     "the base URL is a variable with the run-local default")

s = Stack(hubd=True)
s.add_demo_models()
work = tempfile.mkdtemp(prefix="anon-doc-", dir=s.tmp)
env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
env["MODELHUB_URL"] = s.url
try:
    p = subprocess.run(["sh", "-eu", "-c", script], cwd=work, env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240)
    rc, out, err = p.returncode, p.stdout, p.stderr
except subprocess.TimeoutExpired as e:
    rc, out, err = "timeout", e.stdout or "", e.stderr or ""
if not t.is_(rc, 0, "the documented commands run without error"):
    t.diag(out)
    t.diag(err)
    s.show_logs()
t.like(out, r"token: received", "a token was received")
t.like(out, r"request: \d+", "a request id was printed")
t.like(out, r"status: COMPLETED", "polling ended with COMPLETED")

rows = []
path = os.path.join(work, "results.csv")
if os.path.exists(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
t.is_(rows[:1], [["key", "input", "mol_weight"]],
      "results.csv header: key,input,mol_weight (the name column as key)")
got = {r[1]: r[2] for r in rows[1:] if len(r) == 3}
t.is_([r[:2] for r in rows[1:]], [["ethanol", "CCO"], ["benzene", "c1ccccc1"],
                                  ["aspirin", "CC(=O)Oc1ccccc1C(=O)O"]],
      "one row per molecule with its name, in file order, header line not a row")
t.ok(abs(float(got.get("CCO") or 0) - 46.07) < 0.01, "CCO -> 46.07 within 0.01")
t.ok(abs(float(got.get("c1ccccc1") or 0) - 78.11) < 0.01, "benzene -> 78.11")
t.ok(abs(float(got.get("CC(=O)Oc1ccccc1C(=O)O") or 0) - 180.16) < 0.01, "aspirin -> 180.16")

# Both documented submits (text/csv and multipart) made an anonymous request.
st = s.sql("SELECT status, input_count, has_header, header, user_id IS NULL "
           "FROM work_request ORDER BY id")
t.is_(len(st), 2, "two requests: the CSV body and the form upload")
t.ok(all(x[1:] == ("3", "t", "smiles,name", "t") for x in st),
     "both anonymous, 3 inputs, header kept apart (%s)" % (st,))

# The example output printed in the doc matches what the hub really gives.
m = re.search(r"```text\n(key,input,mol_weight\n.*?)```", doc, re.S)
t.is_(m and m.group(1).strip().split("\n"),
      [",".join(r) for r in rows] if rows else None, "the doc's sample results.csv is real")

t.done()
