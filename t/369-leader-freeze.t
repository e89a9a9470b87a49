#!/usr/bin/python3
# 369-leader-freeze.t — leadership survives a frozen leader (issue 15): three replicas
# under load, the leader's process group SIGSTOPped for 25 s (a 25 s freeze, in make check).
# The scenario and its checks are in t/lib/leaderfreeze.py.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
import leaderfreeze            # noqa: E402

t = TAP()
leaderfreeze.run(t, 25, stale=45)
t.done()
