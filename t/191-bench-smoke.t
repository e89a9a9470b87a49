#!/usr/bin/python3
# 191-bench-smoke.t — bench/api-throughput still runs: a one-second round
# against every target gives req/s, ratios and worker RSS, exit 0.
import os
import re
import subprocess
import sys

srcdir = os.path.abspath(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
sys.path.insert(0, os.path.join(srcdir, "t", "lib"))
from tap import TAP   # noqa: E402

t = TAP()
r = subprocess.run([os.path.join(srcdir, "bench", "api-throughput"), "--seconds", "1",
                    "--rounds", "1", "--connections", "4", "--threads", "1", "--workers", "2"],
                   text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
if not t.is_(r.returncode, 0, "bench/api-throughput exits 0"):
    t.diag(r.stdout[-3000:])
for name in ("static", "ping", "models", "public"):
    m = re.search(r"(?m)^%s\s+(\d+)\s+([\d.]+)" % name, r.stdout)
    t.ok(m and int(m.group(1)) > 0, "%s: req/s measured (%s)" % (name, m and m.group(1)))
t.like(r.stdout, r"models/ping ratio: [\d.]+", "catalogue/ping ratio printed")
m = re.search(r"worker RSS KiB: ([\d ]+);", r.stdout)
t.ok(m and len(m.group(1).split()) == 2, "RSS of both workers printed")
t.done()
