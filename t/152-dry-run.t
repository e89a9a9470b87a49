#!/usr/bin/python3
# 152-dry-run.t — dry_run=true on the submit routes (query, form field, JSON
# field): the same parsing and checks as a real submit, the answer says how the
# body was read (columns, detected input and key columns, header, count, first
# rows) and nothing is stored; errors are the submit's (422 ambiguous_column
# with the column names, 404 model, 422 invalid dry_run).
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


def count():
    return s.sql("SELECT count(*) FROM work_request")[0][0]


def err_is(r, status, code, name):
    e = (r.json or {}).get("error") if isinstance(r.json, dict) else None
    if not t.ok(r.status == status and isinstance(e, dict) and e.get("code") == code and
                e.get("message"), "%s: %d %s (JSON error shape)" % (name, status, code)):
        t.diag("got %s %s" % (r.status, r.text[:300]))


body = "inchikey,smiles,activity\n" + "".join("K%d,%s,%d\n" % (i, "C" * i, i) for i in range(1, 8))
r = s.api("POST", "/api/models/m1/requests?dry_run=true", token=alice, data=body, headers=CSV)
t.status(r, 200, "dry run: 200")
j = r.json or {}
t.is_([j.get("dry_run"), j.get("input_count"), j.get("has_header"), j.get("header")],
      [True, 7, True, "inchikey,smiles,activity"], "  count and header as a submit would store")
t.is_([j.get("columns"), j.get("input_column"), j.get("key_column"), j.get("extra_columns")],
      [["inchikey", "smiles", "activity"], "smiles", "inchikey", ["activity"]],
      "  the columns and the detected input and key columns")
t.is_(j.get("sample"), [{"key": "K%d" % i, "input": "C" * i} for i in range(1, 6)],
      "  the first 5 rows")
t.is_(count(), "0", "  nothing stored")

r = s.api("POST", "/api/models/m1/requests?dry_run=true&column=a", token=alice,
          data="a,b\nCCO,N\n", headers=CSV)
t.is_([(r.json or {}).get("input_column"), (r.json or {}).get("sample")],
      ["a", [{"input": "CCO"}]], "column= changes the choice (what a form sends back)")

bnd = "----mhDry"
mp = ("--%s\r\nContent-Disposition: form-data; name=\"dry_run\"\r\n\r\ntrue\r\n"
      "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.csv\"\r\n"
      "Content-Type: text/csv\r\n\r\nsmiles\r\nCCO\r\nO\r\n--%s--\r\n") % (bnd, bnd, bnd)
r = s.api("POST", "/api/models/m1/requests", token=alice, data=mp,
          headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
t.status(r, 200, "dry_run as a multipart form field")
t.is_([(r.json or {}).get("columns"), (r.json or {}).get("input_count")], [None, 3],
      "  one column: no column names; smiles counted as an input without has_header")
r = s.api("POST", "/api/requests", token=alice,
          json={"model_id": "m1", "inputs": ["CCO"], "dry_run": True})
t.ok(r.status == 200 and (r.json or {}).get("input_count") == 1, "dry_run in a JSON body")
t.is_(count(), "0", "still nothing stored")

r = s.api("POST", "/api/models/m1/requests?dry_run=true", token=alice,
          data="CCO,CCN\nCCC,O\n", headers=CSV)
err_is(r, 422, "ambiguous_column", "dry run of an ambiguous file")
t.is_(((r.json or {}).get("error") or {}).get("fields", {}).get("columns"),
      ["column_1", "column_2"], "  names the columns to choose from")
err_is(s.api("POST", "/api/models/nope/requests?dry_run=true", token=alice, data="CCO",
             headers=CSV), 404, "model_not_found", "dry run for an unknown model")
err_is(s.api("POST", "/api/models/m1/requests?dry_run=maybe", token=alice, data="CCO",
             headers=CSV), 422, "invalid_parameter", "dry_run=maybe")
err_is(s.api("POST", "/api/models/m1/requests?dry_run=true", data="CCO", headers=CSV), 401,
       "unauthorized", "dry run without a session")
r = s.api("POST", "/api/models/m1/requests?dry_run=false", token=alice, data="CCO", headers=CSV)
t.ok(r.status == 201 and count() == "1", "dry_run=false submits")
t.done()
