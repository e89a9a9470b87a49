#!/usr/bin/python3
# 206-runner-cache.t — compound caching on the runner side: after a request
# of a registered user who opted in completes, its computed non-null
# records enter input_cache under SHA-256(trimmed input) + model version; a
# repeated request is then served at submit without an instance; partial
# hits are merged in input order; anonymous or not-opted-in requests and
# models without caching add nothing; null records are never cached.
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2"})
s.add_demo_models()
s.sql("UPDATE model SET cache_enabled = (id = 'eos3b5e'), model_version = 'v7'")
s.start_hubd()
alice = s.user("alice")
anon = s.anon()


def submit(tok, model, inputs, opt=True):
    r = s.api("POST", "/api/requests", token=tok,
              json={"model_id": model, "inputs": inputs, "cache_opt_in": opt})
    if r.status != 201:
        t.diag("submit: %s %s" % (r.status, r.text))
    return r.json or {}


def wait(rid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = s.sql("SELECT status FROM work_request WHERE id = $1", rid)[0][0]
        if st in ("COMPLETED", "FAILED", "CANCELLED"):
            return st
        time.sleep(0.1)
    return None


def ncache():
    return int(s.sql("SELECT count(*) FROM input_cache")[0][0])


def wait_cache(n, timeout=15):
    """The runner completes a request first (its owner is waiting), then
    releases the instance, then adds the results to the cache: poll."""
    deadline = time.time() + timeout
    while ncache() < n and time.time() < deadline:
        time.sleep(0.1)
    return ncache()


j = submit(anon, "eos3b5e", ["CCO", "O"])
t.is_(wait(j.get("id")), "COMPLETED", "anonymous opted-in request completes")
t.is_(ncache(), 0, "  anonymous results are not cached")
j = submit(alice, "eos3b5e", ["CCO", "O"], opt=False)
wait(j.get("id"))
t.is_(ncache(), 0, "not opted in: nothing cached")
j = submit(alice, "descriptors", ["CCO"])
wait(j.get("id"))
t.is_(ncache(), 0, "model without caching: nothing cached")

j = submit(alice, "eos3b5e", [" CCO ", "c1ccccc1", "not_a_smiles"])
t.is_(wait(j.get("id")), "COMPLETED", "opted-in request of a registered user completes")
wait_cache(2)
rows = s.sql("SELECT model_id, model_version, encode(input_key, 'hex'), record->>'mol_weight', user_id"
             " FROM input_cache ORDER BY input")
uid = s.sql("SELECT id FROM app_user WHERE username = 'alice'")[0][0]
t.is_(len(rows), 2, "  two records cached (the null record is not)")
keys = {r[2] for r in rows}
t.is_(keys, {hashlib.sha256(b"CCO").hexdigest(), hashlib.sha256(b"c1ccccc1").hexdigest()},
      "  keys are SHA-256 of the trimmed inputs")
t.ok(all(r[0] == "eos3b5e" and r[1] == "v7" and r[4] == uid for r in rows),
     "  model, model version and user recorded")

ninst = s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'")
j = submit(alice, "eos3b5e", ["CCO", "c1ccccc1"])
t.is_(j.get("status"), "COMPLETED", "repeated request served from the cache at submit")
t.is_(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'"), ninst,
      "  without a new instance")
j = submit(alice, "eos3b5e", ["N", "CCO", "CC", "c1ccccc1"])
rid = j.get("id")
t.is_(wait(rid), "COMPLETED", "partial hits: completes")
res = s.sql("SELECT ordinal, cached, (record->>'mol_weight')::float FROM work_request_result"
            " WHERE request_id = $1 ORDER BY ordinal", rid)
t.is_([(o, c) for o, c, _ in res], [("1", "f"), ("2", "t"), ("3", "f"), ("4", "t")],
      "  cached and computed rows merged in input order")
t.ok(abs(float(res[0][2]) - 17.03) < 0.01 and abs(float(res[2][2]) - 30.07) < 0.01,
     "  computed values correct")
t.is_(wait_cache(4), 4, "  the two new records joined the cache")
t.done()
