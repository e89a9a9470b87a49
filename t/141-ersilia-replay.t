#!/usr/bin/python3
# 141-ersilia-replay.t — replays, byte for byte as python-requests sends them,
# the calls the old Ersilia hub's documented client makes (anonymous login
# with a fresh UUID, list models, submit a file's lines, poll with
# include_result=True&csv_result=True, write the result lines) against the
# real stack with modelhubd and the demo model eos3b5e; checks the written
# file's values against RDKit, for a header-less 100-molecule file (the old
# smiles_100.csv shape) and an inchikey,smiles file.
import base64
import csv
import gzip
import http.client
import io
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=True)
s.add_demo_models()
host, port = s.url.split("//")[1].split(":")

# The recorded sequence: method, path (with {sid}/{id} filled in), whether
# the ErsiliaAnonymous header goes along, the JSON body, and the headers
# python-requests 2.28 adds on its own.
REQ_HEADERS = {"User-Agent": "python-requests/2.28.1", "Accept-Encoding": "gzip, deflate",
               "Accept": "*/*", "Connection": "keep-alive"}
SEQUENCE = [
    ("POST", "/api/auth/anonymous-login/{sid}", False, None),
    ("GET", "/api/models", True, None),
    ("POST", "/api/work-requests", True, "submit"),
    ("GET", "/api/work-requests/{id}?include_result=True&csv_result=True", True, None),
]


def send(method, path, auth=None, body=None):
    h = dict(REQ_HEADERS)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(data))
    elif method == "POST":
        h["Content-Length"] = "0"
    if auth:
        h["Authorization"] = auth
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    if r.getheader("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    c.close()
    return r.status, json.loads(raw or b"null")


def replay(model, lines, poll=0.5):
    """Drive SEQUENCE; returns the log of (step, status), the last answer
    and the session token."""
    log, auth, rid, result, token = [], None, None, None, None
    sid = str(uuid.uuid4())
    for method, path, with_auth, body in SEQUENCE:
        path = path.replace("{sid}", sid).replace("{id}", str(rid))
        payload = {"model_id": model, "request_payload": {"entries": lines}} if body else None
        end = time.time() + 240
        while True:
            st, j = send(method, path, auth if with_auth else None, payload)
            log.append((method + " " + path.split("?")[0].replace(sid, "{sid}")
                        .replace("/%s" % rid, "/{id}"), st))
            if st != 200:
                t.diag("%s %s -> %s %s" % (method, path, st, j))
                return log, None, token
            if path.startswith("/api/auth/"):
                auth = "ErsiliaAnonymous " + base64.b64encode(
                    json.dumps(j["session"]).encode()).decode()
                token = j["session"]["session_token"]
            elif method == "POST":
                rid = j["id"]
            elif path.startswith("/api/work-requests/"):
                if j["request_status"] not in ("COMPLETED", "FAILED") and time.time() < end:
                    time.sleep(poll)
                    continue
                result = j
            elif path == "/api/models":
                result = j
            break
    return log, result, token


def rdkit_weights(smiles):
    out = subprocess.run(["/usr/bin/python3", "-c",
                          "import sys,json\nfrom rdkit import Chem\nfrom rdkit.Chem import Descriptors\n"
                          "print(json.dumps([Descriptors.MolWt(Chem.MolFromSmiles(x)) "
                          "for x in json.loads(sys.argv[1])]))", json.dumps(smiles)],
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out or "[]")


# 100 header-less lines, as readlines() gives them (newline kept)
SMILES = []
for n in range(1, 26):
    SMILES += ["C" * n, "C" * n + "O", "C" * n + "N", "C" * n + "Cl"]
lines = [x + "\n" for x in SMILES]
log, res, tok = replay("eos3b5e", lines)
t.is_([st for _, st in log if not _.startswith("GET /api/work-requests/")] +
      [log[-1][1] if log else None], [200, 200, 200, 200],
      "login, models, submit, polls: every answer 200")
t.is_([x for x, _ in log][:3], ["POST /api/auth/anonymous-login/{sid}", "GET /api/models",
                                 "POST /api/work-requests"], "  in the old client's order")
res = res or {}
t.is_(res.get("request_status"), "COMPLETED", "polling ended COMPLETED")
out = os.path.join(s.tmp, "smiles_100_output.csv")
with open(out, "w+") as f:
    for line in res.get("result") or []:
        f.write(line + "\n")
with open(out, newline="") as f:
    rows = list(csv.reader(f))
t.is_(rows[:1], [["input", "mol_weight"]], "output file header input,mol_weight")
t.is_([r[0] for r in rows[1:]], SMILES, "100 rows, every molecule in order (none taken as a header)")
want = rdkit_weights(SMILES)
bad = [(r, w) for r, w in zip(rows[1:], want) if len(r) != 2 or abs(float(r[1]) - w) > 1e-6]
t.ok(len(want) == 100 and not bad, "every value is RDKit's molecular weight")
if bad:
    t.diag("first mismatches: %r" % bad[:3])

# the catalogue step of the same sequence, as print_models shows it
st, j = send("POST", "/api/auth/anonymous-login/" + str(uuid.uuid4()))
st, models = send("GET", "/api/models", "ErsiliaAnonymous " + base64.b64encode(
    json.dumps(j["session"]).encode()).decode())
t.ok(st == 200 and any(m.get("id") == "eos3b5e" and m.get("enabled") is True
                       for m in models.get("items", [])), "models list: eos3b5e enabled")

# an inchikey,smiles file (chembl_selected.csv's shape) through the same calls
keys = ["KEY%02d-TESTONLY-N" % i for i in range(1, 25)]
chem = SMILES[:24]
lines = ["inchikey,smiles\n"] + ["%s,%s\n" % kv for kv in zip(keys, chem)]
log, res, tok = replay("eos3b5e", lines)
res = res or {}
t.is_(res.get("request_status"), "COMPLETED", "inchikey,smiles file: COMPLETED")
t.is_([res.get("input_size"), res.get("request_payload", {}).get("has_header")], [25, True],
      "  the header line counted as the old hub did, 24 inputs")
rows = list(csv.reader(io.StringIO("\n".join(res.get("result") or []))))
t.is_(rows[:1], [["input", "mol_weight"]], "  result header input,mol_weight (the old shape)")
t.is_([r[0] for r in rows[1:]], chem, "  the smiles column was the input, in order")
want = rdkit_weights(chem)
t.ok(len(rows) == 25 and all(abs(float(r[1]) - w) < 1e-6 for r, w in zip(rows[1:], want)),
     "  24 correct molecular weights")
r = s.api("GET", "/api/requests/%s/result?format=csv" % res.get("id"), token=tok)
rows = list(csv.reader(io.StringIO(r.text)))
t.is_(rows[:1], [["key", "input", "mol_weight"]],
      "  the same request downloaded from modelhub's own API: key,input,mol_weight")
t.is_([(x[0], x[1]) for x in rows[1:]], list(zip(keys, chem)), "  each InChIKey carried as key")
t.done()
