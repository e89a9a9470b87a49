#!/usr/bin/python3
# 150-input-columns.t — choosing the input column of a CSV with several
# columns through the API (docs/api.md "Choosing the input column"): by
# header name (inchikey,smiles / id,smiles / name,SMILES / smiles,activity),
# by column= (query, multipart form field, JSON field; name or 1-based
# index), by content without a header, and the 422s (ambiguous, unknown
# column naming the columns).
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False)
s.sql("INSERT INTO model (id, details) VALUES ('m1', '{\"columns\":[\"mol_weight\"]}')")
alice = s.user("alice")
CSV = {"Content-Type": "text/csv"}


def inputs_of(rid):
    return [r[0] for r in s.sql("SELECT input FROM work_request_input WHERE request_id = $1 "
                                "ORDER BY ordinal", rid)]


def post_csv(body, query=""):
    return s.api("POST", "/api/models/m1/requests" + query, token=alice, data=body, headers=CSV)


chembl = ("inchikey,smiles\n"
          "BSYNRYMUTXBXSQ-UHFFFAOYSA-N,CC(=O)Oc1ccccc1C(=O)O\n"
          "RZVAJINKPMORJF-UHFFFAOYSA-N,CC(=O)Nc1ccc(O)cc1\n")
r = post_csv(chembl)
t.status(r, 201, "inchikey,smiles: 201 without has_header")
t.is_(inputs_of((r.json or {}).get("id")), ["CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1"],
      "inchikey,smiles: the smiles column is the input, header not an input")
t.is_((r.json or {}).get("header"), "inchikey,smiles", "  header kept")

for body, want, what in (
        ("id,smiles\n1,CCO\n2,CCN\n", ["CCO", "CCN"], "id,smiles"),
        ("name,SMILES\nethanol,CCO\n", ["CCO"], "name,SMILES (any case)"),
        ("smiles,activity\nCCO,1.5\nc1ccccc1,\"2,5\"\n", ["CCO", "c1ccccc1"], "smiles,activity"),
        ("mol-1,CCO\nmol-2,c1ccccc1\n", ["CCO", "c1ccccc1"], "headerless: by content")):
    r = post_csv(body)
    t.status(r, 201, what + ": 201")
    t.is_(inputs_of((r.json or {}).get("id")), want, what + ": inputs")

r = post_csv("a,b\nCCO,c1ccccc1\n", "?column=b")
t.status(r, 201, "column= by name")
t.is_(inputs_of((r.json or {}).get("id")), ["c1ccccc1"], "  column b, its header not an input")
r = post_csv("CCO,N\nCCC,O\n", "?column=2")
t.status(r, 201, "column= by index")
t.is_(inputs_of((r.json or {}).get("id")), ["N", "O"], "  second column")

bnd = "----mhColBoundary"
mp = ("--%s\r\nContent-Disposition: form-data; name=\"column\"\r\n\r\n1\r\n"
      "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.csv\"\r\n"
      "Content-Type: text/csv\r\n\r\nCCO,N\r\nO,P\r\n--%s--\r\n") % (bnd, bnd, bnd)
r = s.api("POST", "/api/models/m1/requests", token=alice, data=mp,
          headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
t.status(r, 201, "multipart column form field")
t.is_(inputs_of((r.json or {}).get("id")), ["CCO", "O"], "  first column")

r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["x,y", "CCO,N"], "column": "y"})
t.status(r, 201, "JSON column: inputs are CSV lines")
t.is_(inputs_of((r.json or {}).get("id")), ["N"], "  column y")
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["CCO,N"], "column": 1})
t.is_(inputs_of((r.json or {}).get("id")), ["CCO"], "JSON column as a number")
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["CCO,N"], "column": True})
t.status(r, 422, "JSON column of the wrong type: 422")

r = post_csv("CCO,CCN\nCCC,O\n")
t.status(r, 422, "two SMILES-like columns: 422")
err = (r.json or {}).get("error", {})
t.is_(err.get("code"), "ambiguous_column", "  code ambiguous_column")
t.ok("column=" in err.get("message", ""), "  message asks for column=")
r = post_csv("id,smiles\n1,CCO\n", "?column=smile")
t.status(r, 422, "unknown column=: 422")
err = (r.json or {}).get("error", {})
t.is_(err.get("code"), "unknown_column", "  code unknown_column")
t.ok("id, smiles" in err.get("message", ""), "  message names the columns")
r = post_csv("id,smiles\n1,CCO\n", "?column=3")
t.status(r, 422, "column=3 of 2: 422")
t.done()
