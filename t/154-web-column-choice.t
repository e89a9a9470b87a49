#!/usr/bin/python3
# 154-web-column-choice.t — the request form's "Input column" field in headless
# Chromium (web/columns.js): a multi-column file shows the column the API
# detected (dry_run) with its key column, the person can pick another column
# and the submit uses it; an ambiguous file asks for a choice; a one-column
# file shows no field; nothing is stored by the dry runs.
import os
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

s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
s.add_demo_models()
s.user("chem_user", password="chem-user-password")
b = Browser(s.url, t, name="154")
b.go("#/login")
b.fill("#login-form [name=username]", "chem_user")
b.fill("#login-form [name=password]", "chem-user-password")
b.click("#login-submit")
b.wait_text("#current-user", "chem_user")
tmpd = tempfile.mkdtemp(prefix="modelhub-154-")
form = "#request-form"


def upload(name, text, header):
    path = os.path.join(tmpd, name)
    with open(path, "w") as f:
        f.write(text)
    b.route("#/models/eos3b5e")
    b.wait_for(form)
    box = b.find(form + " [name=has_header]")
    if box.is_selected() != header:
        box.click()
    b.find(form + " [name=file]").send_keys(path)


def inputs_of(rid):
    return [r[0] for r in s.sql("SELECT input FROM work_request_input WHERE request_id = $1 "
                                "ORDER BY ordinal", rid)]


def submitted():
    b.click("#submit-request")
    b.wait_route("#/requests/")
    return b.hash().rsplit("/", 1)[1]


visible = "!document.querySelector('#column-field').hidden"

# detected by header name, key column named
upload("a.csv", "inchikey,smiles\nK1,CCO\nK2,c1ccccc1\n", True)
b.wait_js("return %s && document.querySelector('#input-column').value === 'smiles'" % visible,
          "column field shows smiles")
t.pass_("a two-column file shows the column field with smiles selected")
t.like(b.find("#column-note").text, r"Detected: .smiles.; .inchikey. comes back as the key",
       "  says it was detected and names the key column")
t.is_(s.sql("SELECT count(*) FROM work_request"), [("0",)], "  the dry run stored nothing")

# the person picks another column
upload("b.csv", "smiles,solvent\nCCO,O\nCCN,CO\n", True)
# the field already shows 'smiles' from the file before: wait for this
# file's dry run to list its own columns (under load it comes later)
b.wait_js("return %s && document.querySelector('#input-column').value === 'smiles'"
          " && !!document.querySelector('#input-column option[value=\"solvent\"]')" % visible,
          "smiles detected, solvent offered")
from selenium.webdriver.support.ui import Select  # noqa: E402
Select(b.find("#input-column")).select_by_value("solvent")
b.wait_text("#column-note", "Your choice")
t.like(b.find("#column-note").text, r"Your choice: .solvent.; .smiles. comes back as the key",
       "after picking solvent: 'Your choice'; the first column is then the key (docs/api.md)")
rid = submitted()
t.is_(inputs_of(rid), ["O", "CO"], "the submit used the chosen column")

# ambiguous: the API cannot tell, the form asks (the dry run answers what the
# submit would: 422 ambiguous_column, docs/api.md)
ambiguous = b.allow_http(422, "POST", "/api/models/eos3b5e/requests", "the dry run of an ambiguous file")
upload("c.csv", "CCO,CCN\nCCC,O\n", False)
b.wait_js("return %s && document.querySelector('#input-column').value === ''"
          " && !!document.querySelector('#input-column option[value=\"column_2\"]')" % visible,
          "a choice is asked for")
t.like(b.find("#column-note").text, r"Several columns could hold the molecules",
       "two SMILES columns without a header: the form asks to choose")
Select(b.find("#input-column")).select_by_value("column_2")
b.wait_text("#column-note", "Your choice")
rid = submitted()
t.is_(inputs_of(rid), ["CCN", "O"], "  the submit used column_2")
b.end_allow(ambiguous)

# one column: no field
upload("d.csv", "CCO\nc1ccccc1\n", False)
b.wait_idle()
t.ok(b.driver.execute_script("return document.querySelector('#column-field').hidden"),
     "a one-column file shows no column field")
t.is_(b.console_errors(), [], "no console errors, no HTTP error but the ambiguous dry run's 422")
t.done()
