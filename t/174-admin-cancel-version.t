#!/usr/bin/python3
# 174-admin-cancel-version.t — an admin cancels anyone's request (POST /api/admin/requests/{id}/cancel; 403 for users, 404, 409 when finished); the model version at submit is on each request and on its results (JSON member, X-Model-Version header of CSV and JSON downloads).
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack                 # noqa: E402
from flows import error_code as code, wait_request  # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
adm = s.admin_token
alice = s.user("alice")
bob = s.user("bob")
anon = s.anon()



def set_version(v):
    cur = s.api("GET", "/api/models/eos3b5e", token=adm).json["version"]
    return s.api("PATCH", "/api/models/eos3b5e", token=adm, json={"model_version": v, "version": cur})


t.status(set_version("2.5"), 200, "model at version 2.5")
r = s.api("POST", "/api/requests", token=alice, json={"model_id": "eos3b5e", "inputs": ["CCO", "C"]})
t.status(r, 201, "alice submits")
rid = r.json["id"]
t.is_(r.json.get("model_version"), "2.5", "the submit answer names the model version")
st = wait_request(s, str(rid), timeout=120)
t.is_(st[0], "COMPLETED", "completed")
t.is_(s.api("GET", "/api/requests/%d" % rid, token=alice).json.get("model_version"), "2.5", "request shows the version")
r = s.api("GET", "/api/requests/%d/result?format=json" % rid, token=alice)
t.is_((r.json or {}).get("model_version"), "2.5", "JSON result carries model_version")
t.is_(r.headers.get("x-model-version"), "2.5", "and the X-Model-Version header")
r = s.api("GET", "/api/requests/%d/result?format=csv" % rid, token=alice)
t.is_(r.headers.get("x-model-version"), "2.5", "CSV download: X-Model-Version header")
t.like(r.text.splitlines()[0], r"^input,mol_weight", "CSV columns unchanged")
t.status(set_version("3"), 200, "model moves to version 3")
t.is_(s.api("GET", "/api/requests/%d" % rid, token=alice).json.get("model_version"), "2.5",
      "an old request keeps the version it was made with")

# admin cancel: stop the runners so requests stay QUEUED
s.stop_hubd()
ids = []
for tok in (alice, anon):
    r = s.api("POST", "/api/requests", token=tok, json={"model_id": "eos3b5e", "inputs": ["CCO"]})
    ids.append(r.json["id"])
r = s.api("POST", "/api/admin/requests/%d/cancel" % ids[0], token=bob)
t.is_(r.status, 403, "a USER cannot cancel others' requests")
t.is_(s.api("POST", "/api/admin/requests/%d/cancel" % ids[0], token=anon).status, 403, "nor can anonymous")
t.is_(s.api("POST", "/api/admin/requests/999999/cancel", token=adm).status, 404, "unknown request: 404")
t.is_(s.api("POST", "/api/admin/requests/abc/cancel", token=adm).status, 404, "bad id: 404")
for i, who in zip(ids, ("a user's", "an anonymous")):
    r = s.api("POST", "/api/admin/requests/%d/cancel" % i, token=adm)
    t.status(r, 200, "admin cancels %s request" % who)
    t.is_(s.sql("SELECT status, failure_reason, failure_detail FROM work_request WHERE id = $1", str(i)),
          [("CANCELLED", "CANCELLED", "cancelled by an admin")], "stored as cancelled by an admin")
r = s.api("GET", "/api/requests/%d" % ids[0], token=alice)
t.is_((r.json or {}).get("status"), "CANCELLED", "the owner sees it cancelled")
r = s.api("POST", "/api/admin/requests/%d/cancel" % rid, token=adm)
t.is_((r.status, code(r)), (409, "already_finished"), "a finished request: 409 already_finished")
t.done()
