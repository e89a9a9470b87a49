#!/usr/bin/python3
# 110-models.t — model catalogue API over the real stack: CRUD as admin,
# 401/403 on admin routes, each validation error named, 409 duplicate,
# optimistic concurrency (body version and If-Match), disabled models hidden,
# NOTIFY model_changed, cache clearing, modelhubctl add-model/list-models.
import os
import select
import subprocess
import sys
import json
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack()
adm = s.admin_token
usr = s.user("t110user")
anon = s.anon()

M = {"id": "m110", "execution_mode": "SYNC",
     "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--port", "{port}"],
     "cpu_request_m": 200, "cpu_limit_m": 400, "memory_request_mib": 100,
     "memory_limit_mib": 200, "max_instances": 3, "idle_seconds": 5,
     "description": "test model", "details": {"output": ["mw"], "n": 1}}


def err_code(r):
    return (r.json or {}).get("error", {}).get("code")


def err_fields(r):
    return (r.json or {}).get("error", {}).get("fields") or {}


# ---- LISTEN model_changed from a psql session kept open during the test
listener = subprocess.Popen(
    ["psql", "-X", "-q", "-A", "-t", "-h", s.pg_sock, "-U", s.db_user, "-d", s.db_name],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=s.env())
listener.stdin.write(b"LISTEN model_changed;\n")
listener.stdin.flush()
marks = [0]
pending = [b""]


def read_line(timeout=10):
    """One line from psql, unbuffered (select() must see every byte)."""
    end = time.time() + timeout
    while b"\n" not in pending[0]:
        left = end - time.time()
        ready, _, _ = select.select([listener.stdout], [], [], max(left, 0))
        if not ready:
            return None
        chunk = os.read(listener.stdout.fileno(), 65536)
        if not chunk:
            return None
        pending[0] += chunk
    line, pending[0] = pending[0].split(b"\n", 1)
    return line.decode()


def notifications():
    """Model ids notified since the last call. psql prints pending
    notifications after each command it runs, so two marker queries
    bracket them: "mkN-a", the notifications, "mkN-b"."""
    marks[0] += 1
    a, b = "mk%d-a" % marks[0], "mk%d-b" % marks[0]
    listener.stdin.write(("SELECT '%s'; SELECT '%s';\n" % (a, b)).encode())
    listener.stdin.flush()
    out = []
    while True:
        line = read_line()
        if line is None:
            out.append("TIMEOUT")
            break
        if line.strip() == b:
            break
        if 'notification "model_changed"' in line and 'payload "' in line:
            out.append(line.split('payload "', 1)[1].split('"', 1)[0])
    return out


notifications()

# ---- create
r = s.api("POST", "/api/models", json=M, token=adm)
t.status(r, 201, "admin creates a model: 201")
t.is_(r.headers.get("location"), "/api/models/m110", "Location header")
m = r.json or {}
t.is_(m.get("id"), "m110", "id echoed")
t.is_(m.get("version"), 1, "new model has version 1")
t.is_(m.get("local_command"), M["local_command"], "local_command is a JSON array, {models_dir} kept")
t.is_(m.get("details"), M["details"], "details is a JSON object")
t.is_(m.get("enabled"), True, "enabled defaults to true")
t.is_(m.get("image_tag"), "latest", "image_tag default from the schema")
t.is_(m.get("cpu_limit_m"), 400, "given value stored")
t.like(m.get("created_at") or "", r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", "created_at ISO 8601 UTC")
for k in ("port", "model_version", "cache_enabled", "disable_memory_limit", "image", "updated_at"):
    t.ok(k in m, "field %s present" % k)
t.is_(notifications(), ["m110"], "create sends NOTIFY model_changed 'm110'")

r = s.api("POST", "/api/models", json=M, token=adm)
t.status(r, 409, "duplicate id: 409")
t.is_(err_code(r), "conflict", "duplicate: code conflict")
t.is_(notifications(), [], "a failed create notifies nothing")

# ---- read
for who, tok in (("anonymous", None), ("user", usr), ("admin", adm)):
    r = s.api("GET", "/api/models", token=tok)
    t.status(r, 200, "GET /api/models as %s" % who)
    t.ok("m110" in [x["id"] for x in (r.json or {}).get("items", [])], "%s sees m110" % who)
r = s.api("GET", "/api/models/m110")
t.status(r, 200, "GET /api/models/m110 public")
t.is_(r.headers.get("etag"), '"1"', "ETag is the version")
t.is_((r.json or {}).get("description"), "test model", "description")
r = s.api("GET", "/api/models/nope")
t.status(r, 404, "unknown model: 404")
t.is_(err_code(r), "not_found", "code not_found")
for odd in ("%FF%FE", "M110", "a%20b", "x" * 65):
    t.status(s.api("GET", "/api/models/" + odd), 404, "GET /api/models/%s: 404, not 500" % odd[:12])
    t.status(s.api("PATCH", "/api/models/" + odd, json={"version": 1}, token=adm), 404,
             "PATCH /api/models/%s: 404" % odd[:12])
    t.status(s.api("DELETE", "/api/models/" + odd, token=adm), 404,
             "DELETE /api/models/%s: 404" % odd[:12])
    t.status(s.api("DELETE", "/api/models/%s/cache" % odd, token=adm), 404,
             "DELETE /api/models/%s/cache: 404" % odd[:12])

# ---- access to admin routes
for method, path, body in (("POST", "/api/models", dict(M, id="m110b")),
                           ("PATCH", "/api/models/m110", {"version": 1, "enabled": False}),
                           ("DELETE", "/api/models/m110", None),
                           ("DELETE", "/api/models/m110/cache", None)):
    r = s.api(method, path, json=body)
    t.status(r, 401, "%s %s without a token: 401" % (method, path))
    t.is_(err_code(r), "unauthorized", "code unauthorized")
    r = s.api(method, path, json=body, token=anon)
    t.status(r, 403, "%s %s as anonymous: 403" % (method, path))
    r = s.api(method, path, json=body, token=usr)
    t.status(r, 403, "%s %s as a user: 403" % (method, path))
    t.is_(err_code(r), "forbidden", "code forbidden")
r = s.api("GET", "/api/models/m110", token="0" * 64)
t.status(r, 200, "a bad token on a public route is ignored")
r = s.api("POST", "/api/models", json=dict(M, id="m110c"), token="0" * 64)
t.status(r, 401, "a bad token on an admin route: 401")
t.is_(err_code(r), "session_expired", "code session_expired")
t.is_(s.sql("SELECT count(*) FROM model WHERE id IN ('m110b','m110c')")[0][0], "0",
      "rejected callers changed nothing")

# ---- validation: every field named
bad_cases = [
    ({"id": "Bad Id"}, "id"),
    ({"id": ""}, "id"),
    ({"id": "x" * 65}, "id"),
    ({"execution_mode": "BATCH"}, "execution_mode"),
    ({"enabled": "yes"}, "enabled"),
    ({"image": 5}, "image"),
    ({"image_tag": "a b"}, "image_tag"),
    ({"port": 0}, "port"),
    ({"cpu_request_m": 0}, "cpu_request_m"),
    ({"cpu_request_m": 1.5}, "cpu_request_m"),
    ({"cpu_limit_m": -1}, "cpu_limit_m"),
    ({"memory_request_mib": "64"}, "memory_request_mib"),
    ({"memory_limit_mib": 0}, "memory_limit_mib"),
    ({"disable_memory_limit": 1}, "disable_memory_limit"),
    ({"max_instances": -1}, "max_instances"),
    ({"idle_seconds": -5}, "idle_seconds"),
    ({"cache_enabled": None}, "cache_enabled"),
    ({"model_version": ""}, "model_version"),
    ({"description": 3}, "description"),
    ({"details": [1]}, "details"),
    ({"local_command": "serve {port}"}, "local_command"),
    ({"local_command": ["serve", "--port"]}, "local_command"),
    ({"local_command": ["serve", "", "{port}"]}, "local_command"),
    ({"local_command": []}, "local_command"),
    ({"unknown_field": 1}, "unknown_field"),
    ({"cpu_request_m": 500, "cpu_limit_m": 400}, "cpu_request_m"),
    ({"memory_request_mib": 300, "memory_limit_mib": 200}, "memory_limit_mib"),
    ({"cpu_request_m": 2000}, "cpu_request_m"),      # above the default limit 1000
]
for patch, field in bad_cases:
    body = dict({"id": "mbad"}, **patch)
    r = s.api("POST", "/api/models", json=body, token=adm)
    t.status(r, 422, "POST %s: 422" % json.dumps(patch)[:60])
    t.ok(err_code(r) == "validation_failed" and field in err_fields(r),
         "error.fields names %s (%s)" % (field, err_fields(r)))
r = s.api("POST", "/api/models", json={"enabled": True}, token=adm)
t.ok(r.status == 422 and "id" in err_fields(r), "missing id: 422 naming id")
r = s.api("POST", "/api/models",
          json={"id": "Q", "port": 0, "enabled": "x", "execution_mode": "Z", "details": 1},
          token=adm)
t.is_(sorted(err_fields(r)), sorted(["id", "port", "enabled", "execution_mode", "details"]),
      "several bad fields: all named at once")
t.is_(s.sql("SELECT count(*) FROM model WHERE id = 'mbad'")[0][0], "0", "nothing invalid was stored")

# ---- PATCH and optimistic concurrency
r = s.api("PATCH", "/api/models/m110", json={"enabled": False}, token=adm)
t.status(r, 422, "PATCH without version: 422")
t.ok("version" in err_fields(r), "error names version")
r = s.api("PATCH", "/api/models/m110", json={"version": "1", "enabled": False}, token=adm)
t.ok(r.status == 422 and "version" in err_fields(r), "PATCH with a string version: 422")
r = s.api("PATCH", "/api/models/m110", json={"version": 1, "id": "other"}, token=adm)
t.ok(r.status == 422 and "id" in err_fields(r), "PATCH cannot change the id")
r = s.api("PATCH", "/api/models/m110", json={"version": 1, "cpu_request_m": 800}, token=adm)
t.ok(r.status == 422 and "cpu_request_m" in err_fields(r),
     "PATCH request above the stored limit: 422 names cpu_request_m")
r = s.api("PATCH", "/api/models/m110", json={"version": 1, "memory_limit_mib": 50}, token=adm)
t.ok(r.status == 422 and "memory_limit_mib" in err_fields(r),
     "PATCH limit below the stored request: 422 names memory_limit_mib")
t.is_(notifications(), [], "rejected patches notify nothing")

r = s.api("PATCH", "/api/models/m110",
          json={"version": 1, "enabled": False, "cpu_limit_m": 800, "cpu_request_m": 600,
                "details": {"x": True}, "image": "org/img", "image_tag": "v2"}, token=adm)
t.status(r, 200, "PATCH with the current version: 200")
m = r.json or {}
t.is_(m.get("version"), 2, "version incremented")
t.is_((m.get("enabled"), m.get("cpu_request_m"), m.get("cpu_limit_m")), (False, 600, 800),
      "patched values stored")
t.is_(m.get("details"), {"x": True}, "details replaced")
t.is_(m.get("memory_limit_mib"), 200, "fields not in the patch keep their values")
t.is_(m.get("local_command"), M["local_command"], "local_command kept")
t.is_(notifications(), ["m110"], "PATCH sends NOTIFY model_changed")

r = s.api("PATCH", "/api/models/m110", json={"version": 1, "enabled": True}, token=adm)
t.status(r, 409, "PATCH with a stale version: 409")
t.is_(err_code(r), "stale_version", "code stale_version")
t.is_(tuple(s.sql("SELECT enabled, version FROM model WHERE id = 'm110'")[0]), ("f", "2"),
      "stale PATCH changed nothing")

r = s.api("PATCH", "/api/models/m110", json={"description": "via if-match"},
          headers={"If-Match": '"1"'}, token=adm)
t.status(r, 409, "stale If-Match: 409")
r = s.api("PATCH", "/api/models/m110", json={"description": "via if-match"},
          headers={"If-Match": '"2"'}, token=adm)
t.status(r, 200, "current If-Match: 200")
t.is_((r.json or {}).get("version"), 3, "version 3")
r = s.api("PATCH", "/api/models/m110", json={"description": "x"},
          headers={"If-Match": "garbage"}, token=adm)
t.status(r, 422, "malformed If-Match: 422")
r = s.api("PATCH", "/api/models/m110", json={"version": 3, "local_command": None, "image": None},
          token=adm)
t.ok(r.status == 200 and r.json["local_command"] is None and r.json["image"] is None,
     "local_command and image can be cleared with null")
r = s.api("PATCH", "/api/models/nope", json={"version": 1, "enabled": True}, token=adm)
t.status(r, 404, "PATCH unknown model: 404")
notifications()

# ---- disabled models are hidden from non-admins
r = s.api("GET", "/api/models")
t.ok("m110" not in [x["id"] for x in r.json["items"]], "disabled model not listed for anonymous")
r = s.api("GET", "/api/models", token=usr)
t.ok("m110" not in [x["id"] for x in r.json["items"]], "disabled model not listed for a user")
r = s.api("GET", "/api/models", token=adm)
t.ok("m110" in [x["id"] for x in r.json["items"]], "disabled model listed for the admin")
t.status(s.api("GET", "/api/models/m110"), 404, "disabled model: 404 for anonymous")
t.status(s.api("GET", "/api/models/m110", token=usr), 404, "disabled model: 404 for a user")
t.status(s.api("GET", "/api/models/m110", token=adm), 200, "disabled model: 200 for the admin")

# ---- cache clearing
s.sql("INSERT INTO input_cache (model_id, model_version, input_key, input, record) "
      "VALUES ('m110', '1', '\\x01', 'CCO', '{}'), ('m110', '1', '\\x02', 'CCC', '{}')")
r = s.api("DELETE", "/api/models/m110/cache", token=adm)
t.status(r, 200, "DELETE cache: 200")
t.is_((r.json or {}).get("deleted"), 2, "two cache rows deleted")
t.is_(s.sql("SELECT count(*) FROM input_cache WHERE model_id = 'm110'")[0][0], "0", "cache empty")
t.status(s.api("DELETE", "/api/models/nope/cache", token=adm), 404, "cache of unknown model: 404")

# ---- delete: refused while the model has work, then allowed
s.sql("INSERT INTO work_request (model_id, user_id, input_count, status) "
      "SELECT 'm110', id, 1, 'QUEUED' FROM app_user WHERE username = 't_admin'")
r = s.api("DELETE", "/api/models/m110", token=adm)
t.status(r, 409, "DELETE with a queued request: 409")
t.is_(err_code(r), "model_busy", "code model_busy")
s.sql("UPDATE work_request SET status = 'RUNNING' WHERE model_id = 'm110'")
t.status(s.api("DELETE", "/api/models/m110", token=adm), 409, "DELETE with a running request: 409")
s.sql("UPDATE work_request SET status = 'COMPLETED' WHERE model_id = 'm110'")
s.sql("INSERT INTO model_instance (model_id, backend, state) VALUES ('m110', 'local', 'READY')")
t.status(s.api("DELETE", "/api/models/m110", token=adm), 409, "DELETE with a live instance: 409")
s.sql("UPDATE model_instance SET state = 'TERMINATED' WHERE model_id = 'm110'")
t.is_(notifications(), [], "refused deletes notify nothing")
r = s.api("DELETE", "/api/models/m110", token=adm)
t.status(r, 204, "DELETE: 204")
t.is_(notifications(), ["m110"], "DELETE sends NOTIFY model_changed")
t.status(s.api("GET", "/api/models/m110", token=adm), 404, "deleted model gone")
t.status(s.api("DELETE", "/api/models/m110", token=adm), 404, "DELETE again: 404")
t.is_(s.sql("SELECT count(*) FROM work_request WHERE model_id = 'm110'")[0][0], "0",
      "its finished requests went with it")

# ---- modelhubctl add-model / list-models share the validation
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump([dict(M, id="ctl1"), {"id": "ctl2", "enabled": False}], f)
    good = f.name
r = s.ctl("add-model", good)
t.is_(r.returncode, 0, "add-model with an array: exit 0")
t.like(r.stdout, r"added model ctl1 \(version 1\)", "add-model reports what it added")
t.is_(s.sql("SELECT local_command[2] FROM model WHERE id = 'ctl1'")[0][0], "{models_dir}/serve.py",
      "{models_dir} kept without --models-dir")
r = s.ctl("add-model", good, "--models-dir", "/opt/m")
t.like(r.stdout, r"updated model ctl1 \(version 2\)", "add-model again updates (upsert)")
t.is_(s.sql("SELECT local_command[2] FROM model WHERE id = 'ctl1'")[0][0], "/opt/m/serve.py",
      "--models-dir substitutes {models_dir}")
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump([{"id": "ctl3"}, {"id": "ctl4", "cpu_request_m": -1, "bogus": 1}], f)
    bad = f.name
r = s.ctl("add-model", bad)
t.is_(r.returncode, 1, "add-model with an invalid model: exit 1")
t.like(r.stderr, r"ctl4: cpu_request_m", "error names the model and field")
t.like(r.stderr, r"ctl4: bogus: unknown field", "unknown field reported")
t.is_(s.sql("SELECT count(*) FROM model WHERE id = 'ctl3'")[0][0], "0",
      "an invalid file writes nothing, not even its valid models")
with open(bad, "w") as f:
    f.write("{not json")
t.is_(s.ctl("add-model", bad).returncode, 1, "add-model with broken JSON: exit 1")
t.is_(s.ctl("add-model", "/nonexistent.json").returncode, 1, "add-model with a missing file: exit 1")
r = s.ctl("list-models")
t.ok(r.returncode == 0 and "ctl1" in r.stdout and "ctl2" in r.stdout, "list-models lists both")
t.like(r.stdout, r"ctl2\s+no", "list-models shows ctl2 disabled")
r = s.api("GET", "/api/models/ctl1", token=adm)  # resources: admins only (issue 18)
t.ok(r.status == 200 and r.json["cpu_limit_m"] == 400, "a model added by modelhubctl is served by the API")

# ---- the per-worker list cache follows changes made by other processes
for _ in range(6):     # warm the cache of every worker
    s.api("GET", "/api/models")
with open(good, "w") as f:
    json.dump({"id": "ctl1", "description": "changed by modelhubctl"}, f)
t.is_(s.ctl("add-model", good).returncode, 0, "modelhubctl changes ctl1")
time.sleep(0.3)   # Postgres delivers NOTIFY to listeners asynchronously
descs = set()
for _ in range(8):
    r = s.api("GET", "/api/models")
    descs.add([x for x in r.json["items"] if x["id"] == "ctl1"][0]["description"])
t.is_(descs, {"changed by modelhubctl"}, "every worker's list shows the change at once")
s.sql("UPDATE model SET enabled = false WHERE id = 'ctl1'; SELECT pg_notify('model_changed', 'ctl1')")
time.sleep(0.3)
ids = set()
for _ in range(8):
    ids |= {x["id"] for x in s.api("GET", "/api/models").json["items"]}
t.ok("ctl1" not in ids, "a change notified from plain SQL invalidates the list too")
os.unlink(good)
os.unlink(bad)

listener.stdin.close()
listener.terminate()
listener.wait()
s.stop()
t.done()
