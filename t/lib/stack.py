"""
stack.py — a whole throwaway modelhub for one test: PostgreSQL cluster,
modelhub config, migrations, modelhub-fcgi, nginx and (optionally)
modelhubd, all inside one temp dir, all stopped at exit.

Runs in: Python test scripts under /usr/bin/python3 (stdlib only).
Called by: t/1xx-*.t and later tests, bench/api-throughput:
    s = Stack(hubd=False, config={"hub.runners": "2"}, nginx=True)
    r = s.api("GET", "/api/models", token=s.admin_token)
Owns: the temp dir (removed by stop() unless MODELHUB_KEEP_TMP=1), and
every process it starts: postgres (as the `postgres` user when we run as
root, since Postgres refuses root), modelhub-fcgi, nginx, modelhubd and
whatever those fork (the test process becomes a child subreaper, so
orphans such as model servers are found and killed too).

Where things come from: binaries from $top_builddir, sources (sql/, web/,
nginx/, models/) from $top_srcdir, both set by automake's
AM_TESTS_ENVIRONMENT; without them, the repository root.

Temp dir layout (s.tmp):
    modelhub.conf          the config (s.config_path)
    pg/data pg/run pg/log  cluster, its unix socket dir, its log
    run/fcgi.sock          FastCGI socket
    var/                   hub.var_dir (s.var_dir)
    nginx/                 nginx prefix: nginx.conf, logs/, tmp/
    log/fcgi.log, log/hubd.log   daemon stderr (shown as TAP diag on failure)

NOTES
- Everything is on unix sockets or a free loopback port, so tests run in
  parallel (make check -j) without clashing; each Stack has its own
  shared-memory segment name and replica id.
- MODELHUB_* variables of the caller's environment are removed from the
  daemons' environment: they would override the config file (config.h).
- Failures while starting raise StackError after printing the daemons'
  logs as TAP diagnostics and cleaning up at once; tap.py turns that into
  a failed test. A test that failed also gets the logs printed at stop().
- t.done() stops the stack before printing the plan; a worker or child
  killed by a crash signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) or a
  sanitizer report in the fcgi/hubd logs then fails the test — the master
  restarting a worker hides a crash from every HTTP-level check. Tests
  that crash daemons on purpose set s.expect_crashes = True.
- A watchdog process per stack (PR_SET_PDEATHSIG) stops and removes the
  stack when the test process dies without running stop() (SIGKILL from a
  timeout), so killed tests leave no Postgres or nginx behind.
"""

import atexit
import ctypes
import http.client
import json as _json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:    # one kept connection for sql(): a psql per call cost ~80 ms of CPU
    import psycopg2
except ImportError:     # then every sql() runs psql, as before
    psycopg2 = None

PG_BIN = os.environ.get("MODELHUB_PG_BIN", "/usr/lib/postgresql/15/bin")
NGINX = os.environ.get("MODELHUB_NGINX", "/usr/sbin/nginx")
# Seconds to wait for a daemon to become ready; scaled for sanitizer runs.
START_TIMEOUT = float(os.environ.get("MODELHUB_START_TIMEOUT", "30"))

_here = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("top_srcdir") or os.path.join(_here, "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or SRCDIR)


class StackError(Exception):
    """The stack could not be started or a helper call failed."""


def diag(msg):
    """Print TAP diagnostic lines (usable without a TAP object). Never
    raises: cleanup must go on when stdout is a closed pipe."""
    try:
        for line in str(msg).splitlines() or [""]:
            print("# " + line, flush=True)
    except (OSError, ValueError):
        pass


# The watchdog: a small process per stack that cleans up when the test
# process dies without running stop() (SIGKILL by a timeout, os._exit).
# The kernel tells it with PR_SET_PDEATHSIG; stop() ends it with SIGTERM.
_WATCHDOG = r"""
import ctypes, os, shutil, signal, subprocess, sys, time
tmp, ppid, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
pg_stop = sys.argv[4:]
fired = []
signal.signal(signal.SIGUSR1, lambda *a: fired.append(1))
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
signal.signal(signal.SIGINT, signal.SIG_IGN)
ctypes.CDLL(None).prctl(1, signal.SIGUSR1, 0, 0, 0)      # PR_SET_PDEATHSIG
while not fired and os.getppid() == ppid:
    time.sleep(0.5)
if os.path.exists(os.path.join(tmp, "pg", "data", "postmaster.pid")):
    subprocess.run(pg_stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                   timeout=60)
me = str(os.getpid())
conf = ("MODELHUB_CONFIG=" + os.path.join(tmp, "modelhub.conf")).encode()
for _ in range(2):
    for d in os.listdir("/proc"):
        if not d.isdigit() or d == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if tmp.encode() in cmd or conf in env:
            try:
                os.kill(int(d), signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.5)
if not keep:
    shutil.rmtree(tmp, ignore_errors=True)
"""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    """Last lines of a file as text ('' when missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _set_subreaper():
    """Orphaned descendants (model servers of a killed modelhubd) are
    re-parented to us, so stop() can find and kill them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _sigterm_exit(signum, frame):
    raise SystemExit(128 + signum)


def _children_map():
    """{ppid: [pid, ...]} from /proc."""
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        # comm may contain spaces/parens: fields after the last ')'.
        rest = st[st.rfind(")") + 2:].split()
        if len(rest) > 1:
            m.setdefault(int(rest[1]), []).append(int(d))
    return m


def descendants(pid):
    """All descendant pids of pid (not including pid)."""
    m = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in m.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rfind(")") + 2:].split()[0] != "Z"
    except OSError:
        return False


class Resp:
    """An HTTP (or FastCGI) response."""

    def __init__(self, status, headers, body):
        self.status = status
        self.header_list = headers            # [(name-lower, value)]
        self.headers = {}
        self.set_cookies = []
        for k, v in headers:
            if k == "set-cookie":
                self.set_cookies.append(v)
            if k in self.headers:
                self.headers[k] += ", " + v
            else:
                self.headers[k] = v
        self.body = body
        self.text = body.decode("utf-8", "replace")
        self.json = None
        ctype = self.headers.get("content-type", "")
        if body and ("json" in ctype or body[:1] in (b"{", b"[")) \
                and self.headers.get("content-encoding", "") == "":
            try:
                self.json = _json.loads(self.text)
            except ValueError:
                self.json = None

    @property
    def cookies(self):
        """{name: value} from Set-Cookie headers."""
        out = {}
        for c in self.set_cookies:
            nv = c.split(";", 1)[0]
            if "=" in nv:
                k, v = nv.split("=", 1)
                out[k.strip()] = v.strip()
        return out

    def __repr__(self):
        return "<Resp %s %r>" % (self.status, self.text[:200])


# ---------------------------------------------------------------- FastCGI
# A minimal FastCGI client (responder role), used when nginx=False and by
# tests that want to talk to modelhub-fcgi directly.

_FCGI_BEGIN, _FCGI_END, _FCGI_PARAMS, _FCGI_STDIN, _FCGI_STDOUT, _FCGI_STDERR = 1, 3, 4, 5, 6, 7


def _fcgi_record(typ, content, req_id=1):
    out = b""
    # Records carry at most 65535 bytes; empty content = end of stream.
    chunks = [content[i:i + 65535] for i in range(0, len(content), 65535)] or [b""]
    for c in chunks:
        out += struct.pack(">BBHHBx", 1, typ, req_id, len(c), 0) + c
    return out


def _fcgi_nv(name, value):
    def ln(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return ln(len(name)) + ln(len(value)) + name + value


def fcgi_request(sock_path, method, path, body=b"", headers=None, timeout=30,
                 remote_addr="127.0.0.1"):
    """One request over the FastCGI socket; returns Resp."""
    headers = dict(headers or {})
    uri = path
    qs = ""
    if "?" in path:
        path, qs = path.split("?", 1)
    params = {
        "REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": path,
        "SCRIPT_NAME": path, "QUERY_STRING": qs, "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": remote_addr, "REMOTE_PORT": "40000",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "CONTENT_TYPE": "",
    }
    for k, v in headers.items():
        lk = k.lower()
        if lk == "content-type":
            params["CONTENT_TYPE"] = v
        elif lk == "content-length":
            continue
        else:
            params["HTTP_" + k.upper().replace("-", "_")] = v
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        msg = _fcgi_record(_FCGI_BEGIN, struct.pack(">HB5x", 1, 0))
        pv = b"".join(_fcgi_nv(k, v) for k, v in params.items())
        msg += _fcgi_record(_FCGI_PARAMS, pv) + (_fcgi_record(_FCGI_PARAMS, b"") if pv else b"")
        msg += (_fcgi_record(_FCGI_STDIN, body) if body else b"") + _fcgi_record(_FCGI_STDIN, b"")
        s.sendall(msg)
        buf, out = b"", b""
        ended = False
        while not ended:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                _, typ, _, clen, plen = struct.unpack(">BBHHB", buf[:7])
                if len(buf) < 8 + clen + plen:
                    break
                content = buf[8:8 + clen]
                buf = buf[8 + clen + plen:]
                if typ == _FCGI_STDOUT:
                    out += content
                elif typ == _FCGI_END:
                    ended = True
    finally:
        s.close()
    sep = out.find(b"\r\n\r\n")
    seplen = 4
    if sep < 0:
        sep, seplen = out.find(b"\n\n"), 2
    if sep < 0:
        raise StackError("FastCGI response without header end: %r" % out[:200])
    status, hl = 200, []
    for line in out[:sep].decode("latin-1").splitlines():
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        k, v = k.strip().lower(), v.strip()
        if k == "status":
            status = int(v.split()[0])
        else:
            hl.append((k, v))
    return Resp(status, hl, out[sep + seplen:])


# ------------------------------------------------------------------ Stack

class Stack:
    """See the module comment. Keyword arguments:
    hubd    start modelhubd too (also later with start_hubd())
    config  {key: value} written over the defaults (value None drops a key)
    nginx   put nginx in front (s.url); False: s.api talks FastCGI directly
    admin   create the admin account + token eagerly (default: on first use
            of s.admin_token)
    """

    def __init__(self, hubd=False, config=None, nginx=True, admin=False):
        self.procs = {}           # name -> subprocess.Popen
        self.logs = {}            # name -> log path
        self._stopped = False
        self._admin_token = None
        self._pg, self._pg_lock = None, threading.Lock()   # sql()'s kept connection
        self._logs_shown = False
        # Set True in a test that crashes daemons on purpose (SIGSEGV...).
        self.expect_crashes = False
        self.passwords = {}
        self.is_root = os.geteuid() == 0
        self.srcdir, self.builddir = SRCDIR, BUILDDIR
        base = os.environ.get("MODELHUB_TMPDIR") or ("/tmp" if self.is_root else None)
        self.tmp = tempfile.mkdtemp(prefix="modelhub-t-", dir=base)
        _set_subreaper()
        # A harness timeout sends SIGTERM: turn it into SystemExit so the
        # atexit cleanup still stops the daemons.
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _sigterm_exit)
        # The postgres user must be able to reach tmp/pg.
        os.chmod(self.tmp, 0o755)
        for d in ("pg", "run", "var", "log", "nginx", "nginx/logs", "nginx/tmp"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
        self.var_dir = os.path.join(self.tmp, "var")
        self.config_path = os.path.join(self.tmp, "modelhub.conf")
        self.fcgi_socket = os.path.join(self.tmp, "run", "fcgi.sock")
        self.pg_dir = os.path.join(self.tmp, "pg")
        self.pg_sock = os.path.join(self.pg_dir, "run")
        self.pg_port = 5432          # only names the socket file: TCP is off
        self.db_name = "modelhub"
        self.db_user = "modelhub"
        self.url = None
        self.port = None
        atexit.register(self.stop)
        self._start_watchdog()
        tap = sys.modules.get("tap")
        cur = getattr(getattr(tap, "TAP", None), "current", None)
        if cur is not None:
            cur.before_done.append(self.stop)
        tag = "t%d%s" % (os.getpid(), secrets.token_hex(3))
        self.config = {
            "db.conninfo": "host=%s port=%d dbname=%s user=%s connect_timeout=5"
                           % (self.pg_sock, self.pg_port, self.db_name, self.db_user),
            "db.schema": "modelhub",
            "fcgi.socket": self.fcgi_socket,
            "fcgi.workers": "2",
            "fcgi.pidfile": os.path.join(self.tmp, "run", "fcgi.pid"),
            "hub.var_dir": self.var_dir,
            "hub.models_dir": os.path.join(self.srcdir, "models"),
            "hub.replica_id": tag,
            "hub.shm_name": "/modelhub-" + tag,
            # Many tests take several anonymous tokens from 127.0.0.1.
            "anon.per_ip_per_hour": "1000",
        }
        for k, v in (config or {}).items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = str(v)
        self.schema = self.config.get("db.schema", "modelhub")
        self.fcgi_socket = self.config.get("fcgi.socket", self.fcgi_socket)
        try:
            self._write_config()
            self._start_postgres_initial()
            self._migrate()
            if admin:
                _ = self.admin_token
            self.start_fcgi()
            if nginx:
                self.start_nginx()
            self.wait_health()
            if hubd:
                self.start_hubd()
        except Exception as e:
            # Clean up at once (logs first): the test may go on without us.
            self.show_logs()
            e.stack_tmp = self.tmp
            self.stop()
            raise

    def _start_watchdog(self):
        pg_stop = self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D",
                               os.path.join(self.pg_dir, "data"), "-m", "immediate", "stop"])
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, self.tmp, str(os.getpid()),
             "1" if os.environ.get("MODELHUB_KEEP_TMP") == "1" else "0"] + pg_stop,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)

    # ---------------------------------------------------------- config
    def _write_config(self):
        with open(self.config_path, "w") as f:
            f.write("# written by t/lib/stack.py\n")
            for k in sorted(self.config):
                f.write("%s = %s\n" % (k, self.config[k]))

    def set_config(self, **kv):
        """Rewrite config keys (use dots as '__': db__schema=...). The
        daemons see them after a restart or SIGHUP (reload_fcgi)."""
        for k, v in kv.items():
            k = k.replace("__", ".")
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = str(v)
        self._write_config()

    def env(self, extra=None):
        """Environment for our daemons: caller's MODELHUB_* removed."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")
             and not k.startswith("PG")}
        e["MODELHUB_CONFIG"] = self.config_path
        # Migrations of this source tree (modelhubctl migrate).
        e["MODELHUB_SQL_DIR"] = os.path.join(self.srcdir, "sql")
        e.setdefault("LC_ALL", "C.UTF-8")
        if extra:
            e.update(extra)
        return e

    def bin(self, name):
        """Path of a built program: $top_builddir, or without it the
        repository root and then build/ (where scripts/test builds)."""
        dirs = [self.builddir]
        if not os.environ.get("top_builddir"):
            dirs.append(os.path.join(SRCDIR, "build"))
        for d in dirs:
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
        raise StackError("%s not built (looked in %s)" % (name, ", ".join(dirs)))

    # -------------------------------------------------------- postgres
    def _as_pg(self, argv):
        """Run as the postgres user when we are root."""
        if self.is_root:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _run(self, argv, what, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        kw.setdefault("timeout", 120)
        kw.setdefault("cwd", self.tmp)   # the postgres user may not see ours
        r = subprocess.run(argv, text=True, **kw)
        if r.returncode != 0:
            diag("%s failed (exit %s): %s" % (what, r.returncode, " ".join(argv)))
            diag(r.stdout or "")
            raise StackError("%s failed" % what)
        return r

    def _start_postgres_initial(self):
        if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
            raise StackError("PostgreSQL 15 server binaries missing in %s" % PG_BIN)
        os.makedirs(self.pg_sock, exist_ok=True)
        if self.is_root:
            pw = pwd.getpwnam("postgres")
            for d in (self.pg_dir, self.pg_sock):
                os.chown(d, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.pg_dir, "data")
        self._run(self._as_pg([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", self.db_user,
                               "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]),
                  "initdb", env=self.env())
        conf = os.path.join(data, "postgresql.conf")
        settings = (
            "listen_addresses = ''\n"
            "unix_socket_directories = '%s'\n"
            "port = %d\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 60\nshared_buffers = 32MB\n"
            "log_min_messages = warning\nlog_line_prefix = '%%m [%%p] '\n"
            % (self.pg_sock, self.pg_port))
        self._run(self._as_pg(["sh", "-c", 'cat >> "$1"', "sh", conf]), "configure postgres",
                  input=settings, stdout=subprocess.PIPE)
        self.start_postgres()
        self._psql_admin("CREATE DATABASE %s" % self.db_name)

    def start_postgres(self):
        self._run(self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D",
                               os.path.join(self.pg_dir, "data"), "-l",
                               os.path.join(self.pg_dir, "log"), "-w", "-t",
                               str(int(START_TIMEOUT)), "start"]),
                  "pg_ctl start", env=self.env())
        self.logs["postgres"] = os.path.join(self.pg_dir, "log")

    def _pg_close(self):
        c, self._pg = self._pg, None
        if c is not None:
            c.close()

    def stop_postgres(self, mode="fast"):
        self._pg_close()
        self._run(self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D",
                               os.path.join(self.pg_dir, "data"), "-w", "-m", mode, "stop"]),
                  "pg_ctl stop", env=self.env())

    def restart_postgres(self, mode="fast"):
        self.stop_postgres(mode)
        self.start_postgres()

    def _psql_argv(self, dbname):
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.pg_sock,
                "-p", str(self.pg_port), "-U", self.db_user, "-d", dbname]

    def _psql_admin(self, sql_text):
        self._run(self._psql_argv("postgres") + ["-c", sql_text], "psql", env=self.env())

    def sql(self, query, *params):
        """Run SQL in the test db with search_path = the stack's schema.
        Parameters are $1, $2, ... (passed as quoted literals; None is NULL).
        Returns the rows of the last statement's output as a list of tuples
        of strings, exactly as psql prints them (None for NULL). Raises
        StackError on an SQL error."""
        if psycopg2 is not None and os.environ.get("MODELHUB_T_PSQL") != "1":
            return self._sql_conn(query, params)
        return self._sql_psql(query, params)

    def _pg_connect(self):
        """A new autocommit connection whose every value comes back as the
        server's text (what psql prints): all types known now are cast to
        str; types made later (enums of a migration) are text by default."""
        c = psycopg2.connect(host=self.pg_sock, port=self.pg_port, user=self.db_user,
                             dbname=self.db_name)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("SELECT oid FROM pg_type")
            oids = tuple(int(r[0]) for r in cur.fetchall())
        psycopg2.extensions.register_type(
            psycopg2.extensions.new_type(oids, "MH_TEXT", lambda v, _cur: v), c)
        return c

    def _sql_conn(self, query, params):
        """sql() over one kept connection (reopened after a Postgres
        restart); the same text, parameters and rows as the psql path."""
        vals = {}

        def sub(m):
            i = int(m.group(1))
            if i < 1 or i > len(params):
                raise StackError("sql(): $%d without a parameter" % i)
            p = params[i - 1]
            if p is None:
                return "NULL"
            vals["p%d" % i] = ("true" if p else "false") if isinstance(p, bool) else str(p)
            return "%%(p%d)s" % i
        text = re.sub(r"\$(\d+)", sub, query.replace("%", "%%"))
        # the search_path is set before every statement, as the psql path
        # does: a query may change it (SET search_path TO public; ...) and
        # a schema name may hold spaces or quotes (t/113's "mh-T113 x").
        # Its own execute: in one string with the query it would make an
        # implicit transaction block, which ALTER SYSTEM refuses (t/913).
        setpath = "SET search_path TO \"%s\"" % self.schema.replace('"', '""')
        with self._pg_lock:
            for attempt in (1, 2):
                try:
                    if self._pg is None or self._pg.closed:
                        self._pg = self._pg_connect()
                    with self._pg.cursor() as cur:
                        cur.execute(setpath)
                        cur.execute(text, vals)
                        rows = cur.fetchall() if cur.description is not None else []
                    return [tuple(r) for r in rows]
                except psycopg2.OperationalError as e:
                    # a live connection stays (the statement failed); a
                    # broken one (Postgres restarted) is reopened once
                    if (self._pg is not None and not self._pg.closed) or attempt == 2:
                        raise StackError("sql failed: %s" % str(e).strip())
                    self._pg = None
                except psycopg2.Error as e:
                    raise StackError("sql failed: %s" % str(e).strip())

    def _sql_psql(self, query, params):
        nul = "\x01NULL\x01"
        argv = self._psql_argv(self.db_name) + ["-A", "-t", "-F", "\x1f", "-R", "\x1e",
                                                "-P", "null=" + nul,
                                                "-v", "schema=" + self.schema]
        for i, p in enumerate(params, 1):
            if p is not None:
                argv += ["-v", "p%d=%s" % (i, p if not isinstance(p, bool) else
                                           ("true" if p else "false"))]

        def sub(m):
            i = int(m.group(1))
            if i < 1 or i > len(params):
                raise StackError("sql(): $%d without a parameter" % i)
            return "NULL" if params[i - 1] is None else ":'p%d'" % i
        text = re.sub(r"\$(\d+)", sub, query)
        script = "SET search_path TO :\"schema\";\n" + text.rstrip().rstrip(";") + ";\n"
        r = subprocess.run(argv, input=script, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env(), timeout=60)
        if r.returncode != 0:
            raise StackError("sql failed: %s" % r.stderr.strip())
        rows = []
        for rec in r.stdout.split("\x1e"):
            rec = rec.strip("\n")
            if rec == "":
                continue
            rows.append(tuple(None if c == nul else c for c in rec.split("\x1f")))
        return rows

    # ------------------------------------------------------ modelhubctl
    def ctl(self, *args, env=None, input=None, timeout=60):
        """modelhubctl -c <config> args...; returns CompletedProcess (text)."""
        return subprocess.run([self.bin("modelhubctl"), "-c", self.config_path] + list(args),
                              input=input, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.env(env), timeout=timeout)

    def _ctl_ok(self, *args, env=None):
        r = self.ctl(*args, env=env)
        if r.returncode != 0:
            diag("modelhubctl %s failed (exit %d)" % (" ".join(args), r.returncode))
            diag(r.stdout)
            diag(r.stderr)
            raise StackError("modelhubctl %s failed" % args[0])
        return r

    def _migrate(self):
        self._ctl_ok("migrate")

    @property
    def admin_token(self):
        """Token of the admin `t_admin` (created on first use)."""
        if self._admin_token is None:
            pw = "adm-" + secrets.token_hex(12)
            self._ctl_ok("create-admin", "t_admin", "t_admin@example.com",
                         "--password-env", "MH_T_ADMIN_PW", env={"MH_T_ADMIN_PW": pw})
            self.passwords["t_admin"] = pw
            out = os.path.join(self.tmp, "admin-token")
            r = self._ctl_ok("create-token", "t_admin", "--out", out)
            tok = ""
            if os.path.exists(out):
                with open(out) as f:
                    tok = f.read().strip()
            if not tok:
                lines = [x for x in r.stdout.splitlines() if x.strip()]
                tok = lines[-1].strip() if lines else ""
            if not tok:
                raise StackError("create-token printed no token")
            self._admin_token = tok
        return self._admin_token

    @property
    def admin_password(self):
        _ = self.admin_token
        return self.passwords["t_admin"]

    def add_demo_models(self):
        """Register models/catalog.json ({models_dir} = <srcdir>/models)."""
        cat = os.path.join(self.srcdir, "models", "catalog.json")
        if not os.path.exists(cat):
            raise StackError("models/catalog.json missing")
        return self._ctl_ok("add-model", cat)

    # ------------------------------------------------------------ daemons
    def _spawn(self, name, argv):
        log = os.path.join(self.tmp, "log", name + ".log")
        self.logs[name] = log
        with open(log, "ab") as lf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                                 env=self.env(), cwd=self.tmp, start_new_session=True)
        self.procs[name] = p
        return p

    def _wait(self, what, cond, proc=None, timeout=None):
        deadline = time.time() + (timeout or START_TIMEOUT)
        while time.time() < deadline:
            if cond():
                return
            if proc is not None and proc.poll() is not None:
                raise StackError("%s exited with status %s while starting"
                                 % (what, proc.returncode))
            time.sleep(0.05)
        raise StackError("%s not ready after %.0f s" % (what, timeout or START_TIMEOUT))

    def start_fcgi(self):
        if os.path.exists(self.fcgi_socket):
            os.unlink(self.fcgi_socket)
        p = self._spawn("fcgi", [self.bin("modelhub-fcgi"), "-c", self.config_path])
        self._wait("modelhub-fcgi socket", lambda: os.path.exists(self.fcgi_socket), p)

    def stop_fcgi(self):
        self._stop_proc("fcgi")

    def reload_fcgi(self):
        """SIGHUP: modelhub-fcgi re-reads its config."""
        os.kill(self.procs["fcgi"].pid, signal.SIGHUP)

    def start_hubd(self):
        p = self._spawn("hubd", [self.bin("modelhubd"), "-c", self.config_path])
        time.sleep(0.3)
        if p.poll() is not None:
            raise StackError("modelhubd exited with status %s at start" % p.returncode)
        return p

    def stop_hubd(self):
        self._stop_proc("hubd")

    def render_nginx(self, port, prefix, listen="127.0.0.1", user=None):
        """The nginx template with the placeholders filled in."""
        with open(os.path.join(self.srcdir, "nginx", "modelhub.conf.in")) as f:
            text = f.read()
        max_body = int(self.config.get("fcgi.max_body", "10485760")) + 1024 * 1024
        if user is None:
            # The user line only means something to a root master.
            text = re.sub(r"(?m)^user @USER@;\n", "", text)
            user = "root"
        subs = {"@PORT@": str(port), "@LISTEN_ADDR@": listen,
                "@WEB_ROOT@": os.path.join(self.srcdir, "web"),
                "@FCGI_SOCKET@": self.fcgi_socket, "@PREFIX_DIR@": prefix,
                "@MAX_BODY@": str(max_body), "@USER@": user}
        for k, v in subs.items():
            text = text.replace(k, v)
        return text

    def start_nginx(self):
        prefix = os.path.join(self.tmp, "nginx")
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(prefix, d), exist_ok=True)
        conf = os.path.join(prefix, "nginx.conf")
        self.logs["nginx"] = os.path.join(prefix, "logs", "error.log")
        last = None
        for _ in range(5):          # a free port can be taken before we bind it
            self.port = free_port()
            # Root runs workers as root: they must reach the test socket.
            with open(conf, "w") as f:
                f.write(self.render_nginx(self.port, prefix,
                                          user="root" if self.is_root else None))
            p = self._spawn("nginx", [NGINX, "-p", prefix + "/", "-c", conf, "-e",
                                      os.path.join(prefix, "logs", "error.log"),
                                      "-g", "daemon off;"])
            try:
                self._wait("nginx", lambda: self._port_open(self.port), p, timeout=10)
                self.url = "http://127.0.0.1:%d" % self.port
                return
            except StackError as e:
                last = e
                if "Address already in use" not in tail(self.logs["nginx"], 5):
                    raise
                self._stop_proc("nginx")
        raise last

    def stop_nginx(self):
        self._stop_proc("nginx")

    @staticmethod
    def _port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_health(self, timeout=None):
        """Wait until GET /api/health answers 200."""
        last = [None]

        def ready():
            try:
                r = self.api("GET", "/api/health", timeout=5)
            except (OSError, StackError, http.client.HTTPException) as e:
                last[0] = repr(e)
                return False
            last[0] = r
            return r.status == 200
        try:
            self._wait("/api/health", ready, self.procs.get("fcgi"), timeout)
        except StackError:
            diag("last /api/health answer: %r" % (last[0],))
            raise

    def _stop_proc(self, name, timeout=10):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            sig = signal.SIGQUIT if name == "nginx" else signal.SIGTERM
            try:
                p.send_signal(sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                diag("%s did not stop in %d s: SIGKILL" % (name, timeout))
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait(5)
            except OSError:
                pass

    # ---------------------------------------------------------- process
    def pid_of(self, name):
        """pid of a daemon we started ("fcgi", "hubd", "nginx",
        "postgres"), else the first descendant of ours whose comm or
        command line contains name (e.g. "runner", "scraper")."""
        pids = self.pids_of(name)
        return pids[0] if pids else None

    def pids_of(self, name):
        if name in self.procs and self.procs[name].poll() is None:
            return [self.procs[name].pid]
        if name == "postgres":
            try:
                with open(os.path.join(self.pg_dir, "data", "postmaster.pid")) as f:
                    return [int(f.readline())]
            except (OSError, ValueError):
                return []
        out = []
        for d in descendants(os.getpid()):
            if _alive(d) and (name in _comm(d) or name in _cmdline(d)):
                out.append(d)
        return sorted(out)

    def show_logs(self, lines=40):
        """Print the tail of every daemon log as TAP diagnostics."""
        self._logs_shown = True
        for name, path in sorted(self.logs.items()):
            t = tail(path, lines)
            if t:
                diag("---- %s log (%s) ----" % (name, path))
                diag(t)

    # ------------------------------------------------------------- HTTP
    def api(self, method, path, json=None, data=None, headers=None, token=None,
            cookies=None, timeout=30):
        """One request through nginx (or straight to FastCGI when the
        stack has no nginx). json: object sent as application/json; data:
        bytes/str body (set the content type in headers)."""
        h = {}
        body = b""
        if json is not None:
            body = _json.dumps(json).encode()
            h["Content-Type"] = "application/json"
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        if token:
            h["Authorization"] = "Bearer " + token
        if cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
        if headers:
            h.update(headers)
        if self.url is None:
            return fcgi_request(self.fcgi_socket, method, path, body, h, timeout)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body if (body or method in ("POST", "PUT", "PATCH"))
                      else None, headers=h)
            r = c.getresponse()
            return Resp(r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read())
        finally:
            c.close()

    def anon(self):
        """A fresh anonymous token (POST /api/auth/anon)."""
        r = self.api("POST", "/api/auth/anon")
        if r.status not in (200, 201) or not r.json or "token" not in r.json:
            raise StackError("anon token: %s %s" % (r.status, r.text[:300]))
        return r.json["token"]

    def user(self, username, password=None, email=None):
        """Sign up and log in a fresh user; returns the token."""
        password = password or "pw-%s-%s" % (username, secrets.token_hex(6))
        email = email or "%s@example.com" % username
        r = self.api("POST", "/api/auth/signup",
                     json={"username": username, "email": email, "password": password})
        if r.status not in (200, 201):
            raise StackError("signup %s: %s %s" % (username, r.status, r.text[:300]))
        self.passwords[username] = password
        return self.login(username, password)

    def login(self, username, password=None):
        password = password or self.passwords[username]
        r = self.api("POST", "/api/auth/login", json={"username": username, "password": password})
        if r.status != 200 or not r.json or "token" not in r.json:
            raise StackError("login %s: %s %s" % (username, r.status, r.text[:300]))
        return r.json["token"]

    # ------------------------------------------------------------ ending
    def stop(self):
        """Stop everything we started (and its descendants), remove the
        temp dir unless MODELHUB_KEEP_TMP=1. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        wd = getattr(self, "_watchdog", None)
        if wd is not None and wd.poll() is None:
            wd.terminate()
            try:
                wd.wait(5)
            except subprocess.TimeoutExpired:
                wd.kill()
        try:
            self._pg_close()
            self._stop_all()
        finally:
            if self.tmp and os.path.isdir(self.tmp):
                if os.environ.get("MODELHUB_KEEP_TMP") == "1":
                    diag("kept %s" % self.tmp)
                else:
                    shutil.rmtree(self.tmp, ignore_errors=True)

    def _stop_all(self):
        # A failed test (or a test script that died) gets the daemons' logs
        # in its TAP output: the temp dir is about to go.
        tap = sys.modules.get("tap")
        cur = getattr(getattr(tap, "TAP", None), "current", None)
        if cur is not None and (cur.failed or cur.died) and not self._logs_shown:
            diag("stack %s: daemon logs (a test failed)" % self.tmp)
            self.show_logs(30)
        # Children of our daemons, taken before the daemons go away.
        ours = set()
        for p in self.procs.values():
            ours.update(descendants(p.pid))
        for name in ("hubd", "nginx", "fcgi"):
            try:
                self._stop_proc(name)
            except Exception as e:            # keep going: stop the rest
                diag("stopping %s: %r" % (name, e))
        if os.path.exists(os.path.join(self.pg_dir, "data", "postmaster.pid")):
            try:
                self.stop_postgres("immediate")
            except Exception as e:
                diag("stopping postgres: %r" % (e,))
        try:
            self._check_crashes()
        except Exception as e:
            diag("checking the logs: %r" % (e,))
        # Orphans re-parented to us (we are a subreaper): model servers of a
        # modelhubd killed earlier in the test, recognised by our config
        # path in their environment or our temp dir in their command line.
        for p in descendants(os.getpid()):
            if p not in ours and self._mine(p):
                ours.add(p)
        for p in ours:
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        # Reap the ones that are our children (only ours: another Stack of
        # the same test owns its own).
        deadline = time.time() + 5
        for p in ours:
            while time.time() < deadline:
                try:
                    if os.waitpid(p, os.WNOHANG) != (0, 0):
                        break
                except ChildProcessError:
                    break
                time.sleep(0.02)

    # A worker or child killed by one of these signals crashed (tests kill
    # with SIGKILL/SIGTERM); sanitizer builds report errors in the logs.
    _SIGNAL_RE = re.compile(r"\bsignal=(4|6|7|8|11)\b")

    def crash_lines(self):
        """Log lines of fcgi/hubd reporting a child killed by a crash
        signal (unless expect_crashes) or a sanitizer error."""
        found = []
        for name in ("fcgi", "hubd"):
            path = self.logs.get(name)
            if not path or not os.path.exists(path):
                continue
            with open(path, errors="replace") as f:
                for line in f:
                    san = re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                                    r"UndefinedBehaviorSanitizer", line)
                    sig = ("died" in line or "exited" in line) and self._SIGNAL_RE.search(line)
                    # ASan turns a crash signal into a report of its own.
                    if san and re.search(r"AddressSanitizer: (SEGV|BUS|FPE|ILL|ABRT)\b", line):
                        san, sig = None, True
                    if san or (sig and not self.expect_crashes):
                        found.append("%s: %s" % (name, line.rstrip()[:300]))
        return found

    def _check_crashes(self):
        """After the daemons stopped: a crash signal or a sanitizer report
        in their logs fails the test (a restarted worker hides a crash
        from every HTTP-level check)."""
        found = self.crash_lines()
        if not found:
            return
        tap = sys.modules.get("tap")
        cur = getattr(getattr(tap, "TAP", None), "current", None)
        if cur is not None and not cur.finished:
            cur.ok(False, "no crash or sanitizer report in the daemons' logs")
        for line in found[:20]:
            diag(line)
        if not self._logs_shown:
            self.show_logs(30)

    def _mine(self, pid):
        if self.tmp in _cmdline(pid):
            return True
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            return False
        return ("MODELHUB_CONFIG=" + self.config_path).encode() in env

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
