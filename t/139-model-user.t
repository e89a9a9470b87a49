#!/usr/bin/python3
# 139-model-user.t — model processes never run as root (issue 17, finding 4): a root hub runs local instances as hub.local_user (unset: modelhub-model, else nobody) in their own 0700 directory (its only writable place besides a private /dev/shm: not the hub's var_dir, the source tree, /etc or /tmp); hub.local_command_dirs refuses other programs in the API (422) and in the runner (not started); hub.local_user = root is refused.
import os
import pwd
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402
import flows                   # noqa: E402

t = TAP()
if os.geteuid() != 0:
    t.skip_all("needs root (the hub switches instances to an unprivileged user only as root)")
s = Stack(hubd=False, config={"hub.runners": "1", "auth.pwhash_fast": "1"})
try:
    want = pwd.getpwnam("modelhub-model")
except KeyError:
    want = pwd.getpwnam("nobody")
mark = "mh139-%d" % os.getpid()
probe = ("id -u > uid; id -G > gids; "
         "(echo x > {var}/escape) 2>/dev/null && echo var > escaped; "
         "(echo x > {{models_dir}}/../{mark}) 2>/dev/null && echo src >> escaped; "
         "(echo x > /etc/{mark}) 2>/dev/null && echo etc >> escaped; "
         "(echo x > /tmp/{mark}) 2>/dev/null && echo tmp >> escaped; "
         "echo x > /dev/shm/{mark} && echo ok > shm; echo \"$HOME $TMPDIR\" > env; "
         "exec /usr/bin/python3 {{models_dir}}/serve.py --model eos3b5e --host {{host}}"
         " --port {{port}}").format(var=s.var_dir, mark=mark)
argv = ["/bin/sh", "-c", probe]
s.sql("INSERT INTO model (id, local_command, max_instances, idle_seconds) VALUES"
      " ('who', $1::text[], 1, 120)", "{" + ",".join('"%s"' % a.replace('"', '\\"') for a in argv) + "}")
s.start_hubd()
tok = s.anon()
rid = flows.submit(t, s, tok, "who", ["CCO", "c1ccccc1"])
st = flows.wait_request(s, rid, timeout=90)
t.is_(st and st[0], "COMPLETED", "a request to the model completes (%s)" % (st,))
r = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=tok)
res = (r.json or {}).get("results") or []
t.ok(len(res) == 2 and abs(res[0]["record"]["mol_weight"] - 46.07) < 0.05,
     "... with correct results from the unprivileged instance")

iid, pid = [int(x) for x in s.sql("SELECT id, coalesce(pid, 0) FROM model_instance"
                                   " WHERE model_id = 'who' ORDER BY id DESC LIMIT 1")[0]]
own = os.path.join(s.var_dir, "instances", str(iid))


def read(name):
    try:
        with open(os.path.join(own, name)) as f:
            return f.read().strip()
    except OSError as e:
        return "(%s)" % e


t.is_(read("uid"), str(want.pw_uid), "the model runs as %s (uid %d), not root"
      % (want.pw_name, want.pw_uid))
t.ok("0" not in read("gids").split(), "no group 0 among its groups (%s)" % read("gids"))
try:
    with open("/proc/%d/status" % pid) as f:
        uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
except (OSError, IndexError):
    uids = None
t.is_(uids, [str(want.pw_uid)] * 4, "the instance process (pid %d): real, effective, saved, fs uid" % pid)
sto = os.stat(own)
t.is_((sto.st_uid, oct(sto.st_mode & 0o777)), (want.pw_uid, "0o700"),
      "its own directory %s belongs to it, mode 0700" % own)
t.is_(read("env"), "%s %s" % (own, own), "HOME and TMPDIR are that directory")
t.ok(not os.path.exists(os.path.join(own, "escaped")),
      "it could not write the hub's var_dir, the source tree, /etc or /tmp (%s)" % read("escaped"))
t.ok(not any(os.path.exists(p) for p in (os.path.join(s.var_dir, "escape"), "/etc/" + mark,
                                          "/tmp/" + mark)),
     "... nothing appeared there")
t.is_(read("shm"), "ok", "it can write its /dev/shm")
t.ok(not os.path.exists("/dev/shm/" + mark), "... which is private: not the host's /dev/shm")
log = os.path.join(s.var_dir, "instances", "%d.log" % iid)
with open(log, errors="replace") as f:
    text = f.read()
t.like(text, r"running as %s \(uid %d\)" % (want.pw_name, want.pw_uid), "its log says who it runs as")

# ---- hub.local_command_dirs: the API
adm = s.admin_token
s.set_config(hub__local_command_dirs="/usr/bin:{models_dir}")
s.reload_fcgi()
time.sleep(0.5)
r = s.api("POST", "/api/models", token=adm, json={"id": "evil", "local_command": ["/opt/x/run", "{port}"]})
t.status(r, 422, "API: a program outside hub.local_command_dirs is refused")
t.like((((r.json or {}).get("error") or {}).get("fields") or {}).get("local_command", ""),
       r"/opt/x/run is not in hub.local_command_dirs", "... naming the program and the key")
r = s.api("POST", "/api/models", token=adm, json={
    "id": "fine", "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--port", "{port}"]})
t.status(r, 201, "API: /usr/bin/python3 is allowed")
r = s.api("PATCH", "/api/models/fine", token=adm,
          json={"version": 1, "local_command": ["{models_dir}/../../../bin/sh", "{port}"]})
t.status(r, 422, "API: a path with .. is refused in a PATCH")

# ---- the runner checks too (a row written past the API), and refuses root
s.stop_hubd()
s.sql("UPDATE model SET local_command = '{/bin/sh,-c,\"exec sleep 60 {port}\"}' WHERE id = 'who'")
s.sql("UPDATE model_instance SET state = 'TERMINATED' WHERE model_id = 'who'")
s.start_hubd()
rid = flows.submit(t, s, tok, "who", ["CCO"])
hub_log = s.logs["hubd"]


def log_has(pat):
    with open(hub_log, errors="replace") as f:
        return any(pat in ln for ln in f)


flows.wait_for(t, "runner refuses /bin/sh outside the dirs",
               lambda: log_has("is not in hub.local_command_dirs"), timeout=30)
t.ok(log_has("/bin/sh is not in hub.local_command_dirs"), "runner: the instance is not started, the log says why")
s.stop_hubd()
s.set_config(hub__local_command_dirs=None, hub__local_user="root")
s.start_hubd()
t.diag("request before: %s" % (flows.wait_request(s, rid, timeout=1),))
rid = flows.submit(t, s, tok, "who", ["CCN"])
flows.wait_for(t, "root refused", lambda: log_has("model processes never run as root"), timeout=30)
t.ok(log_has("never run as root"), "hub.local_user = root: no instance starts, the log says why")
s.stop_hubd()
s.set_config(hub__local_user="no-such-user-139")
s.start_hubd()
rid = flows.submit(t, s, tok, "who", ["CCS"])
flows.wait_for(t, "missing user refused", lambda: log_has("hub.local_user no-such-user-139 does not exist"),
               timeout=30)
t.ok(log_has("hub.local_user no-such-user-139 does not exist"),
     "a configured hub.local_user that does not exist: no instance starts (no fallback), the log says so")
s.stop_hubd()
s.sql("UPDATE work_request SET status = 'CANCELLED', failure_reason = 'CANCELLED'"
      " WHERE status IN ('QUEUED', 'RUNNING')")
s.stop()
t.done()
