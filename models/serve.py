#!/usr/bin/python3
"""serve.py — demo model server speaking the ersilia-pack HTTP API.

Runs in: one process per model instance (local backend child, a Kubernetes
  simulator "pod", or by hand); must run under /usr/bin/python3 (python3-rdkit).
Called by: the hub's runners over HTTP (POST /run, /job/*), its readiness
  check (GET /healthz), the tests in t/.
Owns: one listening socket, a thread per connection (ThreadingHTTPServer), a
  background thread per ASYNC job, the in-memory job table.

Models: eos3b5e (mol_weight), descriptors (mol_logp, tpsa, hbd, hba,
num_rings), load (n_atoms, plus configurable CPU seconds and MiB per input).
Options come from the command line or, for the Kubernetes simulator, from
MODEL_* environment variables (command line wins). See docs/models.md.

DESIGN: behaviour follows ersilia-pack 1.2.24 as measured (UPSTREAM.md §5):
empty array -> 422 "Data is empty.", /models/status workers always NOT_READY.
By default an invalid SMILES gives a record whose columns are all null; with
--strict one invalid SMILES fails the whole /run batch with 500 and an ASYNC
job ends "failed" with result null, exactly like the real server.
Molecules are never logged.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen, Descriptors, Lipinski, rdMolDescriptors

RDLogger.DisableLog("rdApp.*")  # parse errors would print the molecule

MAX_BODY = 64 * 1024 * 1024  # bytes; far above the hub's chunk size
MAX_JOBS = 10000  # finished jobs kept before the oldest are dropped
STRICT_DETAIL = "Internal processing error due to a shell execution"
ORIENTS = ("records", "columns", "values", "split", "index")


def _mol_weight(mol):
    return {"mol_weight": Descriptors.MolWt(mol)}


def _descriptors(mol):
    return {
        "mol_logp": Crippen.MolLogP(mol),
        "tpsa": rdMolDescriptors.CalcTPSA(mol),
        "hbd": Lipinski.NumHDonors(mol),
        "hba": Lipinski.NumHAcceptors(mol),
        "num_rings": Descriptors.RingCount(mol),
    }


def _n_atoms(mol):
    return {"n_atoms": mol.GetNumHeavyAtoms()}


# name -> card fields, output columns, per-molecule function, option defaults
MODELS = {
    "eos3b5e": {
        "slug": "molecular-weight",
        "title": "Molecular weight",
        "description": "Molecular weight of a compound (RDKit Descriptors.MolWt).",
        "columns": ["mol_weight"],
        "output_type": ["Float"],
        "fn": _mol_weight,
        "defaults": {},
    },
    "descriptors": {
        "slug": "rdkit-descriptors",
        "title": "Basic physico-chemical descriptors",
        "description": "Crippen logP, TPSA, H-bond donors and acceptors, ring count (RDKit).",
        "columns": ["mol_logp", "tpsa", "hbd", "hba", "num_rings"],
        "output_type": ["Float", "Integer"],
        "fn": _descriptors,
        "defaults": {},
    },
    "load": {
        "slug": "synthetic-load",
        "title": "Synthetic load",
        "description": "Heavy atom count; burns CPU and holds memory per input (testing).",
        "columns": ["n_atoms"],
        "output_type": ["Integer"],
        "fn": _n_atoms,
        "defaults": {"cpu_per_input": 0.05, "mib_per_input": 4.0},
    },
}

EXAMPLES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"]


class BadInput(Exception):
    """Request body that FastAPI would reject with 422; .detail is the body."""

    def __init__(self, detail):
        super().__init__("bad input")
        self.detail = detail


class StrictFailure(Exception):
    """--strict: a batch holding an invalid SMILES fails as a whole."""


def log(level, msg, **kv):
    ts = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    fields = "".join(" %s=%s" % (k, v) for k, v in kv.items())
    line = "%s.%03dZ %s model pid=%d %s%s\n" % (
        stamp, int(ts * 1000) % 1000, level, os.getpid(), msg, fields)
    try:
        os.write(2, line.encode())
    except OSError:
        pass


def call_log(path, t0, status, n):
    """--call-log: one line per /run or ASYNC job, appended in one write (O_APPEND), so
    the instances of a model can share the file."""
    if not path:
        return
    line = json.dumps({"pid": os.getpid(), "start": t0, "end": time.time(),
                       "status": status, "inputs": n}) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _env(name, default=None):
    v = os.environ.get(name)
    return default if v is None or v == "" else v


def _env_bool(name):
    return _env(name, "0").lower() in ("1", "true", "yes", "on")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="serve.py",
        description="modelhub demo model server (ersilia-pack HTTP API). "
        "Every option can also be given as MODEL_<OPTION> in the environment.")
    p.add_argument("--model", default=_env("MODEL_NAME"),
                   help="one of: " + ", ".join(sorted(MODELS)))
    p.add_argument("--host", default=_env("MODEL_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("MODEL_PORT", "80")))
    p.add_argument("--strict", action="store_true", default=_env_bool("MODEL_STRICT"),
                   help="fail a whole batch on one invalid SMILES (like ersilia-pack)")
    p.add_argument("--cpu-per-input", type=float, default=_env("MODEL_CPU_PER_INPUT"),
                   help="CPU seconds burnt per input")
    p.add_argument("--cpu-rate", type=float, default=float(_env("MODEL_CPU_RATE", "0")),
                   help="pace the burn to at most this many millicores (0 = flat out), so "
                        "usage is what is asked for even on a busy machine")
    p.add_argument("--mib-per-input", type=float, default=_env("MODEL_MIB_PER_INPUT"),
                   help="MiB allocated and touched per input, held for the call")
    p.add_argument("--base-mib", type=float, default=float(_env("MODEL_BASE_MIB", "0")),
                   help="MiB allocated and touched at startup")
    p.add_argument("--startup-delay", type=float,
                   default=float(_env("MODEL_STARTUP_DELAY", "0")),
                   help="seconds during which /healthz answers 503")
    p.add_argument("--crash-after-calls", type=int,
                   default=int(_env("MODEL_CRASH_AFTER_CALLS", "0")),
                   help="exit abruptly during the Nth /run or job (0 = never)")
    p.add_argument("--startup-cpu", type=float,
                   default=float(_env("MODEL_STARTUP_CPU", "0")),
                   help="CPU seconds burnt flat out at start-up, before the server "
                        "listens (a model loading its weights)")
    p.add_argument("--never-ready", action="store_true",
                   default=_env_bool("MODEL_NEVER_READY"),
                   help="/healthz never answers 200")
    p.add_argument("--call-cost", type=float, default=float(_env("MODEL_CALL_COST", "0")),
                   help="seconds every /run or job takes (a real server starts its "
                        "model's shell script per call); calls pay their costs one at a time")
    p.add_argument("--input-cost", type=float, default=float(_env("MODEL_INPUT_COST", "0")),
                   help="seconds added per input of a call")
    p.add_argument("--fail-cost", type=float, default=float(_env("MODEL_FAIL_COST", "0")),
                   help="seconds added to a call that fails (--strict): a real server's "
                        "failing calls are slower than its good ones")
    p.add_argument("--call-log", default=_env("MODEL_CALL_LOG"),
                   help="append one JSON line per /run (pid, start and end times, "
                        "status, inputs; never the molecules) to this file, for tests "
                        "that check which calls overlapped")
    p.add_argument("--version", default=_env("MODEL_VERSION", "1.0"),
                   help="model version reported by /models/status and /card")
    a = p.parse_args(argv)
    if not a.model:
        p.error("--model is required (or MODEL_NAME)")
    if a.model not in MODELS:
        sys.stderr.write("serve.py: unknown model '%s' (known: %s)\n"
                         % (a.model, ", ".join(sorted(MODELS))))
        sys.exit(2)
    d = MODELS[a.model]["defaults"]
    if a.cpu_per_input is None:
        a.cpu_per_input = d.get("cpu_per_input", 0.0)
    if a.mib_per_input is None:
        a.mib_per_input = d.get("mib_per_input", 0.0)
    a.cpu_per_input = float(a.cpu_per_input)
    a.mib_per_input = float(a.mib_per_input)
    for k in ("cpu_per_input", "mib_per_input", "base_mib", "startup_delay", "startup_cpu",
              "cpu_rate", "call_cost", "input_cost", "fail_cost"):
        v = getattr(a, k)
        if not math.isfinite(v) or v < 0:
            p.error("--%s must be a finite number >= 0" % k.replace("_", "-"))
    if a.crash_after_calls < 0:
        p.error("--crash-after-calls must be >= 0")
    if not 0 <= a.port <= 65535:
        p.error("--port out of range")
    return a


def touch_mib(mib):
    """Allocate mib MiB and write every page so it is resident; caller keeps it."""
    size = int(mib * 1048576)
    if size <= 0:
        return None
    buf = bytearray(size)
    buf[::4096] = b"\x01" * len(range(0, size, 4096))
    return buf


def burn_cpu(seconds, pace=None):
    """Busy loop until this thread has used `seconds` of CPU time. pace:
    (rate in cores, wall start, cpu start, starved wall seconds) of the
    call: sleep whenever the call is ahead of that rate; the time it fell
    behind (the machine gave it less CPU than the rate) adds to pace[3]."""
    if seconds <= 0:
        return
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) & 0xFFFF
        if pace:
            rate, w0, c0 = pace[:3]
            ahead = (time.thread_time() - c0) / rate - (time.monotonic() - w0)
            if ahead > 0.002:
                time.sleep(ahead)
            elif ahead < -0.05:
                # starved by a busy machine: forget the debt instead of
                # catching up at full speed (a burst above the rate)
                pace[3] += -ahead
                pace[1], pace[2] = time.monotonic(), time.thread_time()


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class Model:
    """The loaded model plus server state shared by all threads."""

    def __init__(self, args):
        self.args = args
        self.name = args.model
        self.spec = MODELS[args.model]
        self.columns = self.spec["columns"]
        self.started = time.time()
        self.ready_at = time.monotonic() + args.startup_delay
        self.lock = threading.Lock()
        self.cost_lock = threading.Lock()  # one call pays its costs at a time
        self.calls = 0
        self.jobs = {}  # job_id -> {"status", "result", "orient"}
        self.base = touch_mib(args.base_mib)
        self.cpu_prev = None

    def ready(self):
        return not self.args.never_ready and time.monotonic() >= self.ready_at

    def next_call(self):
        """Count a /run or job; returns True when this call must crash."""
        with self.lock:
            self.calls += 1
            n = self.calls
        return self.args.crash_after_calls > 0 and n == self.args.crash_after_calls

    def pay(self, n, failed):
        """The imitated cost of a call of n inputs (--call-cost, --input-cost,
        --fail-cost): slept, one call at a time, like a server that runs its
        model's script per call."""
        a = self.args
        cost = a.call_cost + a.input_cost * n + (a.fail_cost if failed else 0.0)
        if cost > 0:
            with self.cost_lock:
                time.sleep(cost)

    def predict(self, inputs):
        """Records for inputs, in order. Raises StrictFailure under --strict."""
        try:
            out = self._predict(inputs)
        except StrictFailure:
            self.pay(len(inputs), True)
            raise
        self.pay(len(inputs), False)
        return out

    def _predict(self, inputs):
        rate = self.args.cpu_rate / 1000.0
        pace = [rate, time.monotonic(), time.thread_time(), 0.0] if rate > 0 else None
        w0 = time.monotonic()
        try:
            return self._predict_each(inputs, pace)
        finally:
            if pace:
                # how far the machine kept the call from its rate (tests
                # tell their environment from the model this way)
                log("info", "pace", rate_m=int(rate * 1000), inputs=len(inputs),
                    wall_ms=int((time.monotonic() - w0) * 1000),
                    starved_ms=int(pace[3] * 1000))

    def _predict_each(self, inputs, pace):
        held = []
        out = []
        fn = self.spec["fn"]
        for smi in inputs:
            burn_cpu(self.args.cpu_per_input, pace)
            buf = touch_mib(self.args.mib_per_input)
            if buf is not None:
                held.append(buf)
            rec = None
            try:
                mol = Chem.MolFromSmiles(smi.strip()) if smi.strip() else None
                if mol is not None:
                    rec = fn(mol)
            except Exception:  # RDKit errors on odd input count as invalid
                rec = None
            if rec is None:
                if self.args.strict:
                    raise StrictFailure()
                out.append({c: None for c in self.columns})
                continue
            out.append({c: _clean(rec[c]) for c in self.columns})
        del held
        return out

    def shape(self, records, orient):
        """Records in a pandas-style orient, as ersilia-pack returns them."""
        cols = self.columns
        if orient == "records":
            return records
        if orient == "values":
            return [[r[c] for c in cols] for r in records]
        if orient == "split":
            return {"columns": cols, "index": list(range(len(records))),
                    "data": [[r[c] for c in cols] for r in records]}
        if orient == "index":
            return {str(i): r for i, r in enumerate(records)}
        return {c: {str(i): r[c] for i, r in enumerate(records)} for c in cols}

    def card(self):
        s = self.spec
        return {
            "Identifier": self.name,
            "Slug": s["slug"],
            "Title": s["title"],
            "Description": s["description"],
            "Input": ["Compound"],
            "Input Shape": "Single",
            "Task": ["Annotation"],
            "Subtask": ["Property calculation or prediction"],
            "Output": ["Descriptor"],
            "Output Type": s["output_type"],
            "Output Shape": "List" if len(self.columns) > 1 else "Single",
            "Output Dimension": len(self.columns),
            "Version": self.args.version,
            "Source": "Local",
            "License": "BSD-3-Clause",
            "Contributor": "modelhub demo models",
        }

    def system(self):
        """Whole-machine CPU and memory percent, like psutil in ersilia-pack."""
        cpu = 0.0
        mem = 0.0
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            idle, total = v[3] + (v[4] if len(v) > 4 else 0), sum(v)
            with self.lock:
                prev, self.cpu_prev = self.cpu_prev, (idle, total)
            if prev and total > prev[1]:
                cpu = round(100.0 * (1 - (idle - prev[0]) / (total - prev[1])), 1)
            info = {}
            with open("/proc/meminfo") as f:
                for line in f:
                    k, rest = line.split(":", 1)
                    info[k] = int(rest.split()[0])
            if info.get("MemTotal"):
                mem = round(100.0 * (1 - info.get("MemAvailable", 0) / info["MemTotal"]), 1)
        except (OSError, ValueError, IndexError):
            pass
        return {"cpu": cpu, "memory": mem}

    def rss_mib(self):
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            return round(pages * os.sysconf("SC_PAGE_SIZE") / 1048576.0, 1)
        except (OSError, ValueError, IndexError):
            return 0.0

    # --- ASYNC jobs -------------------------------------------------------

    def job_submit(self, inputs, orient):
        """Register a pending job; returns (job_id, thread not yet started)."""
        crash = self.next_call()
        job_id = str(uuid.uuid4())
        with self.lock:
            if len(self.jobs) >= MAX_JOBS:
                done = [k for k, j in self.jobs.items() if j["status"] != "pending"]
                for k in done[: len(done) // 2 + 1]:
                    del self.jobs[k]
            self.jobs[job_id] = {"status": "pending", "result": None}
        t = threading.Thread(target=self._job_run, args=(job_id, inputs, orient, crash),
                             name="job", daemon=True)
        return job_id, t

    def _job_run(self, job_id, inputs, orient, crash):
        t0, wall0 = time.monotonic(), time.time()
        status, result = "completed", None
        try:
            if crash:
                log("warn", "crash", reason="crash-after-calls", job=job_id)
                os._exit(1)
            result = self.shape(self.predict(inputs), orient)
        except StrictFailure:
            status = "failed"
        except Exception as e:  # a bug must fail the job, not hang it
            status = "failed"
            log("error", "job error", job=job_id, error=type(e).__name__)
        with self.lock:
            j = self.jobs.get(job_id)
            if j is not None:
                j["status"], j["result"] = status, result
        log("info", "job", job=job_id, status=status, inputs=len(inputs),
            ms="%.1f" % ((time.monotonic() - t0) * 1000))
        call_log(self.args.call_log, wall0, 200 if status == "completed" else 500, len(inputs))

    def job_get(self, job_id):
        with self.lock:
            j = self.jobs.get(job_id)
            return None if j is None else dict(j)


def parse_inputs(raw):
    """Body bytes -> list of SMILES strings, or BadInput (422) / empty."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadInput({"detail": [{"type": "json_invalid", "loc": ["body", 0],
                                    "msg": "JSON decode error", "input": {}}]})
    if not isinstance(data, list):
        raise BadInput({"detail": [{"type": "list_type", "loc": ["body"],
                                    "msg": "Input should be a valid list",
                                    "input": None}]})
    out = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("input"), str):
            out.append(item["input"])
        else:
            raise BadInput({"detail": [{"type": "string_type", "loc": ["body", i],
                                        "msg": "Input should be a valid string",
                                        "input": None}]})
    if not out:
        raise BadInput({"detail": "Data is empty."})
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue for libcurl
    # Headers and body go out in two writes: with Nagle on, the body waits
    # for the ACK the client delays (~40 ms per call on Linux); uvicorn,
    # which real ersilia-pack servers use, sets TCP_NODELAY too.
    disable_nagle_algorithm = True
    server_version = "modelhub-demo"
    sys_version = ""
    timeout = 300  # seconds an idle keep-alive connection may hold its thread
    model = None  # set by main()

    def log_message(self, format, *args):  # noqa: A002 - replaced by log_request
        pass

    def log_request(self, code="-", size="-"):
        pass

    def _reply(self, status, obj, extra=None):
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status
        if extra:
            self._extra.update(extra)

    def _body(self):
        """The request body, or None after replying with an error."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self._reply(400, {"detail": "Bad chunked encoding"})
                    return None
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += n
                if total > MAX_BODY:
                    self.close_connection = True
                    self._reply(413, {"detail": "Request body too large"})
                    return None
                parts.append(self.rfile.read(n))
                self.rfile.readline(1024)
            return b"".join(parts)
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            self._reply(413 if n > 0 else 400, {"detail": "Bad Content-Length"})
            return None
        return self.rfile.read(n) if n else b""

    def _dispatch(self):
        self._status = 0
        self._extra = {}
        t0 = time.monotonic()
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        try:
            self._route(self.command, path, query)
        except BrokenPipeError:
            self.close_connection = True
        except Exception as e:  # never leave a client without an answer
            log("error", "handler error", path=path, error=type(e).__name__)
            self.close_connection = True
            try:
                self._reply(500, {"detail": "Internal server error"})
            except OSError:
                pass
        log("info", "request", method=self.command,
            path="".join(c if c.isprintable() and c != " " else "?" for c in path[:200]),
            status=self._status,
            ms="%.1f" % ((time.monotonic() - t0) * 1000),
            **self._extra)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _route(self, method, path, query):
        m = self.model
        if path != "/" and path.endswith("/"):
            path = path.rstrip("/")
        get_routes = {
            "/": lambda: self._reply(200, {m.name: m.spec["slug"]}),
            "/healthz": self._healthz,
            "/card": lambda: self._reply(200, m.card()),
            "/models/status": self._status_page,
            "/run/columns/input": lambda: self._reply(200, ["input"]),
            "/run/columns/output": lambda: self._reply(200, list(m.columns)),
            "/run/example/input": lambda: self._reply(200, list(EXAMPLES)),
            "/run/example/output": self._example_output,
        }
        post_routes = {
            "/run": self._run,
            "/job/submit": self._submit,
            "/job/jobs/reset": self._reset,
            "/canonical": self._canonical,
        }
        if path in get_routes or path in post_routes:
            if method in ("GET", "HEAD") and path in get_routes:
                return get_routes[path]()
            if method == "POST" and path in post_routes:
                return post_routes[path](query)
            return self._reply(405, {"detail": "Method Not Allowed"})
        if path.startswith("/card/"):
            if method not in ("GET", "HEAD"):
                return self._reply(405, {"detail": "Method Not Allowed"})
            field = path[len("/card/"):]
            card = m.card()
            if field in card:
                return self._reply(200, {field: card[field]})
            return self._reply(404, {"detail": "Field '%s' not found in card" % field})
        for prefix, fn in (("/job/status/", self._job_status),
                           ("/job/result/", self._job_result)):
            if path.startswith(prefix):
                if method not in ("GET", "HEAD"):
                    return self._reply(405, {"detail": "Method Not Allowed"})
                return fn(path[len(prefix):])
        return self._reply(404, {"detail": "Not Found"})

    def _healthz(self):
        m = self.model
        body = {"breaker": {"state": "closed", "failures": 0, "last_failure": None,
                            "reset_timeout": 60, "next_reset": None},
                "system": m.system()}
        if not m.ready():
            body["detail"] = "Model not ready"
            return self._reply(503, body)
        return self._reply(200, body)

    def _status_page(self):
        m = self.model
        self._reply(200, [{
            "modelName": m.name,
            "modelVersion": m.args.version,
            "runtime": "python",
            "minWorkers": 1,
            "maxWorkers": 1,
            "maxBatchSize": 1,
            "maxBatchDelay": 100,
            "loadedAtStartup": True,
            "workers": [{
                "id": "1",
                "startTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                           time.gmtime(m.started)),
                "status": "NOT_READY",
                "memoryUsage": m.rss_mib(),
                "pid": os.getpid(),
            }],
        }])

    def _example_output(self):
        m = self.model
        recs = []
        spec_fn = m.spec["fn"]
        for s in EXAMPLES:
            rec = spec_fn(Chem.MolFromSmiles(s))
            recs.append({c: _clean(rec[c]) for c in m.columns})
        self._reply(200, recs)

    def _read_inputs(self, query):
        """(inputs, orient) or None after replying."""
        raw = self._body()
        if raw is None:
            return None
        orient = query.get("orient", ["records"])[-1]
        if orient not in ORIENTS:
            self._reply(422, {"detail": [{"type": "enum", "loc": ["query", "orient"],
                                          "msg": "Input should be one of "
                                          + ", ".join(ORIENTS), "input": orient}]})
            return None
        try:
            inputs = parse_inputs(raw)
        except BadInput as e:
            self._reply(422, e.detail)
            return None
        if not self.model.ready():
            self._reply(503, {"detail": "Model not ready"})
            return None
        self._extra["inputs"] = len(inputs)
        return inputs, orient

    def _run(self, query):
        got = self._read_inputs(query)
        if got is None:
            return
        inputs, orient = got
        m = self.model
        if m.next_call():
            log("warn", "crash", reason="crash-after-calls")
            os._exit(1)
        t0 = time.time()
        try:
            records = m.predict(inputs)
        except StrictFailure:
            self._reply(500, {"detail": STRICT_DETAIL})
        else:
            self._reply(200, m.shape(records, orient))
        call_log(m.args.call_log, t0, self._status, len(inputs))

    def _submit(self, query):
        got = self._read_inputs(query)
        if got is None:
            return
        inputs, orient = got
        job_id, worker = self.model.job_submit(inputs, orient)
        # Started after the answer is written so a crashing job (fault
        # option) still hands out its job id, as a real server would.
        try:
            self._reply(200, {"job_id": job_id, "message": "Job submitted successfully."},
                        {"job": job_id})
            self.wfile.flush()
        finally:
            worker.start()

    def _job_status(self, job_id):
        j = self.model.job_get(job_id)
        if j is None:
            return self._reply(404, {"detail": "Job not found"})
        self._reply(200, {"job_id": job_id, "status": j["status"]})

    def _job_result(self, job_id):
        j = self.model.job_get(job_id)
        if j is None:
            return self._reply(404, {"detail": "Job not found"})
        if j["status"] != "completed":
            return self._reply(200, {"job_id": job_id, "status": j["status"],
                                     "result": None})
        self._reply(200, j["result"])

    def _reset(self, query):
        self._body()
        with self.model.lock:
            self.model.jobs.clear()
        self._reply(200, {"message": "All jobs have been reset."})

    def _canonical(self, query):
        """modelhub extension: canonical SMILES (or null) for cache keys."""
        raw = self._body()
        if raw is None:
            return
        try:
            inputs = parse_inputs(raw)
        except BadInput as e:
            return self._reply(422, e.detail)
        out = []
        for s in inputs:
            try:
                mol = Chem.MolFromSmiles(s.strip()) if s.strip() else None
                out.append(Chem.MolToSmiles(mol) if mol is not None else None)
            except Exception:  # as in predict(): odd input -> null
                out.append(None)
        self._extra["inputs"] = len(inputs)
        self._reply(200, out)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


def _on_signal(signum, frame):
    log("info", "stop", signal=signum)
    os._exit(0)


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    model = Model(args)
    Handler.model = model
    burn_cpu(args.startup_cpu)
    try:
        srv = Server((args.host, args.port), Handler)
    except OSError as e:
        sys.stderr.write("serve.py: cannot listen on %s:%d: %s\n"
                         % (args.host, args.port, e.strerror))
        return 1
    log("info", "listening", model=args.model, host=args.host,
        port=srv.server_address[1], strict=int(args.strict),
        cpu_per_input=args.cpu_per_input, mib_per_input=args.mib_per_input,
        base_mib=args.base_mib, startup_delay=args.startup_delay,
        startup_cpu=args.startup_cpu,
        crash_after_calls=args.crash_after_calls, never_ready=int(args.never_ready),
        call_cost=args.call_cost, input_cost=args.input_cost, fail_cost=args.fail_cost,
        version=args.version)
    srv.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
