#!/usr/bin/python3
# 900-nginx-json-errors.t — errors nginx answers itself on /api/ paths (a malformed header line, headers too large, a URI too long, a method refused, a body too large, the API down) come out in the API's JSON error shape, not nginx's HTML (issue 17, finding 7).
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(nginx=True, config={"fcgi.max_body": "1048576"})


def raw(data, timeout=10):
    """Send bytes to nginx, read the whole answer: (status, headers, body)."""
    c = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
    try:
        c.sendall(data)
        out = b""
        while True:
            try:
                b = c.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
    finally:
        c.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, hdrs, body


def check(name, data, status, code):
    st, h, body = raw(data)
    try:
        err = json.loads(body.decode()).get("error") or {}
    except ValueError:
        err = {}
    t.is_(st, status, "%s: %d" % (name, status))
    t.ok(h.get("content-type", "").startswith("application/json"),
         "... Content-Type application/json (%s)" % h.get("content-type"))
    t.ok(err.get("code") == code and err.get("message"),
         "... JSON error shape, code %s (%r)" % (code, body[:80]))


host = b"Host: 127.0.0.1\r\n"
check("a header line without a colon", b"GET /api/health HTTP/1.1\r\n" + host +
      b"no colon here\r\n\r\n", 400, "bad_request")
check("a header of 40 KiB", b"GET /api/health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 40960 +
      b"\r\n\r\n", 400, "bad_request")
check("a URI of 40 KiB", b"GET /api/health?x=" + b"a" * 40960 + b" HTTP/1.1\r\n" + host +
      b"\r\n", 414, "uri_too_long")
check("a body over client_max_body_size", b"POST /api/requests HTTP/1.1\r\n" + host +
      b"Content-Type: text/csv\r\nContent-Length: 9000000\r\n\r\n", 413, "body_too_large")
check("a method nginx refuses on a static path", b"POST /index.html HTTP/1.1\r\n" + host +
      b"Content-Length: 0\r\n\r\n", 405, "method_not_allowed")

# the API's own answers pass through untouched
st, h, body = raw(b"GET /api/requests HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
t.ok(st == 401 and b'"unauthorized"' in body, "the API's own 401 passes through (%d)" % st)
st, h, body = raw(b"GET /no-such-page.html HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
t.is_(st, 404, "a missing page is still nginx's own 404")

s.stop_fcgi()
check("the API server down", b"GET /api/health HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n",
      502, "unavailable")
s.stop()
t.done()
