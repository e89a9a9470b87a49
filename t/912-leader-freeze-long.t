#!/usr/bin/python3
# 912-leader-freeze-long.t — leadership survives a frozen leader (issue 15): three replicas
# under load, the leader's process group SIGSTOPped for 60 s (a 60 s freeze, in make check-long (CI runs it once through scripts/test)).
# The scenario and its checks are in t/lib/leaderfreeze.py.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
import leaderfreeze            # noqa: E402

t = TAP()
leaderfreeze.run(t, 60)
t.done()
