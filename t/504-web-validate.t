#!/usr/bin/python3
# 504-web-validate.t — the sign-up checks of the page (web/pages/auth.js checkSignup, run under node) agree with the API's (POST /api/auth/signup on the real stack) field by field, so the form never refuses what the API takes or lets through what it refuses.
import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.path.abspath(os.environ.get("top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
sys.path.insert(0, os.path.join(SRC, "t", "lib"))
from tap import TAP  # noqa: E402

t = TAP()
node = shutil.which("node") or ("/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else None)
if not node:
    t.skip_all("node not installed")
from stack import Stack  # noqa: E402

CASES = [
    # username, email, password
    ("good_user", "good@example.com", "long-enough-pw"),
    ("ab", "a@example.com", "long-enough-pw"),
    ("a" * 33, "a@example.com", "long-enough-pw"),
    ("a" * 32, "a32@example.com", "long-enough-pw"),
    ("Upper", "u@example.com", "long-enough-pw"),
    ("with space", "s@example.com", "long-enough-pw"),
    ("dots.and-dash_", "d@example.com", "long-enough-pw"),
    ("émile", "e@example.com", "long-enough-pw"),
    ("", "x@example.com", "long-enough-pw"),
    ("noemail", "", "long-enough-pw"),
    ("twoat", "a@b@example.com", "long-enough-pw"),
    ("noat", "example.com", "long-enough-pw"),
    ("notld", "a@localhost", "long-enough-pw"),
    ("numtld", "a@example.123", "long-enough-pw"),
    ("dotstart", ".a@example.com", "long-enough-pw"),
    ("dotdot", "a..b@example.com", "long-enough-pw"),
    ("plus", "a+tag@example.co.uk", "long-enough-pw"),
    ("hyphen", "a@-example.com", "long-enough-pw"),
    ("shortpw", "sp@example.com", "123456789"),
    ("tenchars", "tc@example.com", "1234567890"),
    ("samepw1234", "same@example.com", "samepw1234"),
    ("samecase12", "sc@example.com", "SAMECASE12"),
    ("mailpw", "mailpw@example.com", "mailpw@example.com"),
    ("unicodepw", "upw@example.com", "ééééééééé"),
    ("unicodepw2", "upw2@example.com", "éééééééééé"),
    ("nopw", "nopw@example.com", ""),
]

s = Stack(config={"auth.pwhash_fast": "1"}, nginx=False)

tmp = tempfile.mkdtemp(prefix="modelhub-504-")
try:
    shutil.copytree(os.path.join(SRC, "web"), os.path.join(tmp, "web"))
    with open(os.path.join(tmp, "web", "package.json"), "w") as f:
        f.write('{"type": "module"}\n')
    script = os.path.join(tmp, "web", "check.js")
    with open(script, "w") as f:
        f.write("import { checkSignup } from './pages/auth.js';\n"
                "const cases = JSON.parse(process.argv[2]);\n"
                "console.log(JSON.stringify(cases.map(([u, e, p]) =>"
                " Object.keys(checkSignup({username: u, email: e, password: p})).sort())));\n")
    r = subprocess.run([node, script, json.dumps(CASES)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, cwd=os.path.join(tmp, "web"))
    if not t.ok(r.returncode == 0, "node runs checkSignup from web/pages/auth.js"):
        t.diag(r.stderr)
        client = [None] * len(CASES)
    else:
        client = json.loads(r.stdout)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

api_ok = 0
for (u, e, p), c in zip(CASES, client):
    r = s.api("POST", "/api/auth/signup", json={"username": u, "email": e, "password": p})
    if r.status == 201:
        server = []
        api_ok += 1
    else:
        server = sorted(((r.json or {}).get("error") or {}).get("fields", {}).keys())
    if not t.is_(c, server, "client and API agree on %r / %r / %r" % (u, e, p)):
        t.diag("API answered %s %s" % (r.status, r.text[:200]))
t.ok(api_ok >= 4, "%d cases were accepted by both (the table is not all failures)" % api_ok)
t.ok(len(CASES) - api_ok >= 15, "%d cases were refused (the table tests refusals)" % (len(CASES) - api_ok))
s.stop()
t.done()
