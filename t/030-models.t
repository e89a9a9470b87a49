#!/usr/bin/python3
# 030-models.t — the demo model servers (models/serve.py) speak the ersilia-pack API correctly.
"""Starts real serve.py processes on free loopback ports (--port 0, port read
from the "listening" log line) and checks every endpoint, the strict mode,
ASYNC jobs, the load model's CPU and memory (from /proc of the child), the
fault options and models/catalog.json. Stdlib only."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("top_srcdir") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
from tap import TAP  # noqa: E402

SERVE = os.path.join(TOP, "models", "serve.py")
CATALOG = os.path.join(TOP, "models", "catalog.json")
PY = "/usr/bin/python3"
t = TAP()
procs = []


class Server:
    """One serve.py child; stderr goes to a temp file that we read."""

    def __init__(self, *args, env=None, wait=True, argv=None):
        self.log = tempfile.NamedTemporaryFile(prefix="t030-", suffix=".log", delete=False)
        e = dict(os.environ)
        e.update(env or {})
        if argv is None:
            argv = [PY, SERVE, "--host", "127.0.0.1", "--port", "0"] + list(args)
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log,
                                  env=e, start_new_session=True)
        procs.append(self)
        self.port = None
        self.started = time.monotonic()
        if wait:
            self.wait_listening()

    def text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def wait_listening(self, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.text().splitlines():
                if " listening " in line:
                    for kv in line.split():
                        if kv.startswith("port="):
                            self.port = int(kv[5:])
                            return True
            if self.p.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_ready(self, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st, _, _ = req(self, "GET", "/healthz")
            if st == 200:
                return True
            time.sleep(0.02)
        return False

    def stat_cpu(self):
        """utime + stime of the child in seconds, from /proc/PID/stat."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status_kib(self, key):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return -1

    def stop(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def req(srv, method, path, body=None, raw=None, timeout=30):
    """(status, parsed JSON or None, raw bytes); status None on connection failure."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    r = urllib.request.Request(srv.url(path), data=data, method=method)
    if data is not None:
        r.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            st, b = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        st, b = e.code, e.read()
    except (urllib.error.URLError, ConnectionError, http.client.HTTPException, OSError):
        return None, None, b""
    try:
        return st, json.loads(b), b
    except ValueError:
        return st, None, b


def close(a, b, eps=0.01):
    return isinstance(a, (int, float)) and abs(a - b) <= eps


def job_wait(srv, job_id, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st, j, _ = req(srv, "GET", "/job/status/" + job_id)
        if st != 200 or j.get("status") != "pending":
            return st, j
        time.sleep(0.02)
    return None, None


def raw_http(port, data, timeout=10):
    """Send raw bytes, return everything the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            return out
        return out
    finally:
        s.close()


MOLS = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
        "O", "C", "CCN(CC)CC", "c1ccc2ccccc2c1", "OC(=O)CC(O)(CC(O)=O)C(O)=O", "N#N"]
MW = {"CCO": 46.069, "c1ccccc1": 78.114, "O": 18.015, "C": 16.043}


def test_cli():
    r = subprocess.run([PY, SERVE, "--model", "no-such-model", "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    t.is_(r.returncode, 2, "unknown model exits 2")
    t.like(r.stderr, "unknown model 'no-such-model'", "unknown model says why")
    r = subprocess.run([PY, SERVE, "--port", "0"], capture_output=True, text=True, timeout=30)
    t.is_(r.returncode, 2, "missing --model exits 2")
    r = subprocess.run([PY, SERVE, "--model", "load", "--cpu-per-input", "-1"],
                       capture_output=True, text=True, timeout=30)
    t.is_(r.returncode, 2, "negative --cpu-per-input exits 2")
    # Port already taken -> exit 1 with a message.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    r = subprocess.run([PY, SERVE, "--model", "eos3b5e", "--host", "127.0.0.1",
                        "--port", str(s.getsockname()[1])],
                       capture_output=True, text=True, timeout=30)
    s.close()
    t.is_(r.returncode, 1, "port in use exits 1")
    t.like(r.stderr, "cannot listen", "port in use says why")


def test_eos3b5e():
    srv = Server("--model", "eos3b5e")
    t.ok(srv.port, "eos3b5e listening")
    t.ok(srv.wait_ready(), "eos3b5e healthz 200")
    t.ok(time.monotonic() - srv.started < 5, "eos3b5e ready in under 5 s")
    st, h, _ = req(srv, "GET", "/healthz")
    t.ok(isinstance(h, dict) and "state" in h.get("breaker", {}) and
         "cpu" in h.get("system", {}) and "memory" in h["system"], "healthz ersilia-like body")
    st, j, _ = req(srv, "GET", "/")
    t.is_(j, {"eos3b5e": "molecular-weight"}, "GET / identifier -> slug")
    st, j, _ = req(srv, "GET", "/card")
    t.ok(st == 200 and j.get("Identifier") == "eos3b5e" and j.get("Output Type") == ["Float"],
         "GET /card")
    st, j, _ = req(srv, "GET", "/card/Slug")
    t.is_((st, j), (200, {"Slug": "molecular-weight"}), "GET /card/Slug")
    st, j, _ = req(srv, "GET", "/card/Nope")
    t.is_(st, 404, "GET /card/<unknown field> 404")
    st, j, _ = req(srv, "GET", "/models/status")
    t.ok(st == 200 and isinstance(j, list) and j[0]["modelName"] == "eos3b5e" and
         j[0]["workers"][0]["status"] == "NOT_READY" and
         j[0]["workers"][0]["pid"] == srv.p.pid, "models/status reports NOT_READY like ersilia-pack")
    st, j, _ = req(srv, "GET", "/run/columns/output")
    t.is_((st, j), (200, ["mol_weight"]), "columns/output")
    st, j, _ = req(srv, "GET", "/run/columns/input")
    t.is_(j, ["input"], "columns/input")
    st, j, _ = req(srv, "GET", "/run/example/output")
    t.ok(st == 200 and close(j[0]["mol_weight"], 46.069), "example/output")

    st, j, raw = req(srv, "POST", "/run?orient=records", ["CCO", "c1ccccc1"])
    t.is_(st, 200, "run 200")
    t.ok(close(j[0]["mol_weight"], 46.07), "CCO -> 46.07")
    t.ok(close(j[1]["mol_weight"], 78.114, 1e-9), "benzene -> 78.114")
    t.ok(b"78.11399999999999" in raw, "full float precision kept in JSON (like ersilia-pack)")
    st, j, _ = req(srv, "POST", "/run", ["CCO"])
    t.ok(st == 200 and close(j[0]["mol_weight"], 46.069), "orient defaults to records")

    # Order: 200 inputs, each checked against a one-input call.
    batch = [MOLS[i % len(MOLS)] for i in range(200)]
    st, j, _ = req(srv, "POST", "/run?orient=records", batch)
    singles = {}
    for m in MOLS:
        singles[m] = req(srv, "POST", "/run", [m])[1][0]["mol_weight"]
    t.ok(st == 200 and len(j) == 200 and
         all(j[i]["mol_weight"] == singles[batch[i]] for i in range(200)),
         "200 inputs: one record each, in input order")
    t.ok(all(close(singles[k], v) for k, v in MW.items()), "known weights (water, methane)")

    st, j, _ = req(srv, "POST", "/run", [{"key": "k1", "input": "CCO"},
                                         {"key": "k2", "input": "c1ccccc1"}])
    t.ok(st == 200 and close(j[0]["mol_weight"], 46.069) and close(j[1]["mol_weight"], 78.114),
         "key/input objects accepted")

    st, j, _ = req(srv, "POST", "/run", ["CCO", "not_a_smiles", "", "C1CC", "c1ccccc1"])
    t.is_(st, 200, "invalid SMILES do not fail the batch (non-strict)")
    t.ok(j and [r["mol_weight"] is None for r in j] == [False, True, True, True, False],
         "invalid/empty/unclosed-ring SMILES -> record with null columns")
    t.ok(j and list(j[1].keys()) == ["mol_weight"], "null record still has every column")

    st, j, _ = req(srv, "POST", "/run", [])
    t.is_((st, j), (422, {"detail": "Data is empty."}), "empty array -> 422 Data is empty.")
    st, j, _ = req(srv, "POST", "/run", raw=b"CCO\nc1ccccc1\n")
    t.is_(st, 422, "non-JSON body -> 422")
    st, j, _ = req(srv, "POST", "/run", raw=b"")
    t.is_(st, 422, "no body -> 422")
    st, j, _ = req(srv, "POST", "/run", {"input": "CCO"})
    t.is_(st, 422, "JSON object instead of array -> 422")
    st, j, _ = req(srv, "POST", "/run", ["CCO", 5])
    t.is_(st, 422, "non-string element -> 422")
    st, j, _ = req(srv, "POST", "/run?orient=bogus", ["CCO"])
    t.is_(st, 422, "unknown orient -> 422")
    st, j, _ = req(srv, "GET", "/run")
    t.is_(st, 405, "GET /run -> 405")
    st, j, _ = req(srv, "GET", "/nope")
    t.is_((st, j), (404, {"detail": "Not Found"}), "unknown path -> 404")

    st, j, _ = req(srv, "POST", "/run?orient=columns", ["CCO", "C"])
    t.ok(st == 200 and close(j["mol_weight"]["0"], 46.069) and close(j["mol_weight"]["1"], 16.043),
         "orient=columns")
    st, j, _ = req(srv, "POST", "/run?orient=values", ["CCO"])
    t.ok(st == 200 and close(j[0][0], 46.069), "orient=values")
    st, j, _ = req(srv, "POST", "/run?orient=split", ["CCO"])
    t.ok(st == 200 and j["columns"] == ["mol_weight"] and close(j["data"][0][0], 46.069),
         "orient=split")

    # ASYNC flow on the same server.
    st, j, _ = req(srv, "POST", "/job/submit?orient=records", batch)
    t.ok(st == 200 and j.get("message") == "Job submitted successfully." and j.get("job_id"),
         "job submit")
    job = j["job_id"]
    st, s = job_wait(srv, job)
    t.is_((st, s), (200, {"job_id": job, "status": "completed"}), "job completes")
    st, r, _ = req(srv, "GET", "/job/result/" + job)
    t.ok(st == 200 and len(r) == 200 and
         all(r[i]["mol_weight"] == singles[batch[i]] for i in range(200)),
         "job result: same records as /run, in order")
    st, j, _ = req(srv, "POST", "/job/submit", ["CCO", "zz"])
    st, s = job_wait(srv, j["job_id"])
    st, r, _ = req(srv, "GET", "/job/result/" + j["job_id"])
    t.ok(s["status"] == "completed" and close(r[0]["mol_weight"], 46.069) and
         r[1] == {"mol_weight": None}, "non-strict job: invalid SMILES -> null record")
    st, j, _ = req(srv, "GET", "/job/status/00000000-0000-0000-0000-000000000000")
    t.is_((st, j), (404, {"detail": "Job not found"}), "unknown job status -> 404")
    st, j, _ = req(srv, "GET", "/job/result/nope")
    t.is_((st, j), (404, {"detail": "Job not found"}), "unknown job result -> 404")
    st, j, _ = req(srv, "POST", "/job/submit", [])
    t.is_((st, j), (422, {"detail": "Data is empty."}), "empty job -> 422")
    st, j, _ = req(srv, "POST", "/job/jobs/reset", [])
    st2, _, _ = req(srv, "GET", "/job/status/" + job)
    t.ok(st == 200 and st2 == 404, "job reset clears the job table")

    # modelhub extension: canonical SMILES.
    st, j, _ = req(srv, "POST", "/canonical", ["OCC", "C(O)C", " CCO ", "nope", "c1ccccc1"])
    t.is_((st, j), (200, ["CCO", "CCO", "CCO", None, "c1ccccc1"]), "/canonical")
    st, j, _ = req(srv, "POST", "/canonical", [])
    t.is_(st, 422, "/canonical empty -> 422")

    # Concurrency: 16 clients at once, each gets its own answer.
    results = [None] * 16

    def worker(i):
        b = [MOLS[(i + k) % len(MOLS)] for k in range(50)]
        st, j, _ = req(srv, "POST", "/run", b)
        results[i] = st == 200 and [r["mol_weight"] for r in j] == [singles[m] for m in b]

    th = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for x in th:
        x.start()
    for x in th:
        x.join(60)
    t.ok(all(results), "16 concurrent /run calls all correct")

    # Keep-alive: several requests on one connection (libcurl reuses connections).
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    ok = True
    for _ in range(3):
        c.request("POST", "/run", body=b'["CCO"]', headers={"Content-Type": "application/json"})
        r = c.getresponse()
        ok = ok and r.status == 200 and close(json.loads(r.read())[0]["mol_weight"], 46.069)
    c.close()
    t.ok(ok, "keep-alive: three calls on one connection")

    # Expect: 100-continue (libcurl sends it for large bodies and would wait 1 s).
    body = json.dumps(["CCO"] * 500).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
    first = s.recv(100)
    s.sendall(body)
    rest = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    t.ok(first.startswith(b"HTTP/1.1 100"), "Expect: 100-continue answered before the body")
    t.ok(b" 200 " in rest.split(b"\r\n")[0] + first and b"46.069" in rest,
         "then the /run answer")

    # Chunked request body.
    out = raw_http(srv.port, b"POST /run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n4\r\n[\"CC\r\n4\r\nO\", \r\n6\r\n\"CCO\"]\r\n0\r\n\r\n")
    t.ok(out.startswith(b"HTTP/1.1 200") and out.count(b"46.069") == 2, "chunked request body")

    # Logs: one line per request, never the molecules.
    log = srv.text()
    t.ok(log.count(" request ") >= 40 and "path=/run" in log, "one log line per request")
    t.ok("c1ccccc1" not in log and "CCO" not in log and "not_a_smiles" not in log,
         "molecules never logged")

    # SIGTERM: prompt, exit 0.
    t0 = time.monotonic()
    os.kill(srv.p.pid, signal.SIGTERM)
    try:
        rc = srv.p.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    t.ok(rc == 0 and time.monotonic() - t0 < 2, "SIGTERM: exit 0 promptly")
    srv.stop()


def test_descriptors():
    srv = Server("--model", "descriptors", "--version", "2.5")
    t.ok(srv.wait_ready(), "descriptors ready")
    cols = ["mol_logp", "tpsa", "hbd", "hba", "num_rings"]
    st, j, _ = req(srv, "GET", "/run/columns/output")
    t.is_(j, cols, "descriptors columns in fixed order")
    st, j, raw = req(srv, "POST", "/run", ["CCO", "c1ccccc1", "bad", "CC(=O)Oc1ccccc1C(=O)O"])
    t.is_(st, 200, "descriptors run")
    t.ok(all(list(r.keys()) == cols for r in j), "record keys in column order")
    e, b, bad, asp = j
    t.ok(close(e["mol_logp"], -0.0014, 1e-4) and close(e["tpsa"], 20.23) and e["hbd"] == 1 and
         e["hba"] == 1 and e["num_rings"] == 0, "ethanol descriptors")
    t.ok(close(b["mol_logp"], 1.6866, 1e-4) and b["tpsa"] == 0 and b["hbd"] == 0 and
         b["num_rings"] == 1, "benzene descriptors")
    t.ok(close(asp["tpsa"], 63.6) and asp["hbd"] == 1 and asp["hba"] == 3 and
         asp["num_rings"] == 1, "aspirin descriptors")
    t.is_(bad, {c: None for c in cols}, "invalid -> all columns null")
    t.ok(isinstance(e["hbd"], int) and isinstance(e["tpsa"], float), "integers and floats typed")
    st, j, _ = req(srv, "GET", "/models/status")
    t.is_(j[0]["modelVersion"], "2.5", "--version reported by /models/status")
    st, j, _ = req(srv, "GET", "/")
    t.is_(j, {"descriptors": "rdkit-descriptors"}, "descriptors identifier")
    srv.stop()


def test_strict():
    for model in ("eos3b5e", "descriptors"):
        srv = Server("--model", model, "--strict")
        t.ok(srv.wait_ready(), "%s --strict ready" % model)
        st, j, _ = req(srv, "POST", "/run", ["CCO", "c1ccccc1"])
        t.is_(st, 200, "%s strict: valid batch 200" % model)
        st, j, _ = req(srv, "POST", "/run?orient=records", ["CCO", "not_a_smiles"])
        t.is_((st, j), (500, {"detail": "Internal processing error due to a shell execution"}),
              "%s strict: one invalid SMILES -> 500 for the whole batch" % model)
        st, j, _ = req(srv, "POST", "/run", [""])
        t.is_(st, 500, "%s strict: empty string -> 500" % model)
        st, j, _ = req(srv, "POST", "/run", [])
        t.is_((st, j), (422, {"detail": "Data is empty."}), "%s strict: empty array 422" % model)
        st, j, _ = req(srv, "POST", "/job/submit", ["CCO", "not_a_smiles", "C"])
        job = j["job_id"]
        st, s = job_wait(srv, job)
        t.is_(s, {"job_id": job, "status": "failed"}, "%s strict: job with invalid -> failed" % model)
        st, r, _ = req(srv, "GET", "/job/result/" + job)
        t.is_((st, r), (200, {"job_id": job, "status": "failed", "result": None}),
              "%s strict: failed job result null" % model)
        st, j, _ = req(srv, "POST", "/job/submit", ["CCO"])
        st, s = job_wait(srv, j["job_id"])
        st, r, _ = req(srv, "GET", "/job/result/" + j["job_id"])
        t.ok(s["status"] == "completed" and len(r) == 1, "%s strict: valid job completes" % model)
        st, j, _ = req(srv, "POST", "/run", ["CCO"])
        t.is_(st, 200, "%s strict: server still serves after failures" % model)
        srv.stop()
    srv = Server("--model", "eos3b5e", env={"MODEL_STRICT": "1"})
    st, j, _ = req(srv, "POST", "/run", ["CCO", "xx"])
    t.is_(st, 500, "MODEL_STRICT=1 in the environment enables strict")
    srv.stop()


def test_costs():
    """--call-cost/--input-cost/--fail-cost imitate a real server's slow
    (and slower failing) calls, paid one call at a time."""
    srv = Server("--model", "eos3b5e", "--strict", "--call-cost", "0.3", "--input-cost", "0.01",
                 "--fail-cost", "0.6")
    t.ok(srv.wait_ready(), "costs: ready")

    def timed(body):
        t0 = time.monotonic()
        st, _, _ = req(srv, "POST", "/run", body)
        return st, time.monotonic() - t0

    st, dt = timed(["CCO"] * 10)
    t.ok(st == 200 and 0.4 <= dt < 1.5, "costs: good call of 10 takes call + 10 inputs (%.2f s)" % dt)
    st, dt = timed(["CCO", "xx"])
    t.ok(st == 500 and 0.92 <= dt < 2.5, "costs: failing call adds the fail cost (%.2f s)" % dt)
    out = []
    th = [threading.Thread(target=lambda: out.append(timed(["CCO"])[1])) for _ in range(2)]
    t0 = time.monotonic()
    for x in th:
        x.start()
    for x in th:
        x.join()
    t.ok(time.monotonic() - t0 >= 0.6, "costs: two concurrent calls pay one after the other")
    st, j, _ = req(srv, "POST", "/job/submit", ["CCO", "xx"])
    t0 = time.monotonic()
    st, s = job_wait(srv, j["job_id"])
    t.ok(s["status"] == "failed" and time.monotonic() - t0 >= 0.8,
         "costs: a failing job pays the fail cost too")
    srv.stop()
    srv = Server("--model", "eos3b5e", "--fail-cost", "-1", wait=False)
    t.ok(srv.p.wait(10) == 2, "costs: a negative cost is refused (exit 2)")


def test_load():
    ref = Server("--model", "eos3b5e")
    ref.wait_ready()
    ref_rss = ref.status_kib("VmRSS") / 1024
    ref.stop()

    srv = Server("--model", "load", "--cpu-per-input", "0.25", "--mib-per-input", "40",
                 "--base-mib", "100")
    t.ok(srv.wait_ready(), "load ready")
    rss0 = srv.status_kib("VmRSS") / 1024
    t.ok(rss0 >= ref_rss + 90, "--base-mib 100 held from startup (rss %.0f vs %.0f MiB)"
         % (rss0, ref_rss))
    cpu0 = srv.stat_cpu()
    hwm0 = srv.status_kib("VmHWM") / 1024
    t0 = time.monotonic()
    st, j, _ = req(srv, "POST", "/run", ["CCO", "c1ccccc1", "bad", "CCCC", "O"])
    wall = time.monotonic() - t0
    cpu = srv.stat_cpu() - cpu0
    hwm = srv.status_kib("VmHWM") / 1024
    rss1 = srv.status_kib("VmRSS") / 1024
    t.is_([r["n_atoms"] for r in (j or [])], [3, 6, None, 4, 1], "load n_atoms (heavy atoms)")
    t.ok(cpu >= 1.2, "5 inputs x 0.25 s burn >= 1.2 s CPU (measured %.2f s)" % cpu)
    t.ok(wall < 10, "load call finishes (%.1f s)" % wall)
    t.ok(hwm - hwm0 >= 180, "5 x 40 MiB resident during the call (peak +%.0f MiB)" % (hwm - hwm0))
    t.ok(rss1 < hwm - 150, "memory released after the call (rss %.0f, peak %.0f MiB)" % (rss1, hwm))

    # Same through an ASYNC job.
    cpu0 = srv.stat_cpu()
    st, j, _ = req(srv, "POST", "/job/submit", ["CCO", "CCO", "CCO", "CCO"])
    st, s = job_wait(srv, j["job_id"])
    cpu = srv.stat_cpu() - cpu0
    st, r, _ = req(srv, "GET", "/job/result/" + j["job_id"])
    t.ok(s["status"] == "completed" and [x["n_atoms"] for x in r] == [3] * 4 and cpu >= 0.9,
         "load job burns CPU too (%.2f s)" % cpu)

    # SIGTERM while busy: still prompt.
    th = threading.Thread(target=req, args=(srv, "POST", "/run", ["CCO"] * 40))
    th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    os.kill(srv.p.pid, signal.SIGTERM)
    try:
        rc = srv.p.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    t.ok(rc == 0 and time.monotonic() - t0 < 2, "SIGTERM during a busy call: exit promptly")
    th.join(10)
    srv.stop()

    # Defaults and environment variables (how the Kubernetes simulator passes options).
    srv = Server(argv=[PY, SERVE], env={"MODEL_NAME": "load", "MODEL_HOST": "127.0.0.1",
                                         "MODEL_PORT": "0", "MODEL_CPU_PER_INPUT": "0.3"})
    t.ok(srv.port and srv.wait_ready(), "load started from MODEL_* environment only")
    cpu0 = srv.stat_cpu()
    st, j, _ = req(srv, "POST", "/run", ["CCO", "CCO"])
    cpu = srv.stat_cpu() - cpu0
    t.ok(st == 200 and cpu >= 0.55, "MODEL_CPU_PER_INPUT honoured (%.2f s)" % cpu)
    t.like(srv.text(), r"mib_per_input=4\.0", "load default 4 MiB per input")
    srv.stop()
    srv = Server("--model", "load")
    t.like(srv.text(), r"cpu_per_input=0\.05 mib_per_input=4\.0", "load defaults 0.05 s / 4 MiB")
    srv.stop()


def test_faults():
    srv = Server("--model", "eos3b5e", "--crash-after-calls", "2")
    srv.wait_ready()
    st, j, _ = req(srv, "POST", "/run", ["CCO"])
    t.is_(st, 200, "crash-after-calls 2: first call answered")
    st, j, _ = req(srv, "GET", "/healthz")
    t.is_(st, 200, "healthz does not count as a call")
    st, j, _ = req(srv, "POST", "/run", ["CCO"])
    t.is_(st, None, "second call: connection dropped, no answer")
    try:
        rc = srv.p.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    t.is_(rc, 1, "process exited with 1")
    srv.stop()

    srv = Server("--model", "eos3b5e", "--crash-after-calls", "1")
    srv.wait_ready()
    st, j, _ = req(srv, "POST", "/job/submit", ["CCO"])
    t.ok(st == 200 and j.get("job_id"), "crash on job: submit answered with a job id")
    try:
        rc = srv.p.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    t.is_(rc, 1, "crash on job: process exits 1 while running the job")
    srv.stop()

    srv = Server("--model", "eos3b5e", "--startup-delay", "1.5")
    st, j, _ = req(srv, "GET", "/healthz")
    t.is_(st, 503, "startup-delay: healthz 503 at first")
    t.ok(isinstance(j, dict) and "breaker" in j, "503 healthz still has a JSON body")
    st, j, _ = req(srv, "POST", "/run", ["CCO"])
    t.is_(st, 503, "startup-delay: /run 503 before ready")
    t.ok(srv.wait_ready(), "startup-delay: becomes ready")
    waited = time.monotonic() - srv.started
    t.ok(1.4 <= waited < 6, "ready after about 1.5 s (%.2f s)" % waited)
    st, j, _ = req(srv, "POST", "/run", ["CCO"])
    t.is_(st, 200, "startup-delay: /run 200 once ready")
    srv.stop()

    srv = Server("--model", "eos3b5e", "--never-ready")
    t.ok(not srv.wait_ready(timeout=1.5), "never-ready: no 200 from healthz")
    st, j, _ = req(srv, "GET", "/healthz")
    t.is_(st, 503, "never-ready: healthz 503")
    srv.stop()
    srv = Server("--model", "eos3b5e", env={"MODEL_NEVER_READY": "true"})
    st, j, _ = req(srv, "GET", "/healthz")
    t.is_(st, 503, "MODEL_NEVER_READY=true honoured")
    srv.stop()


def test_catalog():
    with open(CATALOG) as f:
        cat = json.load(f)
    t.ok(isinstance(cat, list) and len(cat) >= 4, "catalog.json is an array of models")
    ids = [m.get("id") for m in cat]
    t.ok(len(set(ids)) == len(ids), "catalog ids unique")
    t.ok({"eos3b5e", "eos3b5e-async", "descriptors", "load"} <= set(ids), "catalog has the demo models")
    need = {"id", "enabled", "execution_mode", "image", "image_tag", "local_command", "port",
            "cpu_request_m", "cpu_limit_m", "memory_request_mib", "memory_limit_mib",
            "max_instances", "idle_seconds", "cache_enabled", "description", "details"}
    t.ok(all(need <= set(m) for m in cat), "every catalog entry has every field")
    t.ok(all(m["execution_mode"] in ("SYNC", "ASYNC") and
             m["cpu_request_m"] <= m["cpu_limit_m"] and
             m["memory_request_mib"] <= m["memory_limit_mib"] and
             m["image"].startswith("modelhub/") and m["port"] == 80 for m in cat),
         "catalog values consistent with the schema")
    modes = {m["id"]: m["execution_mode"] for m in cat}
    t.is_(modes.get("eos3b5e-async"), "ASYNC", "eos3b5e-async is ASYNC")
    for m in cat:
        argv = [a.replace("{models_dir}", os.path.join(TOP, "models"))
                 .replace("{host}", "127.0.0.1").replace("{port}", "0")
                for a in m["local_command"]]
        t.ok("{port}" in m["local_command"] and "{host}" in m["local_command"],
             "%s local_command has {host} and {port}" % m["id"])
        srv = Server(argv=argv)
        ready = srv.wait_ready()
        if m["execution_mode"] == "SYNC":
            st, j, _ = req(srv, "POST", "/run?orient=records", ["CCO"])
        else:
            st, j, _ = req(srv, "POST", "/job/submit?orient=records", ["CCO"])
            st, s = job_wait(srv, j["job_id"])
            st, j, _ = req(srv, "GET", "/job/result/" + j["job_id"])
        st2, cols, _ = req(srv, "GET", "/run/columns/output")
        t.ok(ready and st == 200 and isinstance(j, list) and list(j[0].keys()) == cols and
             cols == m["details"].get("columns"),
             "%s: local_command starts a server that answers (%s)" % (m["id"], m["execution_mode"]))
        if m["id"].startswith("eos3b5e"):
            t.ok(close(j[0]["mol_weight"], 46.07), "%s: CCO -> 46.07" % m["id"])
        srv.stop()


try:
    test_cli()
    test_eos3b5e()
    test_descriptors()
    test_strict()
    test_costs()
    test_load()
    test_faults()
    test_catalog()
finally:
    for s in procs:
        s.stop()
t.done()
