#!/usr/bin/python3
# 512-web-kube-instances.t — issue 19 defect 12: the instances pages on the Kubernetes backend (kubesim). The active instances page and an instance's page show the pod status from the API's snapshot.pod_state ("Running, ready"; the page read snapshot.phase, which the API never sends, so nothing showed); the history keeps one pod dump per change (POD_STATE events, source k8s, each with its own state and pod status; before, only the last pod in the row's snapshot); the finished instances page lists the instance once its pod is gone. Screenshots at 1280 and 390 px; no console error.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "kube"))
sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from simtest import need_root_or_skip  # noqa: E402
need_root_or_skip(t)
from kubestack import start, submit, wait_done, wait_for  # noqa: E402

sim, s = start(hub={"auth.pwhash_fast": "1", "hub.runners": "1", "kube.live_log_seconds": "1"})
anon = s.anon()
rid = submit(s, anon, "eos3b5e", ["CCO", "c1ccccc1"])
st = wait_done(s, rid, 90)
t.is_(st[0], "COMPLETED", "a request completes on a pod (%s)" % (st,))
iid, name = s.sql("SELECT id, name FROM model_instance WHERE model_id = 'eos3b5e' ORDER BY id")[0]
states = wait_for(lambda: [p for (p,) in s.sql(
    "SELECT detail->>'phase' FROM instance_event WHERE instance_id = $1 AND kind = 'POD_STATE' ORDER BY id",
    iid)] or None, 10) or []
t.ok(len(states) >= 2 and states[-1] == "Running", "one POD_STATE event per pod change (%s)" % states)
dumps = s.sql("SELECT detail->'pod_status'->>'phase', detail->>'pod' FROM instance_event"
              " WHERE instance_id = $1 AND kind = 'POD_STATE' ORDER BY id", iid)
t.ok(dumps and all(d[0] == p and d[1] == name for d, p in zip(dumps, states)),
     "  each with the pod's own status at that moment (%s)" % (dumps,))

b = Browser(s.url, t, name="512")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-submit")
b.wait_for("#admin-nav")

# ---- active instances: the pod status
b.route("#/admin/instances")
card = b.wait_for(".instance-card[data-id='%s']" % iid)
b.wait_text(".instance-card[data-id='%s']" % iid, "Pod status")
t.like(card.text, r"Pod status\s+Running, ready", "active card: Pod status Running, ready (from snapshot.pod_state)")
t.like(card.text, r"Name\s+%s" % name, "  the pod's name")
b.shots("kube-active-instances")

# ---- the instance page: pod status and one dump per change in the history
b.route("#/admin/instances/%s" % iid)
b.wait_text("#instance-detail", "Pod status")
t.like(b.find("#instance-detail").text, r"Pod status\s+Running, ready", "instance page: Pod status Running, ready")
b.wait_for("#instance-events tr")
rows = [tr for tr in b.finds("#instance-events tbody tr") if "POD_STATE" in tr.text]
t.is_(len(rows), len(states), "history: one POD_STATE row per pod change (%d)" % len(rows))
t.ok(rows and "Running, ready" in rows[-1].text, "  the last says Running, ready")
t.ok(rows and "Pending" in rows[0].text, "  the first says Pending (%s)" % (rows[0].text if rows else None))
dets = b.finds("#instance-events .pod-state details")
t.is_(len(dets), len(states), "  each row has its own pod status dump")
if dets:
    dets[0].find_element("css selector", "summary").click()
    t.like(dets[0].text, r'"phase": "Pending"', "  the first dump is the pod as it was then (Pending)")
t.ok(any(k in b.find("#instance-events").text for k in ("Scheduled", "Started")), "  k8s events listed too")
b.shots("kube-instance")

# ---- stopped: the finished page lists it
r = s.api("POST", "/api/instances/%s/stop" % iid, token=s.admin_token, json={})
# (under load the page checks above can outlast the model's idle time: then
# the instance has already ended by itself, 409 instance_terminated)
t.ok(r.status in (200, 202) or (r.status == 409 and "instance_terminated" in r.text),
     "stop the instance, or it already ended (%s %s)" % (r.status, r.text[:80]))
t.ok(wait_for(lambda: s.sql("SELECT state FROM model_instance WHERE id = $1", iid)[0][0] == "TERMINATED", 30),
     "  it ends")
b.route("#/admin/instances/finished")
b.wait_for("#view a[href='#/admin/instances/%s']" % iid)
t.pass_("finished instances list the pod's instance")
b.shots("kube-finished-instances")
t.is_(b.console_errors(), [], "no console errors")
b.quit()
s.stop()
t.done()
