#!/usr/bin/python3
# 121-requests-validation.t — every rejected submit: unknown/disabled model,
# input counts and lengths, encodings, CSV quoting, content types, JSON
# shapes, multipart errors, option values, Idempotency-Key; none inserts rows.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

MAX = 5
t = TAP()
s = Stack(hubd=False, config={"hub.max_inputs": str(MAX), "fcgi.max_body": "200000"})
# the byte cap below is the API's hard limit; ok1 lifts the per-model
# max_input_chars (default 512, t/136) to the largest allowed
s.sql("INSERT INTO model (id, max_input_chars) VALUES ('ok1', 4096)")
s.sql("INSERT INTO model (id, enabled) VALUES ('off', false)")
tok = s.user("val")


def count():
    return int(s.sql("SELECT count(*) FROM work_request")[0][0])


def err(r):
    return ((r.json or {}).get("error") or {})


def check(r, status, code, name, field=None):
    t.status(r, status, name + ": %d" % status)
    t.is_(err(r).get("code"), code, "  code %s" % code)
    if field:
        t.ok(field in (err(r).get("fields") or {}), "  fields names %s" % field)


def post_json(body, path="/api/requests", headers=None):
    return s.api("POST", path, token=tok, json=body, headers=headers)


def post_csv(body, model="ok1", query="", ctype="text/csv"):
    return s.api("POST", "/api/models/%s/requests%s" % (model, query), token=tok, data=body,
                 headers={"Content-Type": ctype})


# ---- model
check(post_json({"model_id": "nope", "inputs": ["C"]}), 404, "model_not_found", "unknown model")
check(post_csv("C\n", model="nope"), 404, "model_not_found", "unknown model (CSV path)")
check(post_json({"model_id": "off", "inputs": ["C"]}), 422, "model_disabled", "disabled model")
check(s.api("POST", "/api/models/%FF/requests", token=tok, data="C", headers={"Content-Type": "text/plain"}),
      404, "model_not_found", "model id that is not UTF-8 (path)")
check(s.api("POST", "/api/requests?model_id=%FF", token=tok, data="C",
            headers={"Content-Type": "text/plain"}), 404, "model_not_found",
      "model id that is not UTF-8 (query)")
check(post_json({"model_id": "A" * 300, "inputs": ["C"]}), 404, "model_not_found",
      "model id that cannot exist")
for q in ("model_id=%FF", "model_id=Bad%20Id"):
    check(s.api("GET", "/api/requests?" + q, token=tok), 422, "invalid_parameter",
          "list filter ?%s" % q, "model_id")
    check(s.api("GET", "/api/admin/requests?" + q, token=s.admin_token), 422, "invalid_parameter",
          "admin filter ?%s" % q, "model_id")
check(post_csv("C\n", model="off"), 422, "model_disabled", "disabled model (CSV path)")
check(post_json({"inputs": ["C"]}), 422, "validation_failed", "model_id missing", "model_id")
check(post_json({"model_id": 7, "inputs": ["C"]}), 422, "validation_failed", "model_id not a string",
      "model_id")
check(post_json({"model_id": "off", "inputs": ["C"]}, path="/api/models/ok1/requests"), 422,
      "validation_failed", "model_id in body differs from the path", "model_id")
check(s.api("POST", "/api/requests", token=tok, data="C\n", headers={"Content-Type": "text/csv"}),
      422, "validation_failed", "CSV on /api/requests without model_id", "model_id")

# ---- counts
check(post_json({"model_id": "ok1", "inputs": []}), 422, "no_inputs", "empty array")
check(post_json({"model_id": "ok1", "inputs": ["", "  ", "\t"]}), 422, "no_inputs", "blank strings")
check(post_json({"model_id": "ok1", "inputs": ["smiles"], "has_header": True}), 422, "no_inputs",
      "header only (JSON)")
check(post_csv("smiles\n\n\n", query="?has_header=true"), 422, "no_inputs", "header only (CSV)")
check(post_csv(""), 422, "no_inputs", "empty body")
check(post_csv("\r\n \r\n"), 422, "no_inputs", "blank lines only")
many = ["C%d" % i for i in range(MAX + 1)]
r = post_json({"model_id": "ok1", "inputs": many})
check(r, 422, "too_many_inputs", "max + 1 inputs", "inputs")
t.like(err(r).get("message"), str(MAX), "  message names the limit")
t.status(post_json({"model_id": "ok1", "inputs": many[:MAX]}), 201, "exactly max inputs: 201")
t.status(post_csv("smiles\n" + "\n".join(many[:MAX]) + "\n\n\n", query="?has_header=true"), 201,
         "max inputs + header + blank lines: 201 (neither counts)")
check(post_csv("\n".join(many)), 422, "too_many_inputs", "max + 1 CSV lines")

# ---- lengths (4 KiB per input)
t.status(post_json({"model_id": "ok1", "inputs": ["C" * 4096]}), 201, "4096-byte input accepted")
r = post_csv("CCO\n\n" + "C" * 4097 + "\nO\n")
check(r, 422, "input_too_long", "4097-byte input", "inputs")
t.is_((err(r).get("fields") or {}).get("line"), 3, "  line number of the long line")
t.like(err(r).get("message"), r"line 3", "  message names line 3")
r = post_json({"model_id": "ok1", "inputs": ["C", "C" * 5000]})
check(r, 422, "input_too_long", "long JSON input")
t.is_((err(r).get("fields") or {}).get("line"), 2, "  position 2 in the array")
t.status(post_csv("  " + "C" * 4096 + "  \n"), 201, "limit applies after trimming")

# ---- content
r = post_json({"model_id": "ok1", "inputs": ["CCO", 5, "O"]})
check(r, 422, "invalid_input", "non-string input", "inputs[1]")
check(post_json({"model_id": "ok1", "inputs": ["CCO", None]}), 422, "invalid_input", "null input")
check(post_json({"model_id": "ok1", "inputs": [["C"]]}), 422, "invalid_input", "nested array input")
check(post_json({"model_id": "ok1", "inputs": "CCO"}), 422, "validation_failed",
      "inputs not an array", "inputs")
check(post_json({"model_id": "ok1"}), 422, "validation_failed", "inputs missing", "inputs")
check(post_json({"model_id": "ok1", "inputs": ["C"], "has_header": "yes"}), 422,
      "invalid_parameter", "has_header not a boolean", "has_header")
check(post_json({"model_id": "ok1", "inputs": ["C"], "cache_opt_in": 1}), 422,
      "invalid_parameter", "cache_opt_in not a boolean", "cache_opt_in")
check(post_json({"model_id": "ok1", "inputs": ["C\u0000C"]}), 400, "bad_json",
      "NUL inside a JSON string (refused by the JSON reader)")
r = s.api("POST", "/api/models/ok1/requests", token=tok, data=b"CCO\n\xff\xfeC\n",
          headers={"Content-Type": "text/csv"})
check(r, 422, "invalid_encoding", "invalid UTF-8 in CSV")
t.is_((err(r).get("fields") or {}).get("line"), 2, "  line 2")
r = post_csv('CCO\n"C(=O)O,acid\nN\n')
check(r, 422, "invalid_csv", "unterminated quote")
t.is_((err(r).get("fields") or {}).get("line"), 2, "  line where the quote opens")
check(post_csv("C\n", query="?has_header=maybe"), 422, "invalid_parameter", "has_header=maybe",
      "has_header")
check(post_csv("C\n", query="?cache_opt_in=2"), 422, "invalid_parameter", "cache_opt_in=2",
      "cache_opt_in")

# ---- content types and JSON syntax
check(s.api("POST", "/api/requests", token=tok, data="model_id=ok1",
            headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
      "unsupported_media_type", "form-urlencoded")
check(s.api("POST", "/api/models/ok1/requests", token=tok, data="CCO"), 415,
      "unsupported_media_type", "no Content-Type")
check(s.api("POST", "/api/models/ok1/requests", token=tok, data="<x/>",
            headers={"Content-Type": "application/xml"}), 415, "unsupported_media_type", "XML")
check(s.api("POST", "/api/requests", token=tok, data='{"model_id": "ok1", "inputs": [',
            headers={"Content-Type": "application/json"}), 400, "bad_json", "truncated JSON")
check(s.api("POST", "/api/requests", token=tok, data='["CCO"]',
            headers={"Content-Type": "application/json"}), 400, "bad_json", "JSON array body")
check(s.api("POST", "/api/requests", token=tok, data='',
            headers={"Content-Type": "application/json"}), 400, "bad_json", "empty JSON body")
r = s.api("POST", "/api/models/ok1/requests", token=tok, data="C\n" * 150000,
          headers={"Content-Type": "text/plain"})
t.status(r, 413, "body over fcgi.max_body: 413")

# ---- multipart
bnd = "XbNd"
nofile = ("--%s\r\nContent-Disposition: form-data; name=\"has_header\"\r\n\r\ntrue\r\n"
          "--%s--\r\n") % (bnd, bnd)
check(post_csv(nofile, ctype="multipart/form-data; boundary=" + bnd), 422, "no_file",
      "multipart without a file part")
check(post_csv(nofile, ctype="multipart/form-data"), 400, "bad_multipart",
      "multipart without boundary")
check(post_csv("--other\r\n\r\nx\r\n--other--", ctype="multipart/form-data; boundary=" + bnd),
      400, "bad_multipart", "multipart with the wrong boundary")
badopt = ("--%s\r\nContent-Disposition: form-data; name=\"has_header\"\r\n\r\nperhaps\r\n"
          "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nC\r\n"
          "--%s--\r\n") % (bnd, bnd, bnd)
check(post_csv(badopt, ctype="multipart/form-data; boundary=" + bnd), 422, "invalid_parameter",
      "multipart has_header=perhaps")
emptyfile = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n"
             "\r\n--%s--\r\n") % (bnd, bnd)
check(post_csv(emptyfile, ctype="multipart/form-data; boundary=" + bnd), 422, "no_inputs",
      "multipart with an empty file")

# client texts that are not UTF-8 (Latin-1 file name, odd User-Agent) are
# dropped from the metadata, never a failed submit
latin = (b"--XbNd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"mol\xe9s.csv\"\r\n"
         b"\r\nCCO\r\n--XbNd--\r\n")
r = s.api("POST", "/api/models/ok1/requests", token=tok, data=latin,
          headers={"Content-Type": "multipart/form-data; boundary=XbNd",
                   "User-Agent": "agent-\xe9"})
t.status(r, 201, "non-UTF-8 file name and User-Agent: still 201")
t.is_(s.sql("SELECT metadata ? 'filename', metadata ? 'user_agent' FROM work_request "
            "WHERE id = $1", (r.json or {}).get("id")), [("f", "f")], "  both left out")
long_name = ("\u00e9" * 200).encode()  # 400 bytes: cut at 256 on a character boundary
r = s.api("POST", "/api/models/ok1/requests", token=tok,
          data=b"--XbNd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + long_name +
          b"\"\r\n\r\nCCO\r\n--XbNd--\r\n",
          headers={"Content-Type": "multipart/form-data; boundary=XbNd"})
t.status(r, 201, "long UTF-8 file name: 201")
t.is_(s.sql("SELECT octet_length(metadata->>'filename') FROM work_request WHERE id = $1",
            (r.json or {}).get("id")), [("256",)], "  cut to 256 bytes, whole characters")

# ---- Idempotency-Key
check(post_json({"model_id": "ok1", "inputs": ["C"]}, headers={"Idempotency-Key": "k" * 256}),
      422, "invalid_idempotency_key", "Idempotency-Key of 256 characters")
check(post_json({"model_id": "ok1", "inputs": ["C"]}, headers={"Idempotency-Key": "a b"}),
      422, "invalid_idempotency_key", "Idempotency-Key with a space")

# ---- nothing was stored by any rejected submit
t.is_(count(), 6, "only the 6 accepted submits created requests")
t.is_(s.sql("SELECT count(*) FROM work_request_input WHERE request_id NOT IN "
            "(SELECT id FROM work_request)"), [("0",)], "no orphan inputs")

t.done()
