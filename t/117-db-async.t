#!/usr/bin/python3
# 117-db-async.t — db_send/db_collect (src/db/db.c), the statement the
# runner leaves in flight while a model computes: runs t/db-async-helper
# (C, prints TAP) against a throwaway Postgres cluster and relays each of
# its checks. The runner side (stores overlapped with model calls) is
# covered by t/201-204.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(nginx=False)
helper = os.path.join(os.environ.get("top_builddir", s.srcdir), "t", "db-async-helper")
r = subprocess.run([helper, s.config["db.conninfo"], s.schema], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True, timeout=60)
checks = 0
for line in r.stdout.splitlines():
    m = re.match(r"^(not )?ok \d+ - (.*)$", line)
    if m:
        t.ok(m.group(1) is None, m.group(2))
        checks += 1
    elif line.startswith("#"):
        t.diag(line[1:].strip())
t.ok(checks >= 20 and r.returncode == 0,
     "helper ran all its checks (%d, exit %d)" % (checks, r.returncode))
if r.returncode != 0:
    t.diag(r.stderr[-2000:])
t.done()
