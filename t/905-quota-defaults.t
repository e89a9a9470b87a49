#!/usr/bin/python3
# 905-quota-defaults.t — the review's finding 3 replayed against the default configuration (issue 17): 50 submissions from one anonymous token at once are no longer all accepted (quota.anon.requests_in_flight 20: exactly 20, the rest 429 quota_exceeded with Retry-After), a user's quota is separate (50); the error names the quota.
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(config={"auth.pwhash_fast": "1", "fcgi.workers": "4"})
s.sql("INSERT INTO model (id) VALUES ('q905')")


def burst(tok, n):
    def one(i):
        r = s.api("POST", "/api/requests", token=tok, json={"model_id": "q905", "inputs": ["C%d" % i]})
        return r.status, ((r.json or {}).get("error") or {}), r.headers.get("retry-after")
    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(one, range(n)))


res = burst(s.anon(), 50)
codes = [st for st, _e, _ra in res]
t.is_((codes.count(201), codes.count(429)), (20, 30),
      "50 submissions from one anonymous token at once: 20 accepted, 30 refused (default quota)")
refused = [(e, ra) for st, e, ra in res if st == 429]
t.ok(refused and all(e.get("code") == "quota_exceeded" and (e.get("fields") or {}).get("quota") ==
                     "requests_in_flight" and ra for e, ra in refused),
     "each refusal: quota_exceeded, requests_in_flight, Retry-After")
res = burst(s.user("u905"), 55)
codes = [st for st, _e, _ra in res]
t.is_((codes.count(201), codes.count(429)), (50, 5), "a user's default quota is its own: 50 of 55")
t.is_(int(s.sql("SELECT count(*) FROM work_request")[0][0]), 70, "only accepted submissions stored")
s.stop()
t.done()
