#!/usr/bin/python3
# 142-ersilia-client.t — runs t/lib/ersilia_client.py, a script that uses the
# old Ersilia hub's client API the way its documented Python client does
# (python3-requests, anonymous session, submit, poll, write result lines),
# against the real stack with modelhubd: print_models, then a header-less
# 100-molecule file through eos3b5e, output checked against RDKit.
import csv
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
lib = os.path.join(os.environ.get("top_srcdir", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib")
have = subprocess.run(["/usr/bin/python3", "-c", "import requests"]).returncode == 0
if not have:
    t.skip_all("python3-requests is not installed")
s = Stack(hubd=True)
s.add_demo_models()
env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
env.update(ERSILIA_POLL_SECONDS="0.5", ERSILIA_TIMEOUT_SECONDS="240")


def client(*args):
    p = subprocess.run(["/usr/bin/python3", os.path.join(lib, "ersilia_client.py"), s.url] +
                       list(args), env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        t.diag("client %s: rc %s\n%s%s" % (args, p.returncode, p.stdout, p.stderr))
    return p


p = client("print_models")
t.is_(p.returncode, 0, "print_models runs")
t.like(p.stdout, r"(?m)^eos3b5e  \|  \[x\]$", "  lists eos3b5e as enabled")

smiles = []
for n in range(1, 26):
    smiles += ["C" * n, "C" * n + "O", "C" * n + "N", "C" * n + "Cl"]
src = os.path.join(s.tmp, "smiles_100.csv")
dst = os.path.join(s.tmp, "smiles_100_output.csv")
with open(src, "w") as f:
    f.write("".join(x + "\n" for x in smiles))
p = client("eos3b5e", src, dst)
t.is_(p.returncode, 0, "run_model eos3b5e smiles_100.csv: exit 0")
rows = []
if os.path.exists(dst):
    with open(dst, newline="") as f:
        rows = list(csv.reader(f))
t.is_(rows[:1], [["input", "mol_weight"]], "output header input,mol_weight")
t.is_([r[0] for r in rows[1:]], smiles, "100 result rows, in input order")
ref = subprocess.run(["/usr/bin/python3", "-c",
                      "import sys,json\nfrom rdkit import Chem\nfrom rdkit.Chem import Descriptors\n"
                      "print(json.dumps([Descriptors.MolWt(Chem.MolFromSmiles(x)) "
                      "for x in json.loads(sys.argv[1])]))", json.dumps(smiles)],
                     stdout=subprocess.PIPE, text=True).stdout
want = json.loads(ref or "[]")
t.ok(len(want) == 100 and all(len(r) == 2 and abs(float(r[1]) - w) < 1e-6
                              for r, w in zip(rows[1:], want)), "every value is RDKit's")

p = client("nope", src, dst)
t.ok(p.returncode != 0 and "model_not_found" in p.stderr, "unknown model: the client stops "
     "with the JSON error (model_not_found)")
t.done()
