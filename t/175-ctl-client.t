#!/usr/bin/python3
# 175-ctl-client.t — modelhubctl submit/status/result/cancel against the real stack: URL and token from the environment or --url/--token-file, submit --wait writes the result (CSV or JSON, -o), an anonymous token when none is given, cancel, and the error paths (API errors with their message, bad ids, bad format, unreachable hub).
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, free_port      # noqa: E402

t = TAP()
s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
tok = s.user("cli_user")
env = {"MODELHUB_CLIENT_URL": s.url, "MODELHUB_CLIENT_TOKEN": tok}
inp = os.path.join(s.tmp, "in.csv")
with open(inp, "w") as f:
    f.write("smiles\nCCO\nc1ccccc1\nCC(=O)O\n")

r = s.ctl("submit", "eos3b5e", inp, "--header", env=env)
t.is_(r.returncode, 0, "submit exits 0 (%s)" % r.stderr.strip())
rid = r.stdout.strip()
t.like(rid, r"^\d+$", "submit prints the request id")
r = s.ctl("status", rid, env=env)
t.like(r.stdout, r"^%s (QUEUED|RUNNING|COMPLETED) \d+/3\n$" % rid, "status: id, status, done/total")
r = s.ctl("status", rid, "--format", "json", env=env)
t.is_(json.loads(r.stdout).get("id"), int(rid), "status --format json prints the request object")

out = os.path.join(s.tmp, "out.csv")
r = s.ctl("submit", "eos3b5e", inp, "--header", "--wait", "-o", out, env=env, timeout=180)
t.is_(r.returncode, 0, "submit --wait exits 0 when COMPLETED")
t.like(r.stderr, r"request \d+ submitted", "says what it submitted (no progress bar: stderr is not a terminal)")
rid2 = r.stderr.split("request ")[1].split()[0]
api = s.api("GET", "/api/requests/%s/result?format=csv" % rid2, token=tok)
t.is_(open(out, newline="").read(), api.text, "-o OUT holds the CSV result, byte for byte the API's")
t.like(api.text.splitlines()[0], r"^input,mol_weight", "a real result")
t.is_(s.sql("SELECT has_header, header FROM work_request WHERE id = $1", rid2), [("t", "smiles")],
      "--header: the first line is the header")
r = s.ctl("result", rid2, "--format", "json", env=env)
t.is_(json.loads(r.stdout).get("id"), int(rid2), "result --format json to stdout")
t.is_(len(json.loads(r.stdout).get("results", [])), 3, "with the 3 results")

tf = os.path.join(s.tmp, "token")
with open(tf, "w") as f:
    f.write(tok + "\n")
r = s.ctl("status", rid2, "--url", s.url + "/", "--token-file", tf, env={"MODELHUB_CLIENT_TOKEN": ""})
t.like(r.stdout, r"^%s COMPLETED 3/3" % rid2, "--url and --token-file")

# no token: an anonymous one, printed so it can be reused
r = s.ctl("submit", "eos3b5e", inp, env={"MODELHUB_CLIENT_URL": s.url})
t.is_(r.returncode, 0, "submit without a token works")
m = __import__("re").search(r"anonymous token ([0-9a-f]{64})", r.stderr)
t.ok(m, "and prints the anonymous token it used")
arid = r.stdout.strip()
r = s.ctl("status", arid, env={"MODELHUB_CLIENT_URL": s.url, "MODELHUB_CLIENT_TOKEN": m.group(1) if m else ""})
t.like(r.stdout, r"^%s " % arid, "that token reads the request")
r = s.ctl("status", arid, env=env)
t.is_(r.returncode, 1, "someone else's request: exit 1")
t.like(r.stderr, r"404 request_not_found", "with the API's code")

# cancel (no runner: it stays queued)
s.stop_hubd()
rid3 = s.ctl("submit", "eos3b5e", inp, env=env).stdout.strip()
r = s.ctl("cancel", rid3, env=env)
t.is_((r.returncode, r.stdout.split()[:2]), (0, [rid3, "CANCELLED"]), "cancel prints the new status")
r = s.ctl("cancel", rid3, env=env)
t.is_(r.returncode, 1, "cancel again: exit 1")
t.like(r.stderr, r"409 already_finished", "409 already_finished")
r = s.ctl("result", rid3, env=env)
t.is_(r.returncode, 1, "result of a cancelled request: exit 1")

# errors
r = s.ctl("submit", "no_such_model", inp, env=env)
t.is_(r.returncode, 1, "unknown model: exit 1")
t.like(r.stderr, r"submit: 4\d\d \w+: ", "with the API's status, code and message")
r = s.ctl("submit", "eos3b5e", os.path.join(s.tmp, "missing.csv"), env=env)
t.is_(r.returncode, 1, "missing file: exit 1")
t.is_(s.ctl("status", "abc", env=env).returncode, 2, "bad id: usage error 2")
t.is_(s.ctl("result", "1", "--format", "xml", env=env).returncode, 2, "bad --format: 2")
t.is_(s.ctl("submit", "eos3b5e", env=env).returncode, 2, "missing FILE: 2")
r = s.ctl("status", rid, env={"MODELHUB_CLIENT_URL": "http://127.0.0.1:%d" % free_port(), "MODELHUB_CLIENT_TOKEN": tok})
t.is_(r.returncode, 1, "unreachable hub: exit 1")
t.like(r.stderr, r"(?i)connect", "says it could not connect")
r = s.ctl("status", rid, env={"MODELHUB_CLIENT_URL": s.url, "MODELHUB_CLIENT_TOKEN": "0" * 64})
t.like(r.stderr, r"401 session_expired", "a bad token: 401 session_expired")
t.done()
