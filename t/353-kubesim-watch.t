#!/usr/bin/python3
# 353-kubesim-watch.t — kubesim watch semantics: resume from a resourceVersion, selectors, 410 Gone, restart with a new epoch.
"""Raw chunked watch streams (one JSON event per line) and the python client's
Watch: ADDED/MODIFIED/DELETED in order; resuming from any resourceVersion
replays exactly the later events; label selector transitions become
ADDED/DELETED; rv=0 starts with synthetic ADDED events; timeoutSeconds ends
the stream; a version that left the bounded history (--history 30) gets an
ERROR event with a 410 Expired Status and a relist gives a fresh version; a
too new version is refused; after a simulator restart (--restore, processes
kept) every old version is 410, objects and running pods survive (the model
process is adopted and still answers), and a new watch works."""

import json
import os
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in t/kube (distributed as a directory)
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir") or os.path.dirname(os.path.abspath(__file__)) + "/..", "t", "kube"))
from simtest import KubeSim, base_config, cs0, need_root_or_skip, pod_manifest  # noqa: E402
from tap import TAP  # noqa: E402

t = TAP()
need_root_or_skip(t)
cfg = base_config()
cfg["timing"]["bookmark_every"] = 0.5
sim = KubeSim(cfg, tls=False, keep_processes=True, extra_args=["--history", "30"]).start()
NS = "/api/v1/namespaces/modelhub/pods"


class Stream:
    """A raw watch: GET path, then read JSON lines."""

    def __init__(self, path, timeout=10):
        self.c = sim.conn(timeout)
        self.c.request("GET", path, headers={"Authorization": "Bearer " + sim.token})
        self.r = self.c.getresponse()
        self.status = self.r.status
        self.ctype = self.r.getheader("Content-Type")
        self.chunked = self.r.getheader("Transfer-Encoding")

    def next(self):
        line = self.r.readline()
        return json.loads(line) if line.strip() else None

    def take(self, n):
        return [self.next() for _ in range(n)]

    def close(self):
        self.c.close()


def rv_of(r):
    return int(r.json()["metadata"]["resourceVersion"])


def lst(path=NS):
    return sim.api("GET", path).json()


rv0 = int(lst()["metadata"]["resourceVersion"])
w = Stream(NS + "?watch=1&resourceVersion=%d" % rv0)
t.is_(w.status, 200, "watch answers 200")
t.is_((w.ctype, w.chunked), ("application/json", "chunked"), "chunked application/json stream")
r1 = sim.api("POST", NS, pod_manifest("w1", labels={"team": "a"}, node_selector={"no-such": "node"}))
rv1 = rv_of(r1)
ev = w.next()
t.is_((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "w1"), "ADDED for the created pod")
t.is_(int(ev["object"]["metadata"]["resourceVersion"]), rv1, "event object carries the create's resourceVersion")
ev2 = w.next()
t.is_(ev2["type"], "MODIFIED", "then MODIFIED (scheduler: Unschedulable)")
t.ok(int(ev2["object"]["metadata"]["resourceVersion"]) > rv1, "resourceVersions increase")
w.close()

# resume from rv1: exactly the events after it
time.sleep(0.5)
after = lst()
rvs = []
w = Stream(NS + "?watch=1&resourceVersion=%d&timeoutSeconds=1" % rv1)
while True:
    e = w.next()
    if e is None:
        break
    rvs.append(int(e["object"]["metadata"]["resourceVersion"]))
t.ok(rvs and rvs[0] > rv1 and rvs == sorted(rvs), "resume from rv1 replays the later events in order")
t.is_(rvs[-1] if rvs else None, int(after["items"][0]["metadata"]["resourceVersion"]),
      "up to the object's current version")
t.pass_("timeoutSeconds=1 ended the stream")

# rv=0: synthetic ADDED for what exists
w = Stream(NS + "?watch=1&resourceVersion=0&timeoutSeconds=1")
e = w.next()
t.is_((e["type"], e["object"]["metadata"]["name"]), ("ADDED", "w1"), "rv=0 starts with ADDED for existing pods")
w.close()

# label selector transitions
rvs = rv_of(sim.api("GET", NS))
w = Stream(NS + "?watch=1&labelSelector=team%%3Db&resourceVersion=%d" % rvs)
sim.api("PATCH", NS + "/w1", {"metadata": {"labels": {"team": "b"}}}, ctype="application/strategic-merge-patch+json")
e = w.next()
t.is_((e["type"], e["object"]["metadata"]["labels"]["team"]), ("ADDED", "b"), "pod starts matching the selector: ADDED")
sim.api("PATCH", NS + "/w1", [{"op": "replace", "path": "/metadata/labels/team", "value": "c"}],
        ctype="application/json-patch+json")
e = w.next()
t.is_((e["type"], e["object"]["metadata"]["labels"]["team"]), ("DELETED", "c"), "stops matching: DELETED")
w.close()
r = sim.api("PATCH", NS + "/w1", {"spec": {"containers": []}}, ctype="application/merge-patch+json")
t.is_(r.status, 422, "changing a pod's containers by patch: 422")
r = sim.api("PATCH", NS + "/w1", {"metadata": {"labels": {"x": "y"}}}, ctype="application/apply-patch+yaml")
t.is_(r.status, 415, "unsupported patch type: 415")

# fieldSelector metadata.name, and DELETED
rvs = rv_of(sim.api("GET", NS))
sim.api("POST", NS, pod_manifest("w2", image="modelhub/nosuchmodel:1"))
w = Stream(NS + "?watch=1&fieldSelector=metadata.name%%3Dw1&resourceVersion=%d" % rvs)
sim.api("DELETE", NS + "/w1?gracePeriodSeconds=0")
evs = []
while True:
    e = w.next()
    evs.append(e["type"])
    if e["type"] == "DELETED":
        break
t.ok("ADDED" not in evs, "fieldSelector metadata.name=w1 hides w2")
t.is_(evs[-1], "DELETED", "DELETED when the pod goes")
w.close()

# events watch by involvedObject.name
rve = rv_of(sim.api("GET", "/api/v1/namespaces/modelhub/events"))
w = Stream("/api/v1/namespaces/modelhub/events?watch=1&fieldSelector=involvedObject.name%%3Dw3&resourceVersion=%d" % rve)
sim.api("POST", NS, pod_manifest("w3", image="modelhub/nosuchmodel:1"))
e = w.next()
t.is_((e["type"], e["object"]["involvedObject"]["name"], e["object"]["reason"]), ("ADDED", "w3", "Scheduled"),
      "events watch by involvedObject.name")
w.close()

# nodes: watch sees a cordon
rvn = rv_of(sim.api("GET", "/api/v1/nodes"))
w = Stream("/api/v1/nodes?watch=1&resourceVersion=%d" % rvn)
sim.api("PATCH", "/api/v1/nodes/node-a", {"spec": {"unschedulable": True}}, ctype="application/strategic-merge-patch+json")
e = w.next()
t.is_((e["type"], e["object"]["metadata"]["name"], e["object"]["spec"].get("unschedulable")), ("MODIFIED", "node-a", True),
      "node watch: MODIFIED with spec.unschedulable")
w.close()
sim.api("PATCH", "/api/v1/nodes/node-a", {"spec": {"unschedulable": None}}, ctype="application/merge-patch+json")
t.ok(sim.wait_for(lambda: not sim.api("GET", "/api/v1/nodes/node-a").json()["spec"].get("taints"), 3),
     "uncordon by merge patch (null) removes the unschedulable taint")

# bookmarks when asked for
cur = rv_of(sim.api("GET", NS))
w = Stream(NS + "?watch=1&allowWatchBookmarks=true&fieldSelector=metadata.name%%3Dnone&resourceVersion=%d" % cur)
e = w.next()
t.is_((e["type"], e["object"]["kind"]), ("BOOKMARK", "Pod"), "allowWatchBookmarks: an idle watch gets BOOKMARK events")
t.ok(int(e["object"]["metadata"]["resourceVersion"]) >= cur, "the bookmark carries a current resourceVersion")
w.close()

# too new and malformed versions
w = Stream(NS + "?watch=1&resourceVersion=%d" % (rv_of(sim.api("GET", NS)) + 1000))
e = w.next()
t.is_((e["type"], e["object"]["code"]), ("ERROR", 504), "a future resourceVersion: ERROR 504 Too large")
w.close()
r = sim.api("GET", NS + "?watch=1&resourceVersion=abc")
t.is_(r.status, 400, "a malformed resourceVersion: 400")

# the bounded history: churn > 30 events, then the first version is gone
for i in range(12):
    sim.api("PATCH", NS + "/w2", {"metadata": {"annotations": {"n": str(i)}}}, ctype="application/merge-patch+json")
    sim.api("PATCH", NS + "/w3", {"metadata": {"annotations": {"n": str(i)}}}, ctype="application/merge-patch+json")
w = Stream(NS + "?watch=1&resourceVersion=%d" % rv0)
e = w.next()
t.is_(e["type"], "ERROR", "a version older than the history: ERROR event")
t.is_((e["object"]["kind"], e["object"]["code"], e["object"]["reason"]), ("Status", 410, "Expired"),
      "410 Expired Status")
t.like(e["object"]["message"], r"too old resource version", "message 'too old resource version'")
t.is_(w.next(), None, "and the stream ends")
w.close()
fresh = rv_of(sim.api("GET", NS))
t.ok(fresh > rv1, "a relist returns a fresh resourceVersion")
w = Stream(NS + "?watch=1&resourceVersion=%d&timeoutSeconds=2" % fresh)
sim.api("PATCH", NS + "/w2", {"metadata": {"annotations": {"n": "x"}}}, ctype="application/merge-patch+json")
e = w.next()
t.is_(e["type"], "MODIFIED", "watching from the fresh version works")
w.close()

# fault injection: drop every open watch (a network cut), then compact the history
import http.client  # noqa: E402
w = Stream(NS + "?watch=1&resourceVersion=%d" % fresh)
# the simulator's thread registers the watch a moment after it answered the
# headers (seen under make -j4 check): drop again until it was there
for _ in range(50):
    r = sim.api("POST", "/kubesim/drop-watches")
    if r.status != 200 or r.json()["dropped"] >= 1:
        break
    time.sleep(0.1)
t.ok(r.status == 200 and r.json()["dropped"] >= 1, "POST /kubesim/drop-watches cuts open watches")
try:
    for _ in range(200):  # w2/w3 keep changing (image pull back-off): read until the cut
        if w.next() is None:
            break
    t.pass_("the cut watch ends")
except (http.client.IncompleteRead, ConnectionError, OSError, ValueError):
    t.pass_("the cut watch ends")
w.close()
t.is_(sim.api("POST", "/kubesim/drop-watches", token="nope").status, 401, "admin endpoints need a token")
cur = rv_of(sim.api("GET", NS))
tok = sim.api("GET", NS + "?limit=1").json()["metadata"].get("continue")
w = Stream(NS + "?watch=1&resourceVersion=%d" % cur)
sim.api("PATCH", NS + "/w2", {"metadata": {"annotations": {"n": "y"}}}, ctype="application/merge-patch+json")
# caught up: the watch has delivered the PATCH (other pods keep changing
# meanwhile; compacting before that would cut a watch that is behind)
for _ in range(200):
    e = w.next()
    if not e or e["type"] == "ERROR" or (
            e["object"]["metadata"]["name"] == "w2"
            and (e["object"]["metadata"].get("annotations") or {}).get("n") == "y"):
        break
r = sim.api("POST", "/kubesim/compact")
t.is_(r.status, 200, "POST /kubesim/compact")
sim.api("PATCH", NS + "/w2", {"metadata": {"annotations": {"n": "z"}}}, ctype="application/merge-patch+json")
e = w.next()
t.is_(e and e["type"], "MODIFIED", "a running, caught-up watch continues after the compaction (as with etcd)")
w.close()
w = Stream(NS + "?watch=1&resourceVersion=%d" % cur)
t.is_(w.next()["object"].get("code"), 410, "a new watch from a version before the compaction: 410")
w.close()
import urllib.parse  # noqa: E402
r = sim.api("GET", NS + "?limit=1&continue=" + urllib.parse.quote(tok or ""))
t.ok(tok and r.status == 410 and "continue parameter is too old" in r.text, "a continue token from before the compaction: 410")
fresh = rv_of(sim.api("GET", NS))
items = lst()["items"]
t.ok(items and "kind" not in items[0] and items[0]["metadata"]["name"], "core list items carry no kind (as the API server)")

# the python client's Watch raises 410 for an expired version
try:
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException
    c = client.Configuration()
    c.host = sim.url
    c.api_key = {"authorization": "Bearer " + sim.token}
    core = client.CoreV1Api(client.ApiClient(c))
    try:
        for ev in watch.Watch().stream(core.list_namespaced_pod, "modelhub", resource_version=str(rv0), timeout_seconds=3):
            pass
        t.fail("python Watch on an expired version raises ApiException 410")
    except ApiException as ex:
        t.is_(ex.status, 410, "python Watch on an expired version raises ApiException 410")
except ImportError:
    t.skip("python3-kubernetes not installed")

# --- restart: a new epoch --------------------------------------------------------
sim.api("POST", NS, pod_manifest("live"))
live = sim.wait_for(lambda: cs0(sim.pod("live")).get("ready") and sim.pod("live"), 15)
t.ok(live, "a running model pod before the restart")
before = rv_of(sim.api("GET", NS))
sim.stop()
time.sleep(0.3)
ip = live["status"]["podIP"]
with urllib.request.urlopen("http://%s:80/healthz" % ip, timeout=3) as r:
    t.is_(r.status, 200, "the pod process keeps running while the API server is down")
sim.restore = True
sim.start()
w = Stream(NS + "?watch=1&resourceVersion=%d" % before)
e = w.next()
t.is_((e["type"], e["object"]["code"]), ("ERROR", 410), "after a restart an old resourceVersion is 410 Gone")
w.close()
after = lst()
t.ok(int(after["metadata"]["resourceVersion"]) > before, "the list after the restart has a newer resourceVersion")
p = sim.pod("live")
t.is_((p or {}).get("metadata", {}).get("uid"), live["metadata"]["uid"], "objects restored (same uid)")
t.is_(cs0(p).get("ready"), True, "the pod is still Ready")
t.like(sim.log_text(), r"container adopted pod=live", "its process was adopted, not restarted")
with urllib.request.urlopen("http://%s:80/healthz" % ip, timeout=3) as r:
    t.is_(r.status, 200, "and still answers on its pod IP")
fresh = int(after["metadata"]["resourceVersion"])
w = Stream(NS + "?watch=1&resourceVersion=%d" % fresh)
sim.api("DELETE", NS + "/live?gracePeriodSeconds=1")
types = []
while True:
    e = w.next()
    types.append(e["type"])
    if e["type"] == "DELETED":
        break
t.is_(types[-1], "DELETED", "a watch from the new epoch sees the delete")
try:
    urllib.request.urlopen("http://%s:80/healthz" % ip, timeout=2)
    t.fail("deleting the adopted pod stops its process")
except OSError:
    t.pass_("deleting the adopted pod stops its process")
w.close()
sim.stop()

# --persist without --keep-processes: a node reboot — processes die with the simulator and restart
sim2 = KubeSim(base_config(), tls=False, extra_args=["--persist"]).start()
sim2.api("POST", NS, pod_manifest("reboot"))
p = sim2.wait_for(lambda: cs0(sim2.pod("reboot")).get("ready") and sim2.pod("reboot"), 15)
ip = p["status"]["podIP"]
sim2.stop()
try:
    urllib.request.urlopen("http://%s:80/healthz" % ip, timeout=2)
    t.fail("without --keep-processes the pod process stops with the simulator")
except OSError:
    t.pass_("without --keep-processes the pod process stops with the simulator")
sim2.restore = True
sim2.start()
p1 = sim2.pod("reboot")
t.is_(cs0(p1).get("lastState", {}).get("terminated", {}).get("reason"), "ContainerStatusUnknown",
      "after the restart the lost container shows lastState ContainerStatusUnknown")
p2 = sim2.wait_for(lambda: cs0(sim2.pod("reboot")).get("ready") and sim2.pod("reboot"), 15)
t.ok(p2 and p2["metadata"]["uid"] == p["metadata"]["uid"], "restored pod is Ready again (container restarted)")
t.is_(cs0(p2).get("restartCount"), 1, "restartCount 1")
with urllib.request.urlopen("http://%s:80/healthz" % ip, timeout=3) as r:
    t.is_(r.status, 200, "on the same pod IP")
sim2.stop()

# a killed simulator (SIGKILL) leaves no model process behind
sim3 = KubeSim(base_config(), tls=False).start()
sim3.api("POST", NS, pod_manifest("orphan"))
p = sim3.wait_for(lambda: cs0(sim3.pod("orphan")).get("ready") and sim3.pod("orphan"), 15)
sim3.stop(sig=9)
time.sleep(0.5)
try:
    urllib.request.urlopen("http://%s:80/healthz" % p["status"]["podIP"], timeout=2)
    t.fail("SIGKILL of the simulator also ends its pod processes")
except OSError:
    t.pass_("SIGKILL of the simulator also ends its pod processes")
t.done()
