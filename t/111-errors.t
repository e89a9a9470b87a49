#!/usr/bin/python3
# 111-errors.t — the API's error answers through nginx and straight over
# FastCGI: 413 body too large (and the worker stays usable), 400 bad JSON,
# 415 wrong content type, 404 unknown route, 405 with Allow, the JSON error
# shape, X-Request-Id on every answer and in the access log line.
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
import stack                            # noqa: E402
from stack import Stack, fcgi_request   # noqa: E402
from flows import error_code as code, recv_all  # noqa: E402

t = TAP()
MAX = 20000
s = Stack(config={"fcgi.max_body": str(MAX)})
adm = s.admin_token


def shape_ok(r):
    e = (r.json or {}).get("error")
    return isinstance(e, dict) and isinstance(e.get("code"), str) and isinstance(e.get("message"), str)


ids = set()


def check_id(r, what):
    rid = r.headers.get("x-request-id", "")
    t.like(rid, r"^[0-9a-f]{16}$", "%s: X-Request-Id present" % what)
    t.ok(rid not in ids, "%s: request id is new" % what)
    ids.add(rid)
    return rid


# ---- 413
pad = '{"id":"big","description":"' + "x" * MAX + '"}'
r = s.api("POST", "/api/models", data=pad, headers={"Content-Type": "application/json"}, token=adm)
t.status(r, 413, "body one byte over fcgi.max_body: 413")
t.is_(code(r), "body_too_large", "code body_too_large")
t.ok(shape_ok(r), "413 has the JSON error shape")
check_id(r, "413")
r = s.api("GET", "/api/health")
t.status(r, 200, "the server still answers after a 413")
body = '{"id":"m111"}'
body = body + " " * (MAX - len(body))
r = s.api("POST", "/api/models", data=body, headers={"Content-Type": "application/json"}, token=adm)
t.status(r, 201, "a body of exactly fcgi.max_body bytes is accepted")

# straight to FastCGI: a huge CONTENT_LENGTH is answered 413 and drained, so
# the next request on the same socket/worker works
big = b"y" * (MAX * 20)
r = fcgi_request(s.fcgi_socket, "POST", "/api/models", big,
                 {"Content-Type": "application/json", "Authorization": "Bearer " + adm})
t.status(r, 413, "FastCGI direct: 413 for a 400 kB body")
for i in range(4):
    r = fcgi_request(s.fcgi_socket, "GET", "/api/ping", b"", {})
    t.status(r, 200, "FastCGI direct: worker usable after the 413 (%d)" % i)



def raw_fcgi(params, stdin_chunks):
    """A hand-made FastCGI request (the harness client always sends a
    consistent CONTENT_LENGTH); returns the raw stdout bytes."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(s.fcgi_socket)
    pv = b"".join(stack._fcgi_nv(k, v) for k, v in params.items())
    msg = (stack._fcgi_record(stack._FCGI_BEGIN, struct.pack(">HB5x", 1, 0)) +
           stack._fcgi_record(stack._FCGI_PARAMS, pv) + stack._fcgi_record(stack._FCGI_PARAMS, b""))
    for ch in stdin_chunks:
        msg += stack._fcgi_record(stack._FCGI_STDIN, ch)
    c.sendall(msg + stack._fcgi_record(stack._FCGI_STDIN, b""))
    return recv_all(c)


base = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/models", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": "Bearer " + adm}
out = raw_fcgi(dict(base, CONTENT_LENGTH="12abc"), [b'{"id":"x"}'])
t.ok(b"Status: 400" in out and b"invalid Content-Length" in out, "FastCGI: malformed CONTENT_LENGTH: 400")
out = raw_fcgi(dict(base, CONTENT_LENGTH="-5"), [])
t.ok(b"Status: 400" in out, "FastCGI: negative CONTENT_LENGTH: 400")
out = raw_fcgi(dict(base, CONTENT_LENGTH="100"), [b'{"id":"m111short"}'])
t.ok(b"Status: 400" in out and b"cut short" in out, "FastCGI: body shorter than CONTENT_LENGTH: 400")
out = raw_fcgi({"REQUEST_URI": "/api/ping"}, [])
t.ok(b"Status: 200" in out, "FastCGI: no REQUEST_METHOD is treated as GET")
out = raw_fcgi({"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/api/ping"}, [])
t.ok(b"Status: 200" in out, "FastCGI: DOCUMENT_URI is used when REQUEST_URI is missing")
t.is_(s.sql("SELECT count(*) FROM model WHERE id IN ('x', 'm111short')")[0][0], "0",
      "malformed requests stored nothing")

# ---- 400 bad JSON
for bad in ('{"id": ', '{"id": "x"} trailing', "[1,2]", "{'id': 'x'}", "", "null"):
    r = s.api("POST", "/api/models", data=bad, headers={"Content-Type": "application/json"},
              token=adm)
    t.status(r, 400, "bad JSON %r: 400" % bad)
    t.is_(code(r), "bad_json", "code bad_json")
    t.ok(shape_ok(r), "400 JSON error shape")

for bad, what in ((b'{"id":"m111u","description":"\xff"}', "invalid UTF-8"),
                  (b'{"id":"m111u","details":{"a":"x\\u0000y"}}', "\\u0000 in a nested string")):
    r = s.api("POST", "/api/models", data=bad, headers={"Content-Type": "application/json"},
              token=adm)
    t.status(r, 400, "%s: 400, not a database error" % what)
    t.is_(code(r), "bad_json", "code bad_json")

# invalid UTF-8 reaching SQL through a query parameter is the client's
# error (api_db_fail maps SQLSTATE class 22 to 400), never a 500
for path in ("/api/recommendations?model_id=%FF", "/api/admin/requests?model_id=%FF%FE",
             "/api/instances?model=%C0%AF"):
    r = s.api("GET", path, token=adm)
    t.ok(400 <= r.status < 500 and shape_ok(r), "GET %s: 4xx with a JSON error (%d)" % (path, r.status))

# ---- 415
for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp", None):
    h = {"Content-Type": ct} if ct else {}
    r = s.api("POST", "/api/models", data='{"id":"m111b"}', headers=h, token=adm)
    t.status(r, 415, "content type %s: 415" % ct)
    t.is_(code(r), "unsupported_media_type", "code unsupported_media_type")
r = s.api("POST", "/api/models", data='{"id":"m111c"}',
          headers={"Content-Type": "application/json; charset=utf-8"}, token=adm)
t.status(r, 201, "application/json with charset is accepted")

# ---- 404
for path in ("/api/nope", "/api/models/m111/nothing", "/api/", "/api/models/", "/api//models"):
    r = s.api("GET", path)
    t.status(r, 404, "GET %s: 404" % path)
    t.is_(code(r), "not_found", "code not_found")
    t.ok(shape_ok(r), "404 JSON error shape")
    check_id(r, "404 %s" % path)

# ---- 405 with Allow
r = s.api("PUT", "/api/models")
t.status(r, 405, "PUT /api/models: 405")
t.is_(code(r), "method_not_allowed", "code method_not_allowed")
t.is_(r.headers.get("allow"), "GET, POST", "Allow: GET, POST")
r = s.api("POST", "/api/models/m111", json={})
t.status(r, 405, "POST /api/models/{id}: 405")
t.is_(r.headers.get("allow"), "GET, PATCH, DELETE", "Allow: GET, PATCH, DELETE")
r = s.api("DELETE", "/api/health")
t.ok(r.status == 405 and r.headers.get("allow") == "GET", "DELETE /api/health: 405, Allow GET")

# ---- request ids: in the response and in the fcgi log line
r = s.api("GET", "/api/health")
rid = check_id(r, "health")
r2 = s.api("GET", "/api/health")
t.isnt(r2.headers.get("x-request-id"), rid, "two requests, two ids")
log = s.logs.get("fcgi")
found = ""
for _ in range(50):
    with open(log) as f:
        found = [ln for ln in f if ("req=" + rid) in ln]
    if found:
        break
    time.sleep(0.1)
t.ok(found, "the request id appears in the fcgi log")
t.like(found[-1] if found else "", r"access method=GET path=/api/health status=200 ms=[0-9.]+",
       "one access line: method path status ms")
with open(log) as f:
    text = f.read()
t.ok(adm not in text, "the admin token never appears in the log")
t.ok(not re.search(r"x{100}", text), "request bodies are not logged")

s.stop()
t.done()
