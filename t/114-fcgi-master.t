#!/usr/bin/python3
# 114-fcgi-master.t — the modelhub-fcgi master: pid file, socket mode,
# process titles, a killed worker is replaced (with back-off in a crash
# loop), SIGHUP reloads the config into a new generation of workers (a bad
# file keeps the old one), SIGTERM stops accepting but finishes the request
# in flight, a stale socket is replaced, a live one is refused.
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                                        # noqa: E402
import stack                                               # noqa: E402
from stack import Stack, fcgi_request, descendants, _alive  # noqa: E402
import flows                                               # noqa: E402
from flows import recv_all                                  # noqa: E402

t = TAP()
s = Stack(nginx=False, config={"fcgi.workers": "2", "fcgi.max_body": "1000"})
master = s.pid_of("fcgi")
pidfile = s.config["fcgi.pidfile"]
sock = s.fcgi_socket


def workers():
    # the master forks nothing but workers, and workers fork nothing
    return sorted(p for p in descendants(master) if _alive(p))


def wait_for(cond, timeout=10):
    return bool(flows.poll(cond, timeout, 0.05))


def log_text():
    with open(s.logs["fcgi"]) as f:
        return f.read()


def ping():
    return fcgi_request(sock, "GET", "/api/ping", b"", {}, timeout=10).status


# ---- basics
r = subprocess.run([s.bin("modelhub-fcgi"), "--version"], stdout=subprocess.PIPE, text=True)
t.like(r.stdout, r"^modelhub-fcgi \d+\.\d+\.\d+", "--version")
with open(pidfile) as f:
    t.is_(int(f.read().strip()), master, "pid file holds the master pid")
t.is_(stat.S_IMODE(os.stat(sock).st_mode), 0o666, "socket mode 0666 (nginx can connect)")
t.is_(stack._comm(master), "mh-fcgi-master", "master process title")
w0 = workers()
t.is_(len(w0), 2, "two workers (fcgi.workers = 2)")
t.is_([stack._comm(p) for p in w0], ["mh-fcgi-worker"] * 2, "worker process titles")

# ---- a killed worker is replaced
os.kill(w0[0], signal.SIGKILL)
def replaced(gone):
    """Two live workers and none of `gone` among them (one snapshot)."""
    w = workers()
    return len(w) == 2 and not set(w) & set(gone)


t.ok(wait_for(lambda: replaced([w0[0]])),
     "a SIGKILLed worker is replaced")
t.is_(ping(), 200, "requests are served after the replacement")
t.like(log_text(), r"(?m)^(?=.*worker died, restarting)(?=.*exit=crash signal=9).*$",
       "the death is logged as a crash with the signal")

# crash loop: kill the replacement of one slot repeatedly; the delay grows
for i in range(4):
    cur = workers()
    victim = [p for p in cur if p not in w0]
    if not victim:
        t.diag("no replacement worker found in %s" % cur)
        t.diag("".join(log_text().splitlines(True)[-15:]))
        break
    os.kill(victim[0], signal.SIGKILL)
    wait_for(lambda: replaced(victim), 15)
delays = [int(x) for x in re.findall(r"(?m)^(?=.*worker died, restarting).*delay_ms=(\d+)", log_text())]
t.ok(len(delays) >= 4 and delays[-1] > delays[1] > 0,
     "quick deaths back off with growing delays: %s" % delays)
t.ok(wait_for(lambda: len(workers()) == 2, 15), "the pool is full again after the crash loop")
t.is_(ping(), 200, "and serves")

# ---- SIGHUP: new config, new generation
old = workers()
body = b'{"id":"x"}' + b" " * 600
t.ok(fcgi_request(sock, "POST", "/api/models", body, {"Content-Type": "application/json"}).status
     != 413, "a 610-byte body is under the 1000-byte limit")
s.set_config(fcgi__max_body="500")
os.kill(master, signal.SIGHUP)
t.ok(wait_for(lambda: replaced(old)),
     "after SIGHUP every worker is new")
t.is_(fcgi_request(sock, "POST", "/api/models", body, {"Content-Type": "application/json"}).status,
      413, "the reloaded fcgi.max_body (500) applies")
t.ok(_alive(master), "the master itself kept running")

old = workers()
with open(s.config_path, "a") as f:
    f.write("this line is not key = value\n")
os.kill(master, signal.SIGHUP)
t.ok(wait_for(lambda: "reload failed" in log_text()), "a bad config file is reported")
time.sleep(0.3)
t.is_(workers(), old, "a bad config file keeps the old workers")
t.is_(ping(), 200, "and they keep serving")
s.set_config()   # rewrite a good file

# ---- SIGTERM: stop accepting, finish the request in flight
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(20)
c.connect(sock)
params = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/ping", "QUERY_STRING": "",
          "CONTENT_LENGTH": "10", "CONTENT_TYPE": "text/plain"}
pv = b"".join(stack._fcgi_nv(k, v) for k, v in params.items())
c.sendall(stack._fcgi_record(stack._FCGI_BEGIN, struct.pack(">HB5x", 1, 0)) +
          stack._fcgi_record(stack._FCGI_PARAMS, pv) + stack._fcgi_record(stack._FCGI_PARAMS, b"") +
          stack._fcgi_record(stack._FCGI_STDIN, b"12345"))
time.sleep(0.3)          # a worker is now blocked reading the rest of the body
os.kill(master, signal.SIGTERM)
t.ok(wait_for(lambda: not os.path.exists(sock), 5), "SIGTERM: the socket is removed at once")
time.sleep(0.3)
t.ok(_alive(master), "the master waits for the request in flight")
try:
    x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    x.connect(sock)
    refused = False
except OSError:
    refused = True
t.ok(refused, "new connections are refused while draining")
c.sendall(stack._fcgi_record(stack._FCGI_STDIN, b"67890") + stack._fcgi_record(stack._FCGI_STDIN, b""))
out = recv_all(c)
t.ok(b"Status: 405" in out and b"method_not_allowed" in out,
     "the request in flight got its complete answer")
t.ok(wait_for(lambda: s.procs["fcgi"].poll() is not None, 10), "then the master exits")
t.is_(s.procs["fcgi"].returncode, 0, "with status 0")
t.ok(not os.path.exists(pidfile), "the pid file is removed")
t.is_(workers(), [], "no worker is left")

# ---- stale socket is replaced; a live one is refused
st = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
st.bind(sock)
st.close()                 # the file stays: a stale socket
env = s.env()
p1 = subprocess.Popen([s.bin("modelhub-fcgi"), "-c", s.config_path], env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=s.tmp)


def serving():
    try:
        return ping() == 200
    except Exception:
        return False


t.ok(wait_for(serving, 10), "a master started over a stale socket serves")
p2 = subprocess.run([s.bin("modelhub-fcgi"), "-c", s.config_path], env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=s.tmp,
                    timeout=10)
t.is_(p2.returncode, 1, "a second master on a live socket exits 1")
t.like(p2.stderr, r"another server is listening", "and says why")
t.ok(serving(), "the first master is unaffected")
p1.send_signal(signal.SIGTERM)
p1.wait(10)
t.is_(p1.returncode, 0, "the restarted master stops cleanly on SIGTERM")

s.stop()
t.done()
