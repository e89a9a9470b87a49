#!/usr/bin/python3
# 903-model-response-cap.t — a model's answer is held in memory only up to hub.max_response_mib (issue 17, finding 7): a chunk whose answer passes the cap is cut and bisected like a rejected batch, so only the input whose answer alone is too large fails, naming the cap, and the others get their results; the runner keeps working.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "1", "hub.chunk_size": "10",
                              "hub.max_response_mib": "1"})
# a model server answering 2 MiB for an input starting with "BIG", a few
# bytes otherwise
SERVER = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, obj):
        b = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        try:
            self.wfile.write(b)
        except OSError:
            pass
    def do_GET(self):
        self.reply({"status": "ok"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        items = json.loads(self.rfile.read(n))
        xs = [i if isinstance(i, str) else i["input"] for i in items]
        self.reply([{"input": x, "key": x, "v": ("y" * (2 << 20)) if x.startswith("BIG") else x}
                    for x in xs])
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''
argv = ["/usr/bin/python3", "-c", SERVER, "{port}"]
s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds, details)"
      " VALUES ('cap', $1::text[], 1, 60, '{\"input_screen\": \"false\"}')",
      "{" + ",".join('"%s"' % a.replace("\\", "\\\\").replace('"', '\\"') for a in argv) + "}")
s.start_hubd()
tok = s.anon()
inputs = ["A1", "A2", "BIG3", "A4", "A5"]
rid = flows.submit(t, s, tok, "cap", inputs)
st = flows.wait_request(s, rid, timeout=90)
t.diag("request: %s" % (st,))
r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=tok)
res = (r.json or {}).get("results") or []
t.diag("results: %s" % [(x.get("input"), (x.get("error") or "")[:80], len(str(x.get("record"))))
                        for x in res])
ok_inputs = [x.get("input") for x in res if x.get("record") and not x.get("error")]
t.is_(ok_inputs, ["A1", "A2", "A4", "A5"], "the inputs with small answers got their results")
big = [x for x in res if x.get("input") == "BIG3"]
t.ok(big and not big[0].get("record") and "hub.max_response_mib" in str(big[0]),
     "the input whose answer is over the cap has none, and says why (%s)" % (big[:1],))
with open(s.logs["hubd"], errors="replace") as f:
    log = f.read()
t.like(log, r"answer cut: larger than hub.max_response_mib", "the hub's log names the cap")
rid2 = flows.submit(t, s, tok, "cap", ["A6"])
st2 = flows.wait_request(s, rid2, timeout=60)
t.is_(st2 and st2[0], "COMPLETED", "the runner goes on serving the model")
s.stop()
t.done()
