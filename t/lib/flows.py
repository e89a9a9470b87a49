"""
flows.py — the small request/poll helpers several test scripts shared as
copies: submit a request, poll a request until it ends, poll any condition,
read an API error code, listen for NOTIFY payloads.

Runs in: Python test scripts under /usr/bin/python3 (stdlib only).
Called by: t/1xx, t/2xx and t/4xx tests, with their own Stack and TAP:
    wait_for = functools.partial(flows.wait_for, t)
    rid = flows.submit(t, s, anon, "eos3b5e", ["CCO"])
    st = flows.wait_request(s, rid, timeout=60)
Owns: the psql process of a Listener (closed by close()).
"""
import re
import subprocess
import time

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


def error_code(r):
    """The "code" of an API error body, or None."""
    return ((r.json or {}).get("error") or {}).get("code")


def poll(cond, timeout, step):
    """Call cond() every step seconds until it returns a true value, which is
    returned; None after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def wait_for(t, what, cond, timeout=90, step=0.2):
    """poll(), and a TAP diag naming what when it times out."""
    v = poll(cond, timeout, step)
    if v is None:
        t.diag("timed out waiting for " + what)
    return v


def argv_literal(argv):
    """A PostgreSQL text[] literal of argv (for model.local_command); the
    elements are test-chosen words, double-quoted without escaping."""
    return "{" + ",".join('"%s"' % a for a in argv) + "}"


def submit(t, s, tok, model, inputs, **kw):
    """POST /api/requests with model_id, inputs and any further body fields;
    the new request's id, or None (with a TAP diag) when it is not 201."""
    body = {"model_id": model, "inputs": inputs}
    body.update(kw)
    r = s.api("POST", "/api/requests", token=tok, json=body)
    if r.status != 201:
        t.diag("submit: %s %s" % (r.status, r.text))
    return (r.json or {}).get("id")


def wait_request(s, rid, timeout=60, until=TERMINAL):
    """Poll work_request every 0.1 s until its status is in until; the row
    (status, failure_reason, failure_detail), last one seen on timeout."""
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = s.sql("SELECT status, failure_reason, failure_detail FROM work_request WHERE id = $1",
                   rid)[0]
        if st[0] in until:
            return st
        time.sleep(0.1)
    return st


def recv_all(c):
    """Everything c sends until it closes or a socket error (a timeout
    included) ends the read; closes c."""
    out = b""
    while True:
        try:
            chunk = c.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    c.close()
    return out


class Listener:
    """psql session LISTENing on one channel of the stack's database;
    drain() returns the payloads received since the last drain()."""

    def __init__(self, s, channel="work_queued"):
        self.channel = channel
        self.p = subprocess.Popen(s._psql_argv(s.db_name), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=s.env())
        self.n = 0
        self._cmd("LISTEN %s;" % channel)
        self.drain()

    def _cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def drain(self):
        out = []
        for _ in range(2):  # notifications print after the next command
            self.n += 1
            mark = "sync-%d" % self.n
            self._cmd("SELECT '%s';" % mark)
            while True:
                line = self.p.stdout.readline()
                if not line or line.strip() == mark:
                    break
                out.append(line)
        return re.findall(r'notification "%s" with payload "([^"]*)"' % re.escape(self.channel),
                          "".join(out))

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)
