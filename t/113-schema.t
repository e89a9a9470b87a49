#!/usr/bin/python3
# 113-schema.t — db.schema: a stack whose schema is not "modelhub" (and needs
# quoting) works end to end and every object lands in that schema; and
# `modelhubctl migrate`: idempotent, each file in one transaction (a failing
# file leaves nothing), --sql-dir, only NNN_name.sql files; and deleting a
# request deletes its inputs and results (002's statement trigger, which
# must find them from a session whose search_path is not the schema).
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
SCHEMA = "mh-T113 x"   # upper case, dash, space: only works if quoted everywhere
s = Stack(config={"db.schema": SCHEMA})
adm = s.admin_token

r = s.api("GET", "/api/health")
t.status(r, 200, "health with a non-default schema")
t.is_((r.json or {}).get("schema"), SCHEMA, "health reports the schema")
# Every shipped migration is applied: the newest number is the version.
SHIPPED = sorted(f for f in os.listdir(os.path.join(s.srcdir, "sql")) if re.match(r"^\d{3}_.*\.sql$", f))
LAST = int(SHIPPED[-1][:3])
t.is_((r.json or {}).get("migration"), LAST, "health reports the migration version")

r = s.api("POST", "/api/models", json={"id": "m113", "description": "in another schema"}, token=adm)
t.status(r, 201, "create a model through the API")
t.status(s.api("GET", "/api/models/m113"), 200, "read it back")
u = s.user("t113user")
t.ok(u, "signup and login work in the schema")


def objects_in(schema):
    rows = s.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                 schema)
    return sorted(x[0] for x in rows)


tables = objects_in(SCHEMA)
for name in ("app_user", "session", "model", "work_request", "input_cache", "schema_migration"):
    t.ok(name in tables, "table %s is in schema %r" % (name, SCHEMA))
t.is_(objects_in("modelhub"), [], "nothing in schema modelhub")
t.is_(objects_in("public"), [], "nothing in schema public")
t.is_(s.sql("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = 'iso' AND n.nspname = $1", SCHEMA)[0][0], "1",
      "function iso() is in the schema")
rows = s.sql('SELECT description FROM "mh-T113 x".model WHERE id = \'m113\'')
t.is_(rows and rows[0][0], "in another schema", "the API row is in the schema (qualified query)")
rows = s.sql("SELECT u.username FROM \"mh-T113 x\".app_user u WHERE u.username IN ('t_admin', 't113user') "
             "ORDER BY 1")
t.is_([x[0] for x in rows], ["t113user", "t_admin"], "accounts are in the schema")

# ---- migrate is idempotent
r = s.ctl("migrate")
t.is_(r.returncode, 0, "second migrate: exit 0")
t.like(r.stdout, r"up to date \(version %d\)" % LAST, "second migrate applies nothing")
t.is_(s.sql("SELECT version, name FROM schema_migration ORDER BY 1"),
      [(str(int(f[:3])), f) for f in SHIPPED], "schema_migration records each shipped file once")

# ---- a failing migration leaves nothing; a fixed one applies; odd names ignored
d = tempfile.mkdtemp(prefix="mh113-")
for f in SHIPPED:
    shutil.copy(os.path.join(s.srcdir, "sql", f), d)
with open(os.path.join(d, "901_bad.sql"), "w") as f:
    f.write("CREATE TABLE t113_partial (x int);\nSELECT * FROM no_such_table_113;\n")
with open(os.path.join(d, "README.sql"), "w") as f:
    f.write("this is not SQL\n")
with open(os.path.join(d, "904.sql"), "w") as f:
    f.write("this is not SQL either\n")
r = s.ctl("migrate", "--sql-dir", d)
t.is_(r.returncode, 1, "a failing migration: exit 1")
t.like(r.stderr, r"901_bad\.sql", "the error names the file")
t.is_(objects_in(SCHEMA).count("t113_partial"), 0, "the failed file's first statement was rolled back")
t.is_(len(s.sql("SELECT 1 FROM schema_migration WHERE version = 901")), 0, "901 not recorded")
with open(os.path.join(d, "901_bad.sql"), "w") as f:
    f.write("CREATE TABLE t113_partial (x int);\nINSERT INTO t113_partial VALUES (1);\n")
with open(os.path.join(d, "902_more.sql"), "w") as f:
    f.write("ALTER TABLE t113_partial ADD COLUMN y text;\n")
r = s.ctl("migrate", "--sql-dir", d)
t.is_(r.returncode, 0, "fixed migrations apply: exit 0")
t.like(r.stdout, r"applied 901_bad\.sql\napplied 902_more\.sql", "901 then 902 applied, in order")
t.ok("t113_partial" in objects_in(SCHEMA), "the new table is in the configured schema")
t.is_(s.sql("SELECT version FROM schema_migration ORDER BY 1"),
      [(str(int(f[:3])),) for f in SHIPPED] + [("901",), ("902",)], "shipped versions, 901, 902 recorded")
r = s.ctl("migrate", "--sql-dir", d)
t.like(r.stdout, r"up to date \(version 902\)", "third run: up to date")
with open(os.path.join(d, "902_dup.sql"), "w") as f:
    f.write("SELECT 1;\n")
r = s.ctl("migrate", "--sql-dir", d)
t.ok(r.returncode == 1 and "two migrations numbered 902" in r.stderr, "duplicate numbers are refused")
r = s.ctl("migrate", "--sql-dir", "/nonexistent-113")
t.is_(r.returncode, 1, "missing sql dir: exit 1")
shutil.rmtree(d)

# ---- deleting requests deletes their inputs and results (trigger of 002)
tok = s.anon()
ids = []
for k in range(3):
    r = s.api("POST", "/api/requests", token=tok,
              json={"model_id": "m113", "inputs": ["C%d" % k, "CC", "CCC"]})
    t.status(r, 201, "request %d stored" % k)
    ids.append((r.json or {}).get("id", 0))
s.sql("INSERT INTO work_request_result (request_id, ordinal, record) "
      "SELECT request_id, ordinal, '{\"x\": 1}' FROM work_request_input")
t.is_(s.sql("SELECT count(*) FROM work_request_input")[0][0], "9", "9 inputs stored")
s.sql('SET search_path TO public; DELETE FROM "mh-T113 x".work_request WHERE id IN ($1, $2)',
      ids[0], ids[1])
t.is_(s.sql("SELECT DISTINCT request_id FROM work_request_input"), [(str(ids[2]),)],
      "inputs of the deleted requests are gone, the other's kept")
t.is_(s.sql("SELECT request_id, count(*) FROM work_request_result GROUP BY 1"),
      [(str(ids[2]), "3")], "results likewise")
r = s.api("GET", "/api/requests/%d/result" % ids[2], token=tok)
t.is_(r.status, 409, "the kept request is still there (queued: no result yet)")

# ---- modelhubctl basics
r = s.ctl("--version")
t.like(r.stdout, r"^modelhubctl \d+\.\d+", "modelhubctl --version")
t.is_(s.ctl("no-such-command").returncode, 2, "unknown command: exit 2")
t.is_(s.ctl("create-admin", "onlyname").returncode, 2, "missing argument: exit 2")
r = s.ctl("create-admin", "t_admin", "t_admin@example.com")
t.ok(r.returncode == 0 and "already exists" in r.stdout, "create-admin of an existing user: exit 0, says so")
r = s.ctl("create-admin", "t113adm", "t113adm@example.com")
t.ok(r.returncode == 0 and "password: " in r.stdout, "create-admin prints a generated password")
pw = r.stdout.split("password: ", 1)[1].strip() if "password: " in r.stdout else ""
r = s.api("POST", "/api/auth/login", json={"username": "t113adm", "password": pw})
t.status(r, 200, "the generated password logs in")
t.is_(s.sql("SELECT roles FROM app_user WHERE username = 't113adm'")[0][0], "{ADMIN,USER}",
      "roles ADMIN,USER")
r = s.ctl("create-admin", "t113b", "t113b@example.com", "--password-env", "NOPE_UNSET_113")
t.is_(r.returncode, 1, "--password-env naming an unset variable: exit 1")
r = s.ctl("create-admin", "t113b", "t113b@example.com", "--password-env", "PW113",
          env={"PW113": "short"})
t.is_(r.returncode, 1, "a too short password is refused")
r = s.ctl("create-admin", "BAD NAME", "x@example.com")
t.is_(r.returncode, 1, "an invalid username is refused")
out = os.path.join(s.tmp, "tok113")
with open(out, "w") as f:
    f.write("old")
os.chmod(out, 0o644)
r = s.ctl("create-token", "t113adm", "--out", out)
t.is_(r.returncode, 0, "create-token --out: exit 0")
t.is_(oct(os.stat(out).st_mode & 0o777), "0o600", "token file mode 0600 (even if it existed)")
with open(out) as f:
    tok = f.read().strip()
t.like(tok, r"^[0-9a-f]{64}$", "token file holds the token")
t.ok(tok not in r.stdout, "the token is not printed when written to a file")
r = s.api("GET", "/api/models", token=tok)
t.status(r, 200, "the token authenticates")
t.ok("m113" in [x["id"] for x in r.json["items"]], "... as an admin")
t.is_(s.ctl("create-token", "nobody113").returncode, 1, "create-token for an unknown user: exit 1")
r = s.ctl("reset-password", "t113adm", "--password-env", "PW113", env={"PW113": "n3w-passw0rd-113"})
t.is_(r.returncode, 0, "reset-password: exit 0")
t.status(s.api("POST", "/api/auth/login", json={"username": "t113adm", "password": pw}), 401,
         "the old password no longer works")
t.status(s.api("POST", "/api/auth/login", json={"username": "t113adm",
                                                "password": "n3w-passw0rd-113"}), 200,
         "the new password works")
t.is_(s.ctl("reset-password", "nobody113").returncode, 1, "reset-password of an unknown user: exit 1")

s.stop()
t.done()
