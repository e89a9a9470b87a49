#!/usr/bin/python3
# 153-web-columns.t — a 24-row inchikey,smiles file (the old Ersilia hub's
# chembl_selected.csv shape) uploaded through the web page in headless
# Chromium: the request page names the columns (input smiles, key inchikey),
# the result preview shows each InChIKey as the key beside its molecular
# weight (RDKit's), and the page's CSV download is key,input,mol_weight.
import csv
import io
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from stack import Stack             # noqa: E402

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
s.user("chem_user", password="chem-user-password")
b = Browser(s.url, t, name="153")
b.go("#/login")
b.fill("#login-form [name=username]", "chem_user")
b.fill("#login-form [name=password]", "chem-user-password")
b.click("#login-submit")
b.wait_text("#current-user", "chem_user")

SMILES = []
for n in range(1, 7):
    SMILES += ["C" * n, "C" * n + "O", "C" * n + "N", "C" * n + "Cl"]
keys = ["KEY%02d-TESTONLY-N" % i for i in range(1, 25)]
path = os.path.join(tempfile.mkdtemp(prefix="modelhub-153-"), "chembl_like.csv")
with open(path, "w") as f:
    f.write("inchikey,smiles\n" + "".join("%s,%s\n" % kv for kv in zip(keys, SMILES)))

form = "#request-form"
b.route("#/models/eos3b5e")
b.wait_for(form)
b.find(form + " [name=file]").send_keys(path)
hdr = b.find(form + " [name=has_header]")
if not hdr.is_selected():
    hdr.click()  # a form that does not detect the header: the person says so
b.click("#submit-request")
b.wait_route("#/requests/")
rid = b.hash().rsplit("/", 1)[1]
t.is_(s.sql("SELECT input_count, header FROM work_request WHERE id = $1", rid),
      [("24", "inchikey,smiles")], "upload: 24 inputs, header kept apart")
b.wait_for("#request-columns")
t.like(b.find("#request-columns").text, r"input: smiles, key: inchikey",
       "the request page names the input and key columns")
b.wait(lambda: b.find("#request-status").get_attribute("data-status") == "COMPLETED",
       "request COMPLETED", timeout=180)
b.wait_for("#result-preview tbody tr")
heads = [h.text for h in b.finds("#result-preview thead th")]
t.is_(heads[:3], ["Key (inchikey)", "Input (smiles)", "mol_weight"],
      "result preview: key column first, then the input, then the output")
rows = [[td.text for td in tr.find_elements("css selector", "td")]
        for tr in b.finds("#result-preview tbody tr")]
t.is_([r[:2] for r in rows], [[k, m] for k, m in zip(keys, SMILES)],
      "  24 rows, each InChIKey beside its molecule")
ref = subprocess.run(["/usr/bin/python3", "-c",
                      "import sys,json\nfrom rdkit import Chem\nfrom rdkit.Chem import Descriptors\n"
                      "print(json.dumps([Descriptors.MolWt(Chem.MolFromSmiles(x)) "
                      "for x in json.loads(sys.argv[1])]))", json.dumps(SMILES)],
                     stdout=subprocess.PIPE, text=True).stdout
want = json.loads(ref or "[]")
t.ok(len(rows) == 24 and all(abs(float(r[2]) - w) < 1e-6 for r, w in zip(rows, want)),
     "  24 correct molecular weights")
csv_text = b.driver.execute_async_script(
    "const done = arguments[arguments.length - 1];"
    "fetch(arguments[0], {credentials: 'same-origin'}).then((r) => r.text()).then(done)"
    ".catch((e) => done(String(e)));", "/api/requests/%s/result?format=csv" % rid)
got = list(csv.reader(io.StringIO(csv_text)))
t.is_(got[0], ["key", "input", "mol_weight"], "CSV download: key,input,mol_weight")
t.is_([r[0] for r in got[1:]], keys, "  the InChIKeys carried as key")
b.shot("request-columns")
t.is_(b.console_errors(), [], "no console errors, no HTTP error")
t.done()
