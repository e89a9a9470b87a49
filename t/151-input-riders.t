#!/usr/bin/python3
# 151-input-riders.t — the other columns of a multi-column CSV ride along with
# each input (sql/010) and come back before the model's outputs: CSV
# key,input,<other columns>,<outputs> (the Ersilia CLI's shape), JSON "key" and
# "extra" per result; one-column requests keep input,<outputs>. First with
# result rows written by SQL, then end to end: a 24-row inchikey,smiles file
# uploaded to the demo model eos3b5e gives 24 molecular weights, each with its
# own key.
import csv
import io
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False)
s.sql("INSERT INTO model (id, details) VALUES ('m1', '{\"columns\":[\"mol_weight\"]}')")
alice = s.user("alice")
CSV = {"Content-Type": "text/csv"}


def post_csv(body, query=""):
    r = s.api("POST", "/api/models/m1/requests" + query, token=alice, data=body, headers=CSV)
    if r.status != 201:
        t.diag("submit: %s %s" % (r.status, r.text))
    return r


def fill(rid, records):
    for i, rec in enumerate(records, 1):
        s.sql("INSERT INTO work_request_result (request_id, ordinal, record) VALUES ($1, $2, $3)",
              rid, i, None if rec is None else json.dumps(rec))
    s.sql("UPDATE work_request SET status = 'COMPLETED', done_count = input_count, "
          "finished_at = now() WHERE id = $1", rid)


def result(rid, fmt):
    return s.api("GET", "/api/requests/%s/result?format=%s" % (rid, fmt), token=alice)


# ---- key and another column; values needing CSV quoting
body = ('inchikey,smiles,"note, free"\n'
        'KEY-A,CCO,"said ""hi"""\n'
        ',c1ccccc1,plain\n'
        'KEY-C,CC(=O)O,"a,b"\n')
r = post_csv(body)
j = r.json or {}
rid = j.get("id")
t.is_([j.get("input_column"), j.get("key_column"), j.get("extra_columns")],
      ["smiles", "inchikey", ["note, free"]], "request JSON names the input, key and other columns")
rows = s.sql("SELECT input, key, extra::text FROM work_request_input WHERE request_id = $1 "
             "ORDER BY ordinal", rid)
t.is_([list(x) for x in rows],
      [["CCO", "KEY-A", '["said \\"hi\\""]'], ["c1ccccc1", "", '["plain"]'],
       ["CC(=O)O", "KEY-C", '["a,b"]']], "stored: key and the other cells per input")
fill(rid, [{"mol_weight": 46.07}, None, {"mol_weight": 60.05}])
r = result(rid, "csv")
t.is_(r.text, 'key,input,"note, free",mol_weight\r\n'
              'KEY-A,CCO,"said ""hi""",46.07\r\n'
              ',c1ccccc1,plain,\r\n'
              'KEY-C,CC(=O)O,"a,b",60.05\r\n',
      "CSV: key,input,<other columns>,<outputs>, quoted where needed")
t.is_(list(csv.reader(io.StringIO(r.text)))[1], ["KEY-A", "CCO", 'said "hi"', "46.07"],
      "  reads back with a CSV reader")
jr = result(rid, "json").json or {}
t.is_([jr.get("input_column"), jr.get("key_column"), jr.get("extra_columns")],
      ["smiles", "inchikey", ["note, free"]], "JSON result names the columns")
res = jr.get("results") or [{}, {}, {}]
t.is_([res[0].get("key"), res[0].get("input"), res[0].get("extra"), res[0].get("record")],
      ["KEY-A", "CCO", {"note, free": 'said "hi"'}, {"mol_weight": 46.07}],
      "JSON item: key, input, extra, record")
t.is_([res[1].get("key"), res[1].get("extra"), res[1].get("record")], ["", {"note, free": "plain"}, None],
      "  blank key cell: empty key, null record kept")

# ---- no identifier column: smiles,activity -> input,activity,<outputs>
r = post_csv("smiles,activity\nCCO,1.5\nO,\n")
rid = (r.json or {}).get("id")
t.is_((r.json or {}).get("key_column"), None, "smiles,activity: no key column")
fill(rid, [{"mol_weight": 46.07}, {"mol_weight": 18.02}])
t.is_(result(rid, "csv").text, "input,activity,mol_weight\r\nCCO,1.5,46.07\r\nO,,18.02\r\n",
      "smiles,activity: input,activity,mol_weight")
res = (result(rid, "json").json or {}).get("results") or [{}]
t.ok("key" not in res[0] and res[0].get("extra") == {"activity": "1.5"},
     "  JSON: no key member, extra carries activity")

# ---- id,smiles only: key,input,<outputs>, no extra
r = post_csv("id,smiles\n7,CCO\n")
rid = (r.json or {}).get("id")
fill(rid, [{"mol_weight": 46.07}])
t.is_(result(rid, "csv").text, "key,input,mol_weight\r\n7,CCO,46.07\r\n", "id,smiles: key,input,mol_weight")
res = (result(rid, "json").json or {}).get("results") or [{}]
t.ok(res[0].get("key") == "7" and "extra" not in res[0], "  JSON: key, no extra member")

# ---- headerless, chosen by content: the first column is the key
r = post_csv("mol-1,CCO,x\nmol-2,O,y\n")
rid = (r.json or {}).get("id")
t.is_([(r.json or {}).get("key_column"), (r.json or {}).get("extra_columns")],
      ["column_1", ["column_3"]], "headerless: key column_1, other column_3")
fill(rid, [{"mol_weight": 1}, {"mol_weight": 2}])
t.is_(result(rid, "csv").text, "key,input,column_3,mol_weight\r\nmol-1,CCO,x,1\r\nmol-2,O,y,2\r\n",
      "headerless: key,input,column_3,mol_weight")

# ---- multipart upload and JSON with column= keep them too
bnd = "----mhRiders"
mp = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\n"
      "Content-Type: text/csv\r\n\r\nname,SMILES\r\nethanol,CCO\r\n--%s--\r\n") % (bnd, bnd)
r = s.api("POST", "/api/models/m1/requests", token=alice, data=mp,
          headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
rid = (r.json or {}).get("id")
t.is_(s.sql("SELECT key FROM work_request_input WHERE request_id = $1", rid), [("ethanol",)],
      "multipart: key stored")
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["id,smi", "k1,CCO"], "column": "smi"})
rid = (r.json or {}).get("id")
t.is_(s.sql("SELECT key, extra FROM work_request_input WHERE request_id = $1", rid),
      [("k1", None)], "JSON with column: key stored, no extra")

# ---- one column: unchanged shape, nothing stored beside the input
r = post_csv("smiles\nCCO\n", "?has_header=true")
j = r.json or {}
rid = j.get("id")
t.is_([j.get("input_column"), j.get("key_column"), j.get("extra_columns")], [None, None, None],
      "one column: no column names in the request")
t.is_(s.sql("SELECT key, extra FROM work_request_input WHERE request_id = $1", rid), [(None, None)],
      "  nothing stored beside the input")
fill(rid, [{"mol_weight": 46.07}])
t.is_(result(rid, "csv").text, "input,mol_weight\r\nCCO,46.07\r\n", "  CSV input,mol_weight")
jr = result(rid, "json").json or {}
t.ok("key_column" not in jr and "key" not in (jr.get("results") or [{}])[0],
     "  JSON without key members")
t.is_(s.sql("SELECT count(*) FROM work_request w JOIN work_request_input i ON i.request_id = w.id "
            "WHERE w.metadata ? 'input_columns' AND i.key IS NULL AND i.extra IS NULL"), [("0",)],
      "every multi-column request stored its riders")

# ---- end to end: 24 rows inchikey,smiles through the demo model
SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1",
          "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "OC(=O)c1ccccc1O",
          "C1CCCCC1", "CCN(CC)CC", "c1ccncc1", "CC(=O)C", "OCC(O)CO", "C(=O)O", "CCCCCCCC",
          "c1ccc2ccccc2c1", "NC(=O)N", "CS(C)=O", "O=C1NC(=O)C(=O)N1", "CC#N", "ClC(Cl)Cl",
          "c1ccoc1", "CC(O)=O", "CCOC(C)=O", "N#Cc1ccccc1"]
keys = ["KEY%02d-TESTONLY-N" % i for i in range(1, 25)]
upload = "inchikey,smiles\n" + "".join("%s,%s\n" % kv for kv in zip(keys, SMILES))
s.start_hubd()
s.add_demo_models()
mp = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chembl_like.csv\"\r\n"
      "Content-Type: text/csv\r\n\r\n%s\r\n--%s--\r\n") % (bnd, upload, bnd)
r = s.api("POST", "/api/models/eos3b5e/requests", token=alice, data=mp,
          headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
t.status(r, 201, "24-row inchikey,smiles upload: 201")
rid = (r.json or {}).get("id")
t.is_((r.json or {}).get("progress", {}).get("total"), 24, "  24 inputs, header not one")
end = time.time() + 180
st = {}
while time.time() < end:
    st = s.api("GET", "/api/requests/%s" % rid, token=alice).json or {}
    if st.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
        break
    time.sleep(0.3)
t.is_([st.get("status"), st.get("error_count")], ["COMPLETED", 0], "  COMPLETED, no errors")
got = list(csv.reader(io.StringIO(result(rid, "csv").text)))
t.is_(got[:1], [["key", "input", "mol_weight"]], "  CSV header key,input,mol_weight")
t.is_([(x[0], x[1]) for x in got[1:]], list(zip(keys, SMILES)), "  24 rows, each with its own key")
ref = subprocess.run(["/usr/bin/python3", "-c",
                      "import sys,json\nfrom rdkit import Chem\nfrom rdkit.Chem import Descriptors\n"
                      "print(json.dumps([Descriptors.MolWt(Chem.MolFromSmiles(x)) "
                      "for x in json.loads(sys.argv[1])]))", json.dumps(SMILES)],
                     stdout=subprocess.PIPE, text=True).stdout
want = json.loads(ref or "[]")
t.ok(len(want) == 24 and all(len(x) == 3 and x[2] and abs(float(x[2]) - w) < 1e-6
                             for x, w in zip(got[1:], want)),
     "  every molecular weight is RDKit's for its SMILES")
t.done()
