#!/usr/bin/python3
# 176-anon-doc-errors.t — the poll loop of docs/anonymous-requests.md ends (with a message) when the token was refused, the token is wrong or the hub is down, instead of looping for ever; the token step says why it got none.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, SRCDIR, free_port  # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1", "anon.per_ip_per_hour": "1"})
s.add_demo_models()
doc = open(os.path.join(SRCDIR, "docs", "anonymous-requests.md")).read()
blocks = re.findall(r"^```sh\n(.*?)^```$", doc, re.S | re.M)
token_block = [b for b in blocks if "/api/auth/anon" in b][0]
poll_block = [b for b in blocks if "while :" in b][0]


def run(script, env):
    e = dict(os.environ, **env)
    try:
        p = subprocess.run(["sh", "-eu", "-c", script], env=e, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        return p
    except subprocess.TimeoutExpired:
        return None


s.anon()  # the only token this address may take this hour
p = run(token_block + "\nREQ=1\n" + poll_block, {"MODELHUB_URL": s.url})
t.ok(p is not None, "refused token: the loop ends (no endless polling)")
t.like(p.stderr if p else "", r"no token: the hub refused", "the token step says why")
t.like(p.stderr if p else "", r"cannot read request 1", "the loop says it cannot read the request")
p = run("TOKEN=%s\nREQ=12345\n" % ("ab" * 32) + poll_block, {"MODELHUB_URL": s.url})
t.ok(p is not None and "cannot read request" in p.stderr, "a wrong token: ends")
p = run("TOKEN=x\nREQ=1\n" + poll_block, {"MODELHUB_URL": "http://127.0.0.1:%d" % free_port()})
t.ok(p is not None and "cannot read request" in p.stderr, "hub down: ends")
t.done()
