#!/usr/bin/python3
# 506-web-submit.t — issue 19 defects 3 and 10: the submit form counts molecules of pasted text and of a chosen file (not bytes) before submit, shows the per-request limit (GET /api/health limits) and refuses more with one error next to the field that clears when fixed; a first line that is not a molecule ticks the header box with a note (a user's own choice sticks); an API error is shown once; the cache opt-in is disabled when the model's cache is off; the model page's curl recipe has no literal ID, polls, runs as shown against the stack and writes the result, and its Copy button copies it.
import csv
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from browser import Browser, skip_reason  # noqa: E402

t = TAP()
why = skip_reason()
if why:
    t.skip_all(why)
from stack import Stack             # noqa: E402

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1", "hub.max_inputs": "5"})
s.add_demo_models()
s.user("form_user", password="form-user-password")
t.is_(s.api("GET", "/api/health").json.get("limits", {}).get("max_inputs"), 5,
      "GET /api/health names the inputs limit")
b = Browser(s.url, t, name="506")
b.go("#/login")
b.fill("#login-form [name=username]", "form_user")
b.fill("#login-form [name=password]", "form-user-password")
b.click("#login-submit")
b.wait_text("#current-user", "form_user")
form = "#request-form"


def header_box():
    return b.find(form + " [name=has_header]").is_selected()


# ---- pasted text: count, limit, header detection
b.route("#/models/eos3b5e")
b.wait_for(form)
b.fill(form + " textarea", "smiles\nCCO\nc1ccccc1\n")
t.like(b.find("#input-count").text, r"^2 molecules \(at most 5 per request\)", "count and limit shown while typing")
t.ok(header_box(), "a first line that is not a molecule ticks the header box")
t.like(b.find("#header-note").text, r"smiles.*header", "a note says why")
b.fill(form + " textarea", "CCO\nCCN\n")
t.ok(not header_box(), "molecules only: the header box is not ticked")
t.is_(b.find("#header-note").text, "", "no note")
b.fill(form + " textarea", "CCO\nCCN\nCCC\nCCCC\nCCCCC\nCCCCCC\n")
t.like(b.wait(lambda: b.field_error(form, "inputs"), "limit error"), r"6 molecules: at most 5 per request",
       "over the limit: one error next to the field before any submit")
t.is_(b.find(form + " .form-error").text, "", "the error is not repeated at the form level")
b.click("#submit-request")
t.is_(int(s.sql("SELECT count(*) FROM work_request")[0][0]), 0, "nothing is sent over the limit")
b.fill(form + " textarea", "CCO\nCCN\n")
t.is_(b.field_error(form, "inputs"), "", "the error clears once fixed")
# the user's choice sticks
b.fill(form + " textarea", "name\nCCO\n")
t.ok(header_box(), "header detected")
b.click(form + " [name=has_header]")
b.find(form + " textarea").send_keys("CCN\n")
t.ok(not header_box(), "unticked by the user: typing more does not tick it again")
# an API error is shown once, next to the field
b.fill(form + " textarea", "C" * 5000)
too_long = b.allow_http(422, "POST", "/api/models/eos3b5e/requests", "an input longer than 4096 bytes")
b.click("#submit-request")
t.like(b.wait(lambda: b.field_error(form, "inputs"), "API error"), r"longer than 4096 bytes", "API error next to the field")
b.end_allow(too_long)
t.is_(b.find(form + " .form-error").text, "", "and not a second time at the form level")
b.fill(form + " textarea", "")

# ---- a file: molecules counted, header detected, submitted with it
tmpd = tempfile.mkdtemp(prefix="modelhub-506-")
path = os.path.join(tmpd, "mols.csv")
with open(path, "w") as f:
    f.write("smiles\nCCO\nCCN\nc1ccccc1\n")
b.find(form + " [name=file]").send_keys(path)
b.wait_text("#input-count", "3 molecules")
t.like(b.find("#input-count").text, r"^mols\.csv: 3 molecules", "file: molecules counted, not bytes")
t.ok(header_box(), "file: header line detected")
b.shots("submit-form")
b.click("#submit-request")
b.wait_route("#/requests/")
rid = b.hash().rsplit("/", 1)[1]
t.is_(s.sql("SELECT has_header, header, input_count FROM work_request WHERE id = $1", rid),
      [("t", "smiles", "3")], "submitted with the header apart and 3 inputs")

# ---- cache opt-in off when the model's cache is off
b.route("#/models/eos3b5e-async")
b.wait_for(form)
t.ok(not b.find(form + " [name=cache_opt_in]").is_enabled(), "cache opt-in disabled for a model without cache")
b.route("#/models/eos3b5e")
b.wait_for(form)
t.ok(b.find(form + " [name=cache_opt_in]").is_enabled(), "and enabled for a model with one")

# ---- the curl recipe runs as shown
b.click("details.curl summary")
text = b.wait_for("#curl-recipe").text
t.ok("/ID" not in text and "$ID" in text, "no literal ID: the recipe keeps the id in $ID")
t.like(text, r"while :; do", "the recipe polls until the request is done")
with open(os.path.join(tmpd, "molecules.csv"), "w") as f:
    f.write("CCO\nc1ccccc1\n")
p = subprocess.run(["timeout", "120", "bash", "-e", "-c", text], cwd=tmpd, capture_output=True, text=True)
t.is_(p.returncode, 0, "the recipe runs (%s)" % (p.stderr.strip()[-200:] or "ok"))
t.like(p.stdout, r"COMPLETED", "it printed the status until COMPLETED")
rows = list(csv.reader(open(os.path.join(tmpd, "result.csv")))) if os.path.exists(os.path.join(tmpd, "result.csv")) else []
t.is_([r[0] for r in rows], ["input", "CCO", "c1ccccc1"], "result.csv has both molecules")
t.like(rows[2][1] if len(rows) > 2 else "", r"^78\.1", "with their values")
b.driver.execute_script("""
Object.defineProperty(navigator, 'clipboard', {configurable: true,
  value: {writeText: async (x) => { window.__copied = x; }}});""")
b.click("#copy-recipe")
b.wait_text(".copy-status", "Copied")
t.is_(b.driver.execute_script("return window.__copied"), text.rstrip("\n") + "\n" if not text.endswith("\n") else text,
      "Copy puts the recipe on the clipboard")
b.shots("model-page")

errs = b.console_errors()
t.is_(errs, [], "no console errors")
b.quit()
s.stop()
t.done()
