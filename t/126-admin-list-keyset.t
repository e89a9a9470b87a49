#!/usr/bin/python3
# 126-admin-list-keyset.t — GET /api/admin/requests orders by (created_at, id)
# and pages with a keyset on that pair: rows whose ids are out of time order,
# rows sharing one created_at, a one-day filter, a cursor whose row was
# deleted between pages, and the indexes of sql/013 in the plans.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack        # noqa: E402

t = TAP()
s = Stack(hubd=False)
s.sql("INSERT INTO model (id) VALUES ('ka'), ('kb')")
admin = s.admin_token
uid = int(s.sql("SELECT id FROM app_user WHERE username = 't_admin'")[0][0])

# 30 rows: ids ascending but created_at scrambled (every third shares one
# instant, the rest spread over 3 days back), so id order is not time order.
s.sql("INSERT INTO work_request (model_id, user_id, status, input_count, created_at)"
      " SELECT CASE WHEN i % 2 = 0 THEN 'ka' ELSE 'kb' END, $1::bigint,"
      "  CASE WHEN i % 5 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, 1,"
      "  CASE WHEN i % 3 = 0 THEN timestamptz '2026-03-02 12:00:00Z'"
      "   ELSE timestamptz '2026-03-01 00:00:00Z' + make_interval(mins => (i * 7919) % 4320) END"
      " FROM generate_series(1, 30) i", uid)
want = [int(r[0]) for r in s.sql(
    "SELECT id FROM work_request ORDER BY created_at DESC, id DESC")]
ids_desc = sorted(want, reverse=True)
t.ok(want != ids_desc, "fixture: id order differs from time order")


def page_all(q, limit, delete_after=None):
    seen, cur = [], None
    for _ in range(60):
        r = s.api("GET", "/api/admin/requests?limit=%d%s%s" % (limit, q, "&cursor=" + cur if cur else ""),
                  token=admin)
        if r.status != 200:
            return None
        seen += [i["id"] for i in r.json["items"]]
        cur = r.json.get("next_cursor")
        if delete_after is not None and cur and len(seen) == limit:
            s.sql("DELETE FROM work_request WHERE id = $1", int(cur))
            delete_after.append(int(cur))
        if not cur:
            break
    return seen


r = s.api("GET", "/api/admin/requests?limit=500", token=admin)
t.is_([i["id"] for i in r.json["items"]], want, "one page: newest first by (created_at, id)")
for limit in (1, 4, 7):
    t.is_(page_all("", limit), want, "limit %d: the keyset pages cover every row once, in order" % limit)
same = [int(x[0]) for x in s.sql(
    "SELECT id FROM work_request WHERE created_at = '2026-03-02 12:00:00Z' ORDER BY id DESC")]
t.ok(len(same) == 10, "fixture: 10 rows share one created_at")
t.is_(page_all("&date_from=2026-03-02&date_to=2026-03-02&model_id=ka", 2),
      [i for i in want if i in set(int(x[0]) for x in s.sql(
          "SELECT id FROM work_request WHERE model_id = 'ka' AND created_at >= '2026-03-02'"
          " AND created_at < '2026-03-03'"))],
      "one day + model: keyset pages in order")
t.is_(page_all("&status=FAILED&user_id=%d" % uid, 2),
      [i for i in want if i in set(int(x[0]) for x in s.sql(
          "SELECT id FROM work_request WHERE status = 'FAILED'"))],
      "status + user: keyset pages in order")

# the row a cursor names is deleted before the next page is asked for
# (rows in time order, as ids are given out in practice: the nearest
# surviving row below the cursor stands in for it)
s.sql("INSERT INTO model (id) VALUES ('kc')")
s.sql("INSERT INTO work_request (model_id, user_id, status, input_count, created_at)"
      " SELECT 'kc', $1::bigint, 'COMPLETED', 1, timestamptz '2026-03-05 00:00:00Z'"
      " + make_interval(secs => i) FROM generate_series(1, 12) i", uid)
want = [int(r[0]) for r in s.sql(
    "SELECT id FROM work_request WHERE model_id = 'kc' ORDER BY created_at DESC, id DESC")]
deleted = []
got = page_all("&model_id=kc", 5, deleted)
t.ok(len(deleted) == 1, "a cursor row was deleted between pages")
t.is_(got, want, "a deleted cursor row: the next page goes on after it, nothing twice or lost")

# sql/013's indexes (their use at 1 M rows is bench/admin-list's to show)
names = {r[0] for r in s.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'work_request'")}
for ix in ("work_request_created_id_idx", "work_request_user_model_idx", "work_request_model_status_idx"):
    t.ok(ix in names, "index %s exists" % ix)
t.ok("work_request_created_idx" not in names, "the plain created_at index is gone (replaced)")
t.done()
