#!/usr/bin/python3
# 124-cache-submit.t — compound cache at submit: hits (same model, same model
# version, SHA-256 of the trimmed input, non-null record) become cached result
# rows at once; an all-hit request is COMPLETED without a runner and without
# NOTIFY; partial hits leave only misses to compute; versions, disabled
# caching and null records never hit. With modelhubd and the demo models: a
# repeated request is served from the cache without starting an instance.
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
from flows import Listener      # noqa: E402

t = TAP()
s = Stack(hubd=False)
s.sql("INSERT INTO model (id, cache_enabled, model_version, details) VALUES "
      "('cm', true, 'v2', '{\"columns\":[\"mol_weight\"]}'), ('nc', false, 'v2', '{}')")
alice = s.user("alice")
anon = s.anon()


def key(text):
    return hashlib.sha256(text.strip().encode()).hexdigest()


def cache(model, version, text, record):
    """record: a Python value (JSON-encoded here) or None for SQL NULL."""
    s.sql("INSERT INTO input_cache (model_id, model_version, input_key, input, record) "
          "VALUES ($1, $2, decode($3, 'hex'), $4, $5::jsonb)", model, version, key(text), text,
          None if record is None else json.dumps(record))


cache("cm", "v2", "CCO", {"mol_weight": 46.069})
cache("cm", "v2", "O", {"mol_weight": 18.015})
cache("cm", "v1", "N", {"mol_weight": 17.031})       # older model version
cache("cm", "v2", "BAD", None)                        # null record: never served
cache("cm", "v2", "XX", {"mol_weight": None})          # all-null record: never served
s.sql("INSERT INTO input_cache (model_id, model_version, input_key, input, record) "
      "VALUES ('cm', 'v2', decode($1, 'hex'), 'YY', 'null'::jsonb)", key("YY"))  # JSON null
cache("nc", "v2", "CCO", {"mol_weight": 46.069})      # model without caching


def submit(tok, model, inputs, **kw):
    body = {"model_id": model, "inputs": inputs}
    body.update(kw)
    r = s.api("POST", "/api/requests", token=tok, json=body)
    if r.status != 201:
        t.diag("submit: %s %s" % (r.status, r.text))
    return r.json or {}


def results(rid):
    return s.sql("SELECT ordinal, record::text, cached FROM work_request_result "
                 "WHERE request_id = $1 ORDER BY ordinal", rid)


lis = Listener(s)

# ---- every input hits
j = submit(alice, "cm", ["CCO", "  O ", "CCO"])
rid = j.get("id")
t.is_(j.get("status"), "COMPLETED", "all inputs cached: COMPLETED at submit")
t.is_(j.get("progress"), {"done": 3, "total": 3, "cached": 3}, "  progress done = cached = 3")
t.ok(j.get("finished_at") and j.get("started_at"), "  started_at and finished_at set")
t.is_(lis.drain(), [], "  no NOTIFY work_queued: no runner involved")
t.is_([(o, c) for o, _, c in results(rid)], [("1", "t"), ("2", "t"), ("3", "t")],
      "  one cached result row per input, duplicates included")
r = s.api("GET", "/api/requests/%d/result?format=csv" % rid, token=alice)
t.status(r, 200, "  result downloadable at once")
t.is_(r.text, "input,mol_weight\r\nCCO,46.069\r\nO,18.015\r\nCCO,46.069\r\n", "  values from the cache")
res = (s.api("GET", "/api/requests/%d/result" % rid, token=alice).json or {}).get("results", [])
t.is_([x.get("cached") for x in res], [True, True, True], "  JSON says cached")

# ---- partial hits
j = submit(alice, "cm", ["CCO", "N", "BAD", "O", "XX", "new", "YY"])
rid = j.get("id")
t.is_(j.get("status"), "QUEUED", "partial hits: QUEUED")
t.is_(j.get("progress"), {"done": 2, "total": 7, "cached": 2}, "  2 of 7 cached")
t.is_(lis.drain(), ["cm"], "  NOTIFY work_queued for the misses")
t.is_([o for o, _, _ in results(rid)], ["1", "4"], "  hits at their ordinals only")
t.is_(s.sql("SELECT i.ordinal FROM work_request_input i WHERE i.request_id = $1 AND NOT EXISTS "
            "(SELECT 1 FROM work_request_result r WHERE r.request_id = i.request_id "
            "AND r.ordinal = i.ordinal) ORDER BY 1", rid), [("2",), ("3",), ("5",), ("6",), ("7",)],
      "  misses left for the runner: other version, NULL, all-null record, unknown, JSON null")

# ---- header is never looked up
j = submit(alice, "cm", ["CCO", "O"], has_header=True)
t.is_((j.get("status"), j.get("progress")), ("COMPLETED", {"done": 1, "total": 1, "cached": 1}),
      "has_header: only the input after the header is looked up")

# ---- no hit at all
j = submit(alice, "cm", ["new1", "new2"])
t.is_((j.get("status"), j.get("progress", {}).get("cached")), ("QUEUED", 0), "no hits: plain QUEUED")
t.is_(lis.drain(), ["cm"], "  notified")

# ---- model without caching
j = submit(alice, "nc", ["CCO"])
t.is_((j.get("status"), j.get("progress", {}).get("cached")), ("QUEUED", 0),
      "cache_enabled false: no lookup")
t.is_(results(j.get("id")), [], "  no result rows")

# ---- model version change
s.sql("UPDATE model SET model_version = 'v1' WHERE id = 'cm'")
j = submit(alice, "cm", ["N", "CCO"])
t.is_(j.get("progress"), {"done": 1, "total": 2, "cached": 1}, "after a version change only that "
      "version's entries hit")
s.sql("UPDATE model SET model_version = 'v2' WHERE id = 'cm'")

# ---- anonymous callers read the shared cache (they only never write it)
j = submit(anon, "cm", ["O"], cache_opt_in=True)
t.is_((j.get("status"), j.get("cache_opt_in")), ("COMPLETED", False),
      "anonymous: served from the cache, opt-in forced off")
lis.close()

# ---- end to end with modelhubd and the demo models
s.start_hubd()
s.add_demo_models()


def wait_done(rid, tok, timeout=120):
    end = time.time() + timeout
    j = {}
    while time.time() < end:
        j = s.api("GET", "/api/requests/%d" % rid, token=tok).json or {}
        if j.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
            return j
        time.sleep(0.3)
    return j


def instances():
    return int(s.sql("SELECT count(*) FROM model_instance WHERE model_id = 'eos3b5e'")[0][0])


first = submit(alice, "eos3b5e", ["CCO", "c1ccccc1", "not_a_smiles"], cache_opt_in=True)
done = wait_done(first.get("id"), alice)
t.is_(done.get("status"), "COMPLETED", "first request computed by the model")
n_inst = instances()
t.ok(n_inst >= 1, "  it started an instance")
deadline = time.time() + 30
while time.time() < deadline and int(s.sql(
        "SELECT count(*) FROM input_cache WHERE model_id = 'eos3b5e'")[0][0]) < 2:
    time.sleep(0.2)
t.ok({("CCO",), ("c1ccccc1",)} <= set(s.sql("SELECT input FROM input_cache "
                                             "WHERE model_id = 'eos3b5e'")),
     "opted-in results entered the cache")
bad = submit(alice, "eos3b5e", ["not_a_smiles", "CCO"])
t.is_(bad.get("progress", {}).get("cached"), 1, "the invalid SMILES (null values) is never a hit")
wait_done(bad.get("id"), alice)
n_inst = instances()
again = submit(alice, "eos3b5e", ["c1ccccc1", "CCO"])
t.is_(again.get("status"), "COMPLETED", "repeated request: COMPLETED at submit")
t.is_(instances(), n_inst, "  no new instance")
r = s.api("GET", "/api/requests/%d/result?format=csv" % again.get("id"), token=alice)
rows = dict(line.split(",") for line in r.text.strip().split("\r\n")[1:])
t.ok(abs(float(rows.get("CCO", "0")) - 46.07) < 0.01, "  CCO -> 46.07 from the cache")
t.ok(abs(float(rows.get("c1ccccc1", "0")) - 78.11) < 0.01, "  benzene -> 78.11 from the cache")
part = submit(alice, "eos3b5e", ["CCO", "O"])
t.is_(part.get("progress", {}).get("cached"), 1, "partial hit: 1 cached")
done = wait_done(part.get("id"), alice)
t.is_(done.get("status"), "COMPLETED", "  the miss is computed")
res = (s.api("GET", "/api/requests/%d/result" % part.get("id"), token=alice).json or {})
res = res.get("results", [])
t.is_([x.get("cached") for x in res], [True, False], "  merged in input order, cached flags right")
t.ok(len(res) == 2 and abs(res[1]["record"]["mol_weight"] - 18.015) < 0.01, "  water computed")

t.done()
