#!/usr/bin/python3
# 402-instances-api.t — the admin instances API over nginx + FastCGI with a
# real hub: access rules (401/403), filters and their validation, cursor
# pagination, one instance, samples, events, log download, the stop action
# (and 404/409), GET /api/bands (public), GET /api/nodes, and GET /metrics
# (loopback or admin token only).
import datetime
import functools
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                          # noqa: E402
from stack import Stack, fcgi_request        # noqa: E402
import flows                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"hub.runners": "2", "metrics.interval_ms": "500"})
s.add_demo_models()
# descriptors: stop at once when idle, so every request leaves a finished instance
s.sql("UPDATE model SET idle_seconds = 0 WHERE id = 'descriptors'")
s.start_hubd()
adm = s.admin_token
anon = s.anon()
bob = s.user("bob_402")


def submit(model, inputs):
    r = s.api("POST", "/api/requests", token=anon, json={"model_id": model, "inputs": inputs})
    return (r.json or {}).get("id")


wait_for = functools.partial(flows.wait_for, t)


def done(rid):
    return s.sql("SELECT status FROM work_request WHERE id = $1", rid)[0][0] in (
        "COMPLETED", "FAILED")


def get(path, token=None):
    return s.api("GET", path, token=token if token is not None else adm)


# three finished descriptors instances, one after the other, and one warm eos3b5e
for _ in range(3):
    rid = submit("descriptors", ["CCO", "c1ccccc1"])
    wait_for("descriptors request", lambda: done(rid))
    wait_for("instance ended", lambda: s.sql(
        "SELECT count(*) FROM model_instance WHERE model_id = 'descriptors' AND state <> 'TERMINATED'")
        [0][0] == "0")
rid = submit("eos3b5e", ["CCO"])
wait_for("eos3b5e request", lambda: done(rid))
wait_for("3 persisted", lambda: s.sql("SELECT count(*) FROM instance_metrics")[0][0] == "3", timeout=30)

# ---- access
t.status(s.api("GET", "/api/instances"), 401, "no token -> 401")
t.status(get("/api/instances", bob), 403, "a user -> 403")
t.status(get("/api/instances", anon), 403, "an anonymous session -> 403")
t.status(get("/api/nodes", bob), 403, "nodes: user -> 403")
t.status(s.api("POST", "/api/instances/1/stop", token=bob), 403, "stop: user -> 403")

# ---- lists and filters
r = get("/api/instances")
t.status(r, 200, "active list")
items = (r.json or {}).get("items") or []
t.is_([i["model_id"] for i in items], ["eos3b5e"], "default state=active: the warm instance only")
warm = items[0] if items else {}
for k in ("id", "state", "node", "pid", "started_at", "ready_at", "terminated_at", "resources",
          "snapshot", "metrics", "request_ids", "termination_reason", "stop_requested"):
    t.ok(k in warm, "active item has %s" % k)
t.is_(warm.get("terminated_at", "x"), None, "null fields are null")
t.ok("next_cursor" in (r.json or {}) and r.json["next_cursor"] is None, "next_cursor null on the last page")
r = get("/api/instances?state=finished")
fin = (r.json or {}).get("items") or []
t.is_([i["model_id"] for i in fin], ["descriptors"] * 3, "finished: the three descriptors instances")
t.ok(all(i["metrics"]["source"] == "persisted" for i in fin), "finished items carry persisted metrics")
t.ok(all(i["input_count"] == 2 for i in fin), "finished items carry input_count")
ids = [i["id"] for i in fin]
t.ok(ids == sorted(ids, reverse=True), "newest first")
t.is_(len((get("/api/instances?state=all").json or {}).get("items") or []), 4, "state=all")
t.is_(len((get("/api/instances?state=finished&model=eos3b5e").json or {}).get("items") or []), 0,
      "model filter")
t.is_(len((get("/api/instances?state=all&model=descriptors").json or {}).get("items") or []), 3,
      "model filter (all)")
t.is_([i["model_id"] for i in (get("/api/instances?state=active&status=IDLE").json or {}).get("items", [])],
      ["eos3b5e"], "status filter on the state")
t.is_(len((get("/api/instances?status=BUSY").json or {}).get("items", [])), 0, "status=BUSY: none")
t.is_(len((get("/api/instances?state=all&status=IDLE&model=eos3b5e").json or {}).get("items", [])), 1,
      "filters combine")
t.is_(len((get("/api/instances?state=finished&status=IDLE").json or {}).get("items", [])), 3,
      "status filter on the termination reason")
today = datetime.datetime.utcnow().date()
tomorrow = today + datetime.timedelta(days=1)
t.is_(len((get("/api/instances?state=all&started_from=%s" % tomorrow).json or {}).get("items", [])), 0,
      "started_from tomorrow: none")
t.is_(len((get("/api/instances?state=all&started_to=%s" % today).json or {}).get("items", [])), 4,
      "started_to today (a date) includes today")
t.is_(len((get("/api/instances?state=all&started_from=%sT00:00:00Z" % today).json or {}).get("items", [])), 4,
      "started_from as an ISO time")
for q, field in (("state=bogus", "state"), ("status=RUNNING", "status"), ("limit=0", "limit"),
                 ("limit=501", "limit"), ("limit=x", "limit"), ("cursor=abc", "cursor"),
                 ("cursor=-5", "cursor"), ("started_from=yesterday", "started_from"),
                 ("started_to=2026-11-24;DROP", "started_to")):
    r = get("/api/instances?" + q)
    t.ok(r.status == 400 and field in (((r.json or {}).get("error") or {}).get("fields") or {}),
         "%s -> 400 naming %s (%s)" % (q, field, r.status))
r = get("/api/instances?started_from=2026-13-45")
t.status(r, 400, "impossible date -> 400, not 500")

# ---- pagination
seen, cursor, pages = [], None, 0
while pages < 10:
    r = get("/api/instances?state=finished&limit=1" + ("&cursor=" + cursor if cursor else ""))
    pages += 1
    page = (r.json or {}).get("items") or []
    seen += [i["id"] for i in page]
    cursor = (r.json or {}).get("next_cursor")
    if not cursor:
        break
t.is_(seen, ids, "limit=1 pages walk every finished instance once, in order")
t.is_(pages, 3, "three pages, the last with next_cursor null")

# ---- one instance, samples, events, logs
t.status(get("/api/instances/999999"), 404, "unknown id -> 404")
t.status(get("/api/instances/abc"), 404, "non-numeric id -> 404")
r = get("/api/instances/%d" % ids[0])
t.status(r, 200, "one finished instance")
t.is_((r.json or {}).get("id"), ids[0], "  its id")
t.is_(((r.json or {}).get("snapshot") or {}).get("resources", {}).get("memory_limit_mib"), 512,
      "  final snapshot with resources")
r = get("/api/instances/%d/samples" % warm.get("id", 0))
t.ok(r.status == 200 and isinstance((r.json or {}).get("samples"), list), "samples of the active instance")
r = get("/api/instances/%d/samples?since=%d" % (warm.get("id", 0), 10 ** 13))
t.is_((r.json or {}).get("samples"), [], "since in the future: no samples")
t.status(get("/api/instances/%d/samples?since=abc" % warm.get("id", 0)), 400, "since=abc -> 400")
r = get("/api/instances/%d/samples" % ids[0])
t.is_((r.json or {}).get("samples"), [], "finished instance: no samples (not active)")
r = get("/api/instances/%d/events" % ids[0])
kinds = [e["kind"] for e in (r.json or {}).get("items", [])]
t.ok(kinds[:1] == ["REQUESTED"] and "TERMINATED" in kinds, "events: history from REQUESTED to TERMINATED")
t.ok(((r.json or {}).get("instance") or {}).get("id") == ids[0], "events come with the instance snapshot")
r = get("/api/instances/%d/logs" % ids[0])
t.status(r, 200, "logs of a finished instance")
t.like(r.headers.get("content-type") or "", r"^text/plain", "  text/plain")
t.like(r.headers.get("content-disposition") or "", r"attachment; filename=\"instance-%d\.log\"" % ids[0],
       "  as a download")
t.ok(len(r.body) > 0, "  not empty (%d bytes)" % len(r.body))
r = get("/api/instances/%d/logs" % warm.get("id", 0))
t.ok(r.status == 200 and len(r.body) > 0, "logs of the active instance (live file)")
t.status(get("/api/instances/999999/logs"), 404, "logs of unknown instance -> 404")
lg = wait_for("monitor copies the live log", lambda: s.sql(
    "SELECT length(text) FROM instance_log WHERE instance_id = $1 AND length(text) > 0",
    warm.get("id", 0)), timeout=15)
t.ok(lg, "the monitor copies an active instance's log into instance_log (for other replicas)")

# ---- stop
wid = warm.get("id", 0)
r = s.api("POST", "/api/instances/%d/stop" % wid, token=adm)
t.status(r, 202, "stop accepted")
t.is_((r.json or {}).get("stop_requested"), True, "  stop_requested")
r = s.api("POST", "/api/instances/%d/stop" % wid, token=adm)
t.ok(r.status in (202, 409), "stop again: idempotent (%s)" % r.status)
ev = s.sql("SELECT count(*), min(detail->>'by') FROM instance_event WHERE instance_id = $1"
           " AND kind = 'STOP_REQUESTED' AND detail->>'via' = 'api'", wid)[0]
t.is_(ev, ("1", "t_admin"), "one STOP_REQUESTED event from the API naming the admin")
end = wait_for("stopped", lambda: (lambda x: x if x[0] == "TERMINATED" else None)(s.sql(
    "SELECT state, termination_reason FROM model_instance WHERE id = $1", wid)[0]), timeout=30)
t.is_(end, ("TERMINATED", "STOPPED"), "the runner stopped it (STOPPED)")
r = s.api("POST", "/api/instances/%d/stop" % ids[0], token=adm)
t.status(r, 409, "stop a terminated instance -> 409")
t.status(s.api("POST", "/api/instances/999999/stop", token=adm), 404, "stop unknown -> 404")

# ---- bands, nodes, /metrics
r = s.api("GET", "/api/bands")
t.status(r, 200, "bands are public")
b = r.json or {}
t.is_([x["name"] for x in b.get("cpu", [])],
      ["very_under", "under", "recommended", "over", "very_over", "critical"], "cpu band names")
t.is_([x["to_percent"] for x in b.get("memory", [])], [40.0, 65.0, 80.0, 90.0, 93.0, None],
      "memory band edges, last open")
t.is_([x["colour"] for x in b.get("cpu", [])], ["orange", "yellow", "green", "yellow", "orange", "red"],
      "band colours")
t.is_(b.get("targets_percent"), {"cpu": 75.0, "memory": 72.5}, "targets")
r = get("/api/nodes")
nodes = (r.json or {}).get("items") or []
t.is_(len(nodes), 1, "one node (this machine)")
n = nodes[0] if nodes else {}
t.is_((n.get("cpu") or {}).get("capacity"), os.cpu_count() * 1000.0, "cpu capacity = cores x 1000 m")
t.ok((n.get("memory") or {}).get("usage") and (n.get("aggregates") or {}).get("sample_count", 0) > 0,
     "node usage sampled")
t.is_(n.get("source"), "segment", "from the segment")
r = s.api("GET", "/metrics")
t.status(r, 200, "/metrics from loopback (through nginx)")
t.like(r.headers.get("content-type") or "", r"^text/plain; version=0\.0\.4", "  exposition content type")
t.like(r.text, r'modelhub_requests\{status="COMPLETED"\} 4', "  requests by status")
t.like(r.text, r'modelhub_instances\{state="TERMINATED"\} 4', "  instances by state")
t.like(r.text, r"modelhub_scrape_cycles_total [1-9]", "  scrape cycles")
t.like(r.text, r'modelhub_child_restarts_total\{role="scraper"', "  child restarts")
m2 = re.search(r'^modelhub_http_requests_total\{code="2xx"\} (\d+)', r.text, re.M)
m4 = re.search(r'^modelhub_http_requests_total\{code="4xx"\} (\d+)', r.text, re.M)
t.ok(m2 and int(m2.group(1)) > 20 and m4 and int(m4.group(1)) > 15,
     "  FastCGI requests counted by class across workers (2xx %s, 4xx %s)"
     % (m2 and m2.group(1), m4 and m4.group(1)))
bk = [int(x) for x in re.findall(r'^modelhub_http_request_duration_seconds_bucket\{le="[^"]+"\} (\d+)', r.text, re.M)]
cnt = re.search(r"^modelhub_http_request_duration_seconds_count (\d+)", r.text, re.M)
t.ok(len(bk) == 13 and bk == sorted(bk) and cnt and bk[-1] == int(cnt.group(1)),
     "  latency histogram: 13 cumulative buckets, +Inf = count")
r = fcgi_request(s.fcgi_socket, "GET", "/metrics", remote_addr="10.1.2.3")
t.status(r, 403, "/metrics from elsewhere without a token -> 403")
r = fcgi_request(s.fcgi_socket, "GET", "/metrics", remote_addr="10.1.2.3",
                 headers={"Authorization": "Bearer " + bob})
t.status(r, 403, "/metrics from elsewhere with a user token -> 403")
r = fcgi_request(s.fcgi_socket, "GET", "/metrics", remote_addr="10.1.2.3",
                 headers={"Authorization": "Bearer " + adm})
t.status(r, 200, "/metrics from elsewhere with the admin token")
t.done()
