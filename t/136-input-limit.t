#!/usr/bin/python3
# 136-input-limit.t — the per-model input length limit (issue 17, finding 2): max_input_chars (default 512) refuses a 4096-character SMILES with 422 naming the limit, counts characters not bytes, is configurable per model and validated.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
adm = s.admin_token
r = s.api("POST", "/api/models", token=adm,
          json={"id": "lim1", "local_command": ["/bin/true", "{port}"]})
t.status(r, 201, "model created")
m = r.json or {}
t.is_(m.get("max_input_chars"), 512, "default max_input_chars 512")
tok = s.anon()


def submit(inputs, ctype=None, data=None):
    if data is not None:
        return s.api("POST", "/api/models/lim1/requests", token=tok, data=data,
                     headers={"Content-Type": ctype})
    return s.api("POST", "/api/requests", token=tok, json={"model_id": "lim1", "inputs": inputs})


def err(r):
    return ((r.json or {}).get("error") or {})


r = submit(["CCO", "C" * 4096])
t.status(r, 422, "a 4096-character SMILES: 422")
t.is_(err(r).get("code"), "input_too_long", "code input_too_long")
f = err(r).get("fields") or {}
t.is_((f.get("input"), f.get("length"), f.get("max_input_chars")), (2, 4096, 512),
      "fields: which input, its length, the limit")
t.like(err(r).get("message"), r"at most 512 \(max_input_chars\)", "the message names the limit")
t.is_(s.sql("SELECT count(*) FROM work_request")[0][0], "0", "nothing stored")
t.status(submit(["C" * 512]), 201, "512 characters: accepted")
t.status(submit(["C" * 513]), 422, "513 characters: refused")
t.status(submit(["\u00e9" * 512]), 201, "512 two-byte characters (1024 bytes): accepted")
r = submit(None, "text/csv", "smiles\nCCO\n" + "C" * 600 + "\n")
t.ok(r.status == 422 and err(r).get("code") == "input_too_long",
     "CSV upload: the same limit (%s)" % r.status)

# configurable per model, validated
r = s.api("PATCH", "/api/models/lim1", token=adm,
          json={"version": 1, "max_input_chars": 4096})
t.status(r, 200, "admin raises max_input_chars to 4096")
t.is_((r.json or {}).get("max_input_chars"), 4096, "stored")
t.status(submit(["C" * 4096]), 201, "now a 4096-character input is accepted")
for bad in ({"max_input_chars": 0}, {"max_input_chars": 4097}, {"max_input_chars": "x"},
            {"max_input_chars": 1.5}, {"max_input_chars": None}):
    body = dict(bad, version=2)
    r = s.api("PATCH", "/api/models/lim1", token=adm, json=body)
    key = list(bad)[0]
    t.ok(r.status == 422 and key in (err(r).get("fields") or {}),
         "%s: 422 naming %s (%s)" % (bad, key, r.status))
r = s.api("GET", "/api/models/lim1")
t.is_((r.json or {}).get("max_input_chars"), 4096, "the limit is public (clients can check first)")

s.stop()
t.done()
