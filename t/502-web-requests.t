#!/usr/bin/python3
# 502-web-requests.t — submit → progress → download in headless Chromium over the real stack with modelhubd and the demo models: paste with and without a header line, file upload, input errors shown by the form, live progress that stops polling when done, CSV/JSON downloads equal to the API's, per-input errors, cancel.
import csv
import io
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from stack import Stack             # noqa: E402

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
tok = s.user("chem_user", password="chem-user-password")
b = Browser(s.url, t, name="502")

b.go("#/login")
b.fill("#login-form [name=username]", "chem_user")
b.fill("#login-form [name=password]", "chem-user-password")
b.click("#login-submit")
b.wait_text("#current-user", "chem_user")


def fetch_text(path):
    """GET path from inside the page (cookie session), as the links do."""
    return b.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(async (r) =>"
        " done([r.status, r.headers.get('Content-Type'), await r.text()]))"
        ".catch((e) => done([0, '', String(e)]));", path)


def api_requests_calls():
    return b.driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter((e) => /\\/api\\/requests(\\?|$)/.test(e.name)).length")


# ---- the form refuses nothing-to-do and shows the API's input errors
b.route("#/models/eos3b5e")
form = "#request-form"
b.wait_for(form)
t.is_(b.unlabelled(), [], "request form: every control has a label")
b.click("#submit-request")
t.like(b.wait(lambda: b.field_error(form, "inputs"), "inputs error"), r"at least one molecule",
       "empty submit: error next to the molecules field")
b.fill(form + " textarea", "C" * 5000)
too_long = b.allow_http(422, "POST", "/api/models/eos3b5e/requests", "an input longer than 4096 bytes")
b.click("#submit-request")
t.like(b.wait(lambda: b.field_error(form, "inputs"), "API error"), r"longer than 4096 bytes",
       "too long input: the API's field error shown next to the field")
b.end_allow(too_long)
t.is_(int(s.sql("SELECT count(*) FROM work_request")[0][0]), 0, "nothing submitted by refused forms")

# ---- paste with a header line, header checkbox on
b.fill(form + " textarea", "smiles\nCCO\nc1ccccc1\nnot_a_smiles\n")
t.like(b.find("#input-count").text, r"^3 molecules", "header detected: the first line is not counted")
t.ok(b.find(form + " [name=has_header]").is_selected(), "the header box is ticked for a first line that is not a molecule")
b.click("#submit-request")
b.wait_route("#/requests/")
rid = b.hash().rsplit("/", 1)[1]
t.like(rid, r"^\d+$", "submit opens the request page (#/requests/%s)" % rid)
row = s.sql("SELECT model_id, has_header, header, input_count, cache_opt_in FROM work_request WHERE id = $1", rid)
t.is_(row, [("eos3b5e", "t", "smiles", "3", "f")], "stored: model, header line apart, 3 inputs, no cache opt-in")
b.wait_for("#request-status")
t.ok(b.exists("#request-detail [role=progressbar]"), "request page shows a progress bar")
b.wait(lambda: b.find("#request-status").get_attribute("data-status") == "COMPLETED", "COMPLETED", timeout=120)
t.pass_("request page updated itself to COMPLETED")
bar = b.find("#request-detail [role=progressbar]")
t.is_((bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")), ("3", "3"),
      "progress bar at 3 / 3")
b.shot("request-completed")

# downloads: the links' targets equal the API's answers
links = {a.text: a.get_attribute("href") for a in b.finds("#request-detail .downloads a")}
t.ok("CSV" in links and "JSON" in links, "CSV and JSON download links")
st, ctype, body = fetch_text(links.get("CSV", ""))
t.is_(st, 200, "CSV link answers 200 with the cookie session")
t.like(ctype or "", r"^text/csv", "CSV link: text/csv")
api_csv = s.api("GET", "/api/requests/%s/result?format=csv&error_column=true" % rid, token=tok).text
t.is_(body, api_csv, "CSV download equals the API's CSV (with the error column: not_a_smiles fails)")
rows = list(csv.reader(io.StringIO(body)))
t.is_(rows[0][:2], ["input", "mol_weight"], "CSV header: input, mol_weight")
t.is_([r[0] for r in rows[1:]], ["CCO", "c1ccccc1", "not_a_smiles"], "CSV rows in input order, header line excluded")
st, ctype, body = fetch_text(links.get("JSON", ""))
t.is_(st, 200, "JSON link answers 200")
res = json.loads(body)
t.is_(len(res["results"]), 3, "JSON has 3 results")
b.wait_for("#result-preview")
prev = b.find("#result-preview").text
t.ok("c1ccccc1" in prev and "78.1" in prev, "result preview shows inputs and values")
t.ok("null" not in b.find("#view").text.split(), "no stray 'null' text on the page")
t.ok(res["results"][2]["record"] is None or res["results"][2]["record"].get("mol_weight") is None,
     "invalid SMILES gives a null record")
# eos3b5e takes compounds: the SMILES check rejects the invalid one before
# any call (issue 20), so it is listed with its reason
t.like(b.wait_for("#input-errors").text, r"invalid SMILES",
       "the invalid SMILES is listed with the check's reason")

# ---- per-input errors: a strict model fails whole batches; the hub bisects
# down to the bad input, which gets an error, and the page lists it.
r = s.api("POST", "/api/models", token=s.admin_token, json={
    "id": "mw-strict", "enabled": True, "execution_mode": "SYNC",
    "local_command": ["/usr/bin/python3", "{models_dir}/serve.py", "--model", "eos3b5e", "--strict",
                      "--host", "{host}", "--port", "{port}"],
    "details": {"title": "Molecular weight (strict)", "columns": ["mol_weight"]}})
t.status(r, 201, "a strict model (whole-batch failures) is registered")
b.route("#/models/mw-strict")
b.wait_for(form)
b.fill(form + " textarea", "CCO\nnot_a_smiles\nc1ccccc1\n")
b.click("#submit-request")
b.wait_route("#/requests/")
b.wait(lambda: b.find("#request-status").get_attribute("data-status") in ("COMPLETED", "FAILED"),
       "strict request finished", timeout=120)
t.is_(b.find("#request-status").get_attribute("data-status"), "COMPLETED", "strict request COMPLETED (bad input isolated)")
errs_box = b.wait_for("#input-errors")
t.like(errs_box.text, r"Inputs with errors \(1\)", "one input with an error")
t.like(errs_box.text, r"not_a_smiles", "the failing input is named")
t.ok("CCO" not in errs_box.text.split(), "the good inputs are not listed as errors")
t.like(b.find("#request-calls").text, r"\d+ \(\d+ to isolate failing inputs\)",
       "model calls with the extra calls that isolated the bad input")
t.like(b.find("#request-isolation").text, r"^\d+(\.\d)? m?s$", "time spent isolating it")
b.shot("input-errors")

# ---- my requests: live list, then polling stops when nothing runs
b.route("#/requests")
b.wait_for("#requests-list tr[data-id='%s']" % rid)
t.ok(b.exists("#requests-list tr[data-id='%s'] [role=progressbar]" % rid), "my requests: progress bar per request")
t.ok(b.exists("#requests-list tr[data-id='%s'] .downloads a" % rid), "my requests: download links for a completed request")
n0 = api_requests_calls()
time.sleep(5)
t.is_(api_requests_calls(), n0, "no polling while nothing is QUEUED or RUNNING")

# ---- upload a file (header off), watch it go through the list
tmpd = tempfile.mkdtemp(prefix="modelhub-502-")
path = os.path.join(tmpd, "molecules.csv")
with open(path, "w") as f:
    f.write("".join("C" * (i % 5 + 1) + "O\n" for i in range(60)))
b.route("#/models/descriptors")
b.wait_for(form)
b.find(form + " [name=file]").send_keys(path)
t.like(b.find("#input-count").text, r"molecules\.csv", "chosen file named under the form")
b.click("#submit-request")
b.wait_route("#/requests/")
rid2 = b.hash().rsplit("/", 1)[1]
row = s.sql("SELECT input_count, has_header, metadata->>'filename' FROM work_request WHERE id = $1", rid2)
t.is_(row, [("60", "f", "molecules.csv")], "upload: 60 inputs, no header, file name kept")
b.route("#/requests")
b.wait_for("#requests-list tr[data-id='%s']" % rid2)
b.wait(lambda: b.find("#requests-list tr[data-id='%s']" % rid2).get_attribute("data-status") == "COMPLETED",
       "upload COMPLETED in the list", timeout=120)
t.pass_("my requests list followed the upload to COMPLETED without a reload")
b.shot("my-requests")
st, _, body = fetch_text("/api/requests/%s/result?format=csv" % rid2)
t.is_(len(list(csv.reader(io.StringIO(body)))), 61, "upload result: header + 60 rows")

# ---- cancel a queued request from its page (stop the runners first so it stays queued)
s.stop_hubd()
b.route("#/models/eos3b5e")
b.wait_for(form)
b.fill(form + " textarea", "CCO\n")
b.click("#submit-request")
b.wait_route("#/requests/")
rid3 = b.hash().rsplit("/", 1)[1]
b.wait_for("#cancel-request")
b.driver.execute_script("window.confirm = () => true;")
b.click("#cancel-request")
b.wait(lambda: b.find("#request-status").get_attribute("data-status") == "CANCELLED", "CANCELLED")
t.is_(s.sql("SELECT status FROM work_request WHERE id = $1", rid3), [("CANCELLED",)], "cancel from the page cancels it")
t.ok(not b.exists("#cancel-request"), "no cancel button on a cancelled request")

# ---- another user's request is not shown
other = s.user("other_chem")
r = s.api("POST", "/api/requests", token=other, json={"model_id": "eos3b5e", "inputs": ["CCO"]})
b.allow_http(404, "GET", "/api/requests/%s" % r.json["id"], "someone else's request")
b.route("#/requests/%s" % r.json["id"])
b.wait_text("#request-detail", "no such request")
t.pass_("someone else's request: 'no such request'")

errs = b.console_errors()
t.is_(errs, [], "no console errors")
b.quit()
s.stop()
t.done()
