#!/usr/bin/python3
# 181-stats-rollup.t — GET /api/stats against an exact computation over the requests themselves: counts exact and percentiles the bucket bound docs/api.md promises, for several ranges and models, while requests arrive stored finished and finished later, cancelled queued or running, on days before days already folded, finishing a day after they started, pending and folded (two folds at once), after the janitor's retention deleted the old requests, and after sql/021 rebuilt its tables from request_stats_day.
import math
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                          # noqa: E402
from stack import Stack                      # noqa: E402
from flows import wait_for                   # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1", "hub.retention_days": "7"})
s.add_demo_models()
adm = s.admin_token
u = s.user("rollup_user")
uid = s.sql("SELECT id FROM app_user WHERE username = 'rollup_user'")[0][0]
MODELS = ["descriptors", "eos3b5e", "load"]
NOW = time.time()
rnd = random.Random(181)
reqs = []          # every request ever finished: the exact side (outlives retention)


def day(back):
    return time.strftime("%Y-%m-%d", time.gmtime(NOW - back * 86400))


def log_uniform(lo, hi):
    return int(math.exp(rnd.uniform(math.log(lo), math.log(hi))))


def make(back, started=True):
    """A finished request on the day `back` days ago (a random time of
    it, not later than now), durations in microseconds."""
    fin = NOW - back * 86400
    fin = min(fin - fin % 86400 + rnd.uniform(60, 86340), NOW - 1)
    status = rnd.choice(["COMPLETED"] * 6 + ["FAILED"] * 2 + ["CANCELLED"])
    reason = {"FAILED": rnd.choice(["MODEL_ERROR", "TIMEOUT"]), "CANCELLED": "CANCELLED"}.get(status)
    n = log_uniform(1, 30000)
    started = started and not (status == "CANCELLED" and rnd.random() < 0.5)
    return {"model": rnd.choice(MODELS), "fin": fin, "day": time.strftime("%Y-%m-%d", time.gmtime(fin)),
            "status": status, "reason": reason, "n": n, "cached": rnd.randint(0, n),
            "wait_us": log_uniform(1000, 10 ** 9) if started else None,
            "run_us": log_uniform(500, 10 ** 9) if started else None}


def store(rows, via_update):
    """Through the triggers: stored finished (INSERT) or QUEUED and then
    RUNNING (when it started) and then finished (UPDATE)."""
    for r in rows:
        fin = "to_timestamp(%.6f)" % r["fin"]
        run = r["run_us"] or 0
        created = "%s - make_interval(secs => %.6f)" % (fin, (run + (r["wait_us"] or 10 ** 6)) / 1e6)
        started = "NULL" if r["wait_us"] is None else "%s - make_interval(secs => %.6f)" % (fin, run / 1e6)
        if not via_update:
            s.sql("INSERT INTO work_request (model_id, user_id, status, failure_reason, input_count,"
                  " cached_count, created_at, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, "
                  + created + ", " + started + ", " + fin + ")",
                  r["model"], uid, r["status"], r["reason"], r["n"], r["cached"])
            continue
        rid = s.sql("INSERT INTO work_request (model_id, user_id, status, input_count, cached_count,"
                    " created_at) VALUES ($1, $2, 'QUEUED', $3, $4, " + created + ") RETURNING id",
                    r["model"], uid, r["n"], r["cached"])[0][0]
        if started != "NULL":
            s.sql("UPDATE work_request SET status = 'RUNNING', started_at = " + started + " WHERE id = $1", rid)
        s.sql("UPDATE work_request SET status = $1, failure_reason = $2, finished_at = " + fin +
              " WHERE id = $3", r["status"], r["reason"], rid)
    reqs.extend(rows)


# ---- the exact side
def bucket(ms):
    return 0 if ms < 10 else min(95, 1 + math.floor(4 * math.log(ms / 10) / math.log(2)))


def counts(rows):
    c = {k: sum(1 for r in rows if r["status"] == k.upper()) for k in ("completed", "failed", "cancelled")}
    c.update(requests=len(rows), inputs=sum(r["n"] for r in rows), cached_inputs=sum(r["cached"] for r in rows))
    return c


SIZES = [(1, 1), (2, 10), (11, 100), (101, 1000), (1001, 10000), (10001, 10 ** 9)]
KEYS = ("completed", "failed", "cancelled", "requests", "inputs", "cached_inputs")


def pick(o):
    return {k: o.get(k) for k in KEYS}


def check(frm, to, model, what):
    """The answer for [frm, to] (model or all) against the requests: all
    counts exact; every percentile the upper bound of the bucket of the
    nearest-rank value, and within [true, true * 2^(1/4)] (10 ms below 10 ms)."""
    q = "/api/stats?from=%s&to=%s%s" % (frm, to, "&model_id=" + model if model else "")
    st = s.api("GET", q, token=adm).json or {}
    sel = [r for r in reqs if frm <= r["day"] <= to and (not model or r["model"] == model)]
    name = "%s [%s, %s] %s" % (what, frm, to, model or "all models")
    bad = []
    groups = sorted({(r["day"], r["model"]) for r in sel})
    want = [dict(counts([r for r in sel if (r["day"], r["model"]) == g]), day=g[0], model_id=g[1]) for g in groups]
    if [dict(pick(o), day=o["day"], model_id=o["model_id"]) for o in st.get("by_model_day", [])] != want:
        bad.append("by_model_day")
    days = sorted({r["day"] for r in sel})
    if [dict(pick(o), day=o["day"]) for o in st.get("by_day", [])] != \
            [dict(counts([r for r in sel if r["day"] == d]), day=d) for d in days]:
        bad.append("by_day")
    if pick(st.get("totals", {})) != counts(sel):
        bad.append("totals")
    rate = st.get("totals", {}).get("cache_hit_rate")
    if sel and abs((rate or 0) - counts(sel)["cached_inputs"] / counts(sel)["inputs"]) > 0.00006:
        bad.append("cache_hit_rate")
    reasons = {}
    for r in sel:
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    if [(f["reason"], f["requests"]) for f in st.get("failure_reasons", [])] != \
            sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        bad.append("failure_reasons")
    for i, (lo, hi) in enumerate(SIZES):
        part = [r for r in sel if lo <= r["n"] <= hi]
        got = (st.get("by_size") or [{}] * 6)[i]
        if pick(got) != counts(part):
            bad.append("by_size[%d]" % i)
        bad += pct_errors(got, part, "by_size[%d]." % i)
    bad += pct_errors(st, sel, "")
    t.ok(not bad, name + (": wrong " + ", ".join(bad[:6]) if bad else ": exact"))
    return st


def pct_errors(o, rows, where):
    bad = []
    for key, field in (("queue_wait_ms", "wait_us"), ("run_ms", "run_us")):
        vals = sorted(r[field] / 1000.0 for r in rows if r[field] is not None)
        got = o.get(key) or {}
        if got.get("samples") != len(vals):
            bad.append(where + key + ".samples")
            continue
        for p in (50, 90, 95, 99):
            v = got.get("p%d" % p)
            if not vals:
                if v is not None:
                    bad.append("%s%s.p%d" % (where, key, p))
                continue
            true = vals[(len(vals) * p + 99) // 100 - 1]
            exact = math.ceil(10 * 2 ** (bucket(true) / 4))
            bound = v == 10 if true < 10 else true <= v <= true * 2 ** 0.25 + 1
            if v != exact or not bound:
                bad.append("%s%s.p%d=%s (true %.3f)" % (where, key, p, v, true))
    return bad


RANGES = [(day(29), day(0)), (day(15), day(3)), (day(8), day(8)), (day(40), day(12))]


def check_all(what):
    for frm, to in RANGES:
        for m in ("", MODELS[1]):
            check(frm, to, m, what)


def pending():
    return int(s.sql("SELECT count(*) FROM request_stats_pending")[0][0])


def fold():
    r = s.ctl("stats-fold", timeout=300)
    return r.returncode == 0 and pending() == 0


# ---- older days stored finished, then folded
store([make(rnd.randint(11, 20)) for _ in range(150)], via_update=False)
check_all("pending only")
t.ok(fold(), "stats-fold folds everything")
check_all("folded")

# ---- recent days through QUEUED/RUNNING, cancelled queued or running
store([make(rnd.randint(1, 5)) for _ in range(120)], via_update=True)
t.ok(any(r["status"] == "CANCELLED" and r["wait_us"] is None for r in reqs) and
     any(r["status"] == "CANCELLED" and r["wait_us"] is not None for r in reqs),
     "cancellations both before and after the start")
t.ok(fold(), "folded again")
check_all("two folds")

# ---- late: days between and before days already folded (the running
# totals of every later day move), and requests that finish today after
# starting a day ago
late = [make(rnd.choice([6, 9, 13, 17, 25])) for _ in range(80)]
for _ in range(20):
    r = make(0, started=False)
    r.update(status="COMPLETED", reason=None, fin=NOW - 5, day=day(0), wait_us=rnd.randint(1, 3600) * 10 ** 6,
             run_us=86400 * 10 ** 6 + rnd.randint(0, 10 ** 9))
    late.append(r)
store(late, via_update=True)
check_all("late rows pending")
t.ok(fold(), "late rows folded")
check_all("late rows folded")

# ---- two folds at once: one waits for the other (advisory lock), nothing
# is counted twice or lost
store([make(rnd.randint(0, 20)) for _ in range(200)], via_update=False)
codes = []
th = [threading.Thread(target=lambda: codes.append(s.ctl("stats-fold", timeout=300).returncode)) for _ in range(2)]
for x in th:
    x.start()
for x in th:
    x.join()
t.is_((codes, pending()), ([0, 0], 0), "two stats-folds at once both succeed")
check_all("after two folds at once")

# ---- some pending, some folded: the answer adds both
store([make(rnd.randint(0, 10)) for _ in range(40)], via_update=True)
t.ok(pending() == 40, "40 rows pending")
check_all("folded and pending")

# ---- the janitor: retention deletes requests created over 7 days ago,
# folds the pending rows; counts stay
old = int(s.sql("SELECT count(*) FROM work_request WHERE created_at < now() - interval '7 days'")[0][0])
t.ok(old > 100, "%d requests older than the retention" % old)
s.start_hubd()
t.ok(wait_for(t, "retention and fold", lambda: pending() == 0 and int(s.sql(
    "SELECT count(*) FROM work_request WHERE created_at < now() - interval '7 days'")[0][0]) == 0, timeout=60),
    "the janitor deleted the old requests and folded the rest")
t.ok(int(s.sql("SELECT count(*) FROM work_request")[0][0]) < len(reqs), "fewer requests stored than counted")
check_all("after retention")

# ---- sql/021 rebuilds its tables from request_stats_day (guarded
# backfill), and re-applied on a database that has them adds nothing
s.stop_hubd()
before = s.api("GET", "/api/stats?from=%s" % day(40), token=adm).json
s.sql("DELETE FROM schema_migration WHERE version = 21")
t.is_(s.ctl("migrate").returncode, 0, "021 applies again")
t.is_(s.api("GET", "/api/stats?from=%s" % day(40), token=adm).json, before, "and adds nothing")
s.sql("TRUNCATE request_stats_model_day, request_stats_reason_day, request_stats_cum")
s.sql("DELETE FROM schema_migration WHERE version = 21")
t.is_(s.ctl("migrate").returncode, 0, "021 on emptied tables")
check_all("rebuilt from request_stats_day")
s.stop()
t.done()
