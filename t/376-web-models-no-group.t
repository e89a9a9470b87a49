#!/usr/bin/python3
# 376-web-models-no-group.t — the models admin page flags a model whose requests fit no node group of the node autoscaler (saved before the groups changed: the save check would refuse it now), and only that one.
"""kubesim with one external node group of 2 CPU / 4 GiB nodes. descriptors is
set to 5 CPU in the database directly (as if the groups had been smaller
than when it was saved); eos3b5e asks 1 CPU. GET /api/autoscaler lists
descriptors in models_without_group, and the models admin page (headless
Chromium) shows the flag "fits no node group" on descriptors' row alone."""

import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP  # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from kubestack import base_config, start  # noqa: E402
from simtest import need_root_or_skip  # noqa: E402

need_root_or_skip(t)
G = "autoscale.group."
hub = {"auth.pwhash_fast": "1", "autoscale.groups": "small",
       G + "small.mode": "external", G + "small.node_label": "modelhub.io/node-group=small",
       G + "small.cpu_m": "2000", G + "small.memory_mib": "4096"}
sim, s = start(sim_config=base_config(), hub=hub, hubd=False)
s.sql("UPDATE model SET cpu_request_m = 5000, cpu_limit_m = 6000 WHERE id = 'descriptors'")
s.sql("UPDATE model SET cpu_request_m = 1000, cpu_limit_m = 2000 WHERE id = 'eos3b5e'")
r = s.api("GET", "/api/autoscaler", token=s.admin_token)
t.is_((r.json or {}).get("models_without_group"), ["descriptors"],
      "GET /api/autoscaler lists descriptors as fitting no group")

b = Browser(s.url, t)
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")
b.go("#/admin/models")
b.wait_for("#admin-models .no-node-group")
rows = {}
for tr in b.finds("#admin-models tr"):
    cells = tr.find_elements("css selector", "td")
    if cells:
        rows[cells[0].text.split()[0]] = tr
flagged = sorted(k for k, tr in rows.items() if tr.find_elements("css selector", ".no-node-group"))
t.is_(flagged, ["descriptors"], "the flag is on descriptors' row only")
flag = rows["descriptors"].find_element("css selector", ".no-node-group")
t.like(flag.get_attribute("title"), r"5000 m CPU .* fit no node group", "the flag says why")
t.is_(b.console_errors(), [], "no console errors, no HTTP error")
b.quit()
s.stop()
sim.stop()
t.done()
