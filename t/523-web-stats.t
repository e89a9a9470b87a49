#!/usr/bin/python3
# 523-web-stats.t — the admin Stats page in headless Chromium: menu entry, summary tiles, Chart.js charts (Debian's libjs-chart.js served by nginx at /vendor/chart.js/) whose data equal GET /api/stats and the tables under them, date range and model filter kept in the route, a model link narrowing the view, CSV download link, a bad range shown next to its field; users are refused; no console errors.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
if not os.path.exists("/usr/share/javascript/chart.js/chart.esm.js"):
    t.skip_all("libjs-chart.js not installed (scripts/install-deps runtime)")
from stack import Stack             # noqa: E402

s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
s.add_demo_models()
adm = s.admin_token
u = s.user("stats_user")
uid = s.sql("SELECT id FROM app_user WHERE username = 'stats_user'")[0][0]
today = time.strftime("%Y-%m-%d", time.gmtime())
yday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
for model, day, status, reason, n, run in (("eos3b5e", yday, "COMPLETED", None, 3, 200),
                                           ("eos3b5e", yday, "FAILED", "MODEL_ERROR", 1, 50),
                                           ("eos3b5e", today, "COMPLETED", None, 40, 900),
                                           ("descriptors", today, "COMPLETED", None, 2, 300),
                                           ("descriptors", today, "CANCELLED", "CANCELLED", 1, 10)):
    fin = "'%s 06:00:00+00'::timestamptz" % day
    s.sql("INSERT INTO work_request (model_id, user_id, status, failure_reason, input_count, created_at,"
          " started_at, finished_at) VALUES ($1, $2, $3, $4, $5, " + fin + " - interval '1 s', " + fin +
          " - interval '%d ms', " % run + fin + ")", model, uid, status, reason, n)

r = s.api("GET", "/vendor/chart.js/chart.esm.js")
t.ok(r.status == 200 and r.headers.get("content-type", "").startswith("text/javascript"),
     "nginx serves Chart.js from the Debian package as JavaScript")
api = s.api("GET", "/api/stats", token=adm).json

b = Browser(s.url, t, name="523")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-form button[type=submit]")
b.wait_text("#current-user", "t_admin")
b.click("#admin-nav a[href='#/admin/stats']")
b.wait_js("return document.querySelector('#stats-out') && document.querySelector('#stats-out').dataset.ready === '1'",
          "stats drawn")
t.pass_("the admin menu has Stats; the page loads")
t.is_(b.find("#stat-completed .stat-value").text, "3", "tile: completed in the last 30 days")
t.is_(b.find("#stat-failed .stat-value").text, "1", "tile: failed")
t.like(b.find("#stats-range").text, r"from %s to %s" % (api["from"], api["to"]), "the range is said")
t.is_(b.find("#stats-filters [name=to]").get_attribute("value"), today, "the date fields show the range used")

CHART_DATA = """
const done = arguments[arguments.length - 1];
import('/vendor/chart.js/chart.esm.js').then((m) => {
  const c = m.Chart.getChart(document.querySelector(arguments[0] + ' canvas'));
  done(c ? {labels: c.data.labels, data: c.data.datasets.map((d) => d.data)} : null);
}).catch((e) => done('error ' + e));
"""


def chart(css):
    return b.driver.execute_async_script(CHART_DATA, css)


by_day = chart("#chart-by-day")
t.is_(len(by_day["labels"]), 30, "the by-day chart has every day of the range (no gaps)")
t.is_((by_day["labels"][0], by_day["labels"][-1]), (api["from"], api["to"]), "from the first day to the last")
got = {day: [ds[i] for ds in by_day["data"]] for i, day in enumerate(by_day["labels"]) if any(ds[i] for ds in by_day["data"])}
t.is_(got, {d["day"]: [d["completed"], d["failed"], d["cancelled"]] for d in api["by_day"]},
      "its non-zero days are GET /api/stats' by_day (the others zero)")
t.is_(sorted(got), [yday, today], "two days")
t.is_(chart("#chart-by-model")["labels"], [m["model_id"] for m in api["by_model"]], "a chart by model")
t.is_(chart("#chart-reasons"), {"labels": ["CANCELLED", "MODEL_ERROR"], "data": [[1, 1]]}, "a chart of failure reasons")
t.is_(chart("#chart-by-size")["labels"], ["1", "2-10", "11-100", "101-1000", "1001-10000", ">10000"],
      "a chart by input-size bucket")
blank = b.driver.execute_script(
    "const c = document.querySelector('#chart-by-day canvas'); const x = document.createElement('canvas');"
    " x.width = c.width; x.height = c.height; return c.toDataURL() === x.toDataURL();")
t.ok(not blank, "the chart is drawn (the canvas is not blank)")
rows = [[td.text for td in tr.find_elements("css selector", "td")][:4] for tr in b.finds("table.stats-by-day tbody tr")]
t.is_(rows, [[yday, "1", "1", "0"], [today, "2", "0", "1"]], "the table under the chart has the same figures")
size_rows = {tr.find_elements("css selector", "td")[0].text: tr.find_elements("css selector", "td")[-1].text
             for tr in b.finds("table.stats-by-size tbody tr")}
t.like(size_rows.get("11-100", ""), r"^\d+ ms / \d+ ms / \d+ ms$", "run-time percentiles per size bucket")
t.ok("Chart.js, Debian package" not in b.find("#stats-out").text, "no 'charts unavailable' notice")
b.shots("stats")

href = b.find("#stats-csv").get_attribute("href")
t.like(href, r"/api/stats\?format=csv$", "CSV download link")
res = b.driver.execute_async_script(
    "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(async (r) => done([r.status, await r.text()]))"
    ".catch((e) => done(String(e)));", href)
t.ok(res[0] == 200 and res[1].startswith("day,model_id,completed") and len(res[1].strip().split("\n")) == 4,
     "the link downloads the CSV with the session cookie (3 day x model lines)")

# ---- filters in the route
b.driver.execute_script("document.querySelector('#stats-filters [name=from]').value = arguments[0];"
                        "document.querySelector('#stats-filters [name=to]').value = arguments[0];", today)
b.click("#stats-show")
b.wait_route("#/admin/stats?from=%s&to=%s" % (today, today))
b.wait_js("return document.querySelector('#stats-out').dataset.ready === '1' && "
          "document.querySelector('#stat-completed .stat-value').textContent === '2'", "today only")
t.pass_("a one-day range: the route keeps it, the figures follow")
b.click("table.stats-by-model a")
b.wait_route("#/admin/stats?from=%s&to=%s&model_id=" % (today, today))
b.wait_js("return document.querySelector('#stats-out').dataset.ready === '1' && "
          "/model (descriptors|eos3b5e)/.test(document.querySelector('#stats-range').textContent)", "one model")
t.pass_("a model's link narrows the view to it")
picked = b.hash().rsplit("model_id=", 1)[1]
t.like(b.find("#stats-csv").get_attribute("href"),
       r"/api/stats\?from=%s&to=%s&model_id=%s&format=csv$" % (today, today, picked), "the CSV link follows the filters")

b.allow_http(422, "GET", "/api/stats", "a date that does not exist in the route")
b.route("#/admin/stats?from=2026-02-30")
err = b.wait(lambda: b.field_error("#stats-filters", "from"), "from error")
t.like(err, r"YYYY-MM-DD", "a bad date: the error next to the field")
t.like(b.find("#stats-out").text, r"Could not load the stats", "and a message instead of the figures")
t.is_(b.unlabelled(), [], "every control labelled")
t.is_(b.console_errors(), [], "no console errors, no HTTP error but the bad date's 422")
b.quit()

# ---- a user is refused
b2 = Browser(s.url, t, name="523b")
b2.go("#/login")
b2.fill("#login-form [name=username]", "stats_user")
b2.fill("#login-form [name=password]", s.passwords["stats_user"])
b2.click("#login-form button[type=submit]")
b2.wait_text("#current-user", "stats_user")
t.ok(not b2.exists("#admin-nav a[href='#/admin/stats']"), "no Stats entry for a user")
b2.route("#/admin/stats")
b2.wait(lambda: "not allowed" in b2.find("#view").text.lower() or "admin" in b2.find("#view").text.lower(), "refused")
t.ok(not b2.exists("#stats-out"), "a user does not get the page")
b2.quit()
s.stop()
t.done()
