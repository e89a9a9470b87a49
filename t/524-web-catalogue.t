#!/usr/bin/python3
# 524-web-catalogue.t — in headless Chromium: an admin imports an Ersilia catalogue file on the models admin page (report of updated, added-disabled and skipped records); the public catalogue shows cards with titles, tasks, areas and organisms, filters by area, organism, task and free text; a model's page shows its identification (links open safely); "Try with example molecules" fills the request form (after logging in when needed) and the examples are accepted; no image, command or resources reach an anonymous page; labels, contrast, no console errors.
import json
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
s.user("cat_user")
CAT = [
    {"Identifier": "eos3b5e", "Title": "Molecular weight", "Task": ["Regression"], "Biomedical Area": ["Any"],
     "Target Organism": ["Not Applicable"], "Publication": "https://example.org/mw-paper",
     "Source Code": "https://example.org/mw-code", "License": "MIT", "Interpretation": "Daltons, computed by RDKit",
     "Input": ["Compound"], "Output": ["Value"]},
    {"Identifier": "descriptors", "Title": "Basic physico-chemical descriptors", "Task": ["Representation"],
     "Biomedical Area": ["ADMET"], "Target Organism": ["Homo sapiens"]},
    {"Identifier": "eos4new", "Title": "Antimalarial activity", "Task": ["Classification"],
     "Biomedical Area": ["Malaria"], "Target Organism": ["Plasmodium falciparum"]},
    {"Title": "no identifier"},
]
tmp = tempfile.mkdtemp(prefix="t524-")
os.chmod(tmp, 0o755)
path = os.path.join(tmp, "catalog.json")
with open(path, "w") as f:
    json.dump(CAT, f)
os.chmod(path, 0o644)

# ---- admin: import on the admin models page
b = Browser(s.url, t, name="524")
b.go("#/login")
b.fill("#login-form [name=username]", "t_admin")
b.fill("#login-form [name=password]", s.admin_password)
b.click("#login-form button[type=submit]")
b.wait_for("#admin-nav")
b.route("#/admin/models")
b.wait_for("#catalog-box")
b.click("#catalog-box summary")
b.find("#catalog-form [name=catalog]").send_keys(path)
b.click("#catalog-import")
summary = b.wait(lambda: b.exists("#catalog-summary") and b.find("#catalog-summary").text, "import report")
t.is_(summary, "2 updated, 0 added (disabled), 2 skipped.", "the import reports what it did")
t.like(b.find("#catalog-skipped").text, r"eos4new: not registered", "skipped records with their reason")
b.click("#catalog-form [name=create]")
b.click("#catalog-import")
b.wait_text("#catalog-summary", "1 added (disabled)")
t.pass_("ticking 'add the models not registered' adds the other one, disabled")
b.wait_text("#admin-models", "eos4new")
t.pass_("the model list shows it after the import")
t.is_(s.sql("SELECT enabled, title FROM model WHERE id = 'eos4new'"), [("f", "Antimalarial activity")], "stored disabled")
t.is_(b.unlabelled(), [], "admin models page with the import box: every control labelled")
t.is_(b.console_errors(), [], "admin import: no console errors")
b.quit()

# ---- anonymous: the catalogue as cards with filters
a = Browser(s.url, t, name="524a")
a.go("#/models")
a.wait_text("#models-list", "eos3b5e")
cards = [c.get_attribute("data-id") for c in a.finds("#models-list li.model-card")]
t.is_(sorted(cards), sorted(m["id"] for m in s.api("GET", "/api/models").json["items"]), "one card per public model")
t.ok("eos4new" not in cards, "the disabled imported model is not shown")
card = a.find("li.model-card[data-id=eos3b5e]")
t.like(card.text, r"Molecular weight[\s\S]*Regression[\s\S]*Any[\s\S]*Not Applicable", "card: title, task, area, organism")
a.shots("catalogue")
t.is_(a.unlabelled(), [], "catalogue: every control labelled")
t.is_(a.low_contrast(), [], "catalogue: no text below 4.5:1")


def shown():
    return sorted(c.get_attribute("data-id") for c in a.finds("#models-list li.model-card"))


def pick(name, value):
    a.driver.execute_script("const s = document.querySelector('#models-filters [name=%s]'); s.value = arguments[0];"
                            "s.dispatchEvent(new Event('change'));" % name, value)


def search(text):
    a.driver.execute_script("const q = document.querySelector('#models-filters [name=q]'); q.value = arguments[0];"
                            "q.dispatchEvent(new Event('input'));", text)


opts = [o.get_attribute("value") for o in a.finds("#models-filters [name=area] option")]
t.is_(opts, ["", "ADMET", "Any"], "area filter: the areas of the catalogue")
pick("area", "ADMET")
t.is_(shown(), ["descriptors"], "filter by area")
pick("area", "")
pick("organism", "Not Applicable")
t.is_(shown(), ["eos3b5e"], "filter by target organism")
pick("organism", "")
pick("task", "Representation")
t.is_(shown(), ["descriptors"], "filter by task")
pick("task", "")
search("DALTONS")
t.is_(shown(), ["eos3b5e"], "free text (any case) searches the interpretation too")
search("nothing like this")
a.wait_text("#models-list", "No model matches")
t.pass_("no match: said so")
search("")
a.wait(lambda: len(shown()) == len(cards), "all back")

# ---- the model page and the example button
a.click("li.model-card[data-id=eos3b5e] .try-example")
a.wait_route("#/models/eos3b5e?example=1")
facts = a.wait_for("#model-facts").text
t.like(facts, r"Tasks\s+Regression[\s\S]*Interpretation\s+Daltons, computed by RDKit[\s\S]*License\s+MIT",
       "the model page shows the identification fields")
link = a.find("#model-facts a[href='https://example.org/mw-paper']")
t.is_((link.get_attribute("rel"), link.get_attribute("target")), ("noopener noreferrer", "_blank"),
      "publication as a link that opens safely")
src = a.driver.page_source
t.ok("serve.py" not in src and "memory_limit_mib" not in src, "no command or resources on an anonymous page")
login = a.find("#view a[href^='#/login']").get_attribute("href")
t.like(login, r"next=%2Fmodels%2Feos3b5e%3Fexample%3D1", "not logged in: the login link comes back with the examples")
t.is_(a.console_errors(), [], "anonymous catalogue and model page: no console errors")
a.quit()

# ---- a user: the examples fill the form and are accepted
u = Browser(s.url, t, name="524u")
u.go("#/login")
u.fill("#login-form [name=username]", "cat_user")
u.fill("#login-form [name=password]", s.passwords["cat_user"])
u.click("#login-form button[type=submit]")
u.wait_text("#current-user", "cat_user")
u.route("#/models/eos3b5e?example=1")
text = u.wait(lambda: u.exists("#request-form textarea") and u.find("#request-form textarea").get_attribute("value"),
              "examples filled")
t.ok(len(text.strip().split("\n")) == 5 and "CC(=O)Oc1ccccc1C(=O)O" in text, "the form is filled with 5 example molecules")
t.like(u.find("#input-count").text, r"^5 molecules", "and counted")
u.click("#submit-request")
u.wait_route("#/requests/")
rid = u.hash().rsplit("/", 1)[1]
t.is_(s.sql("SELECT input_count FROM work_request WHERE id = $1", rid), [("5",)], "the examples are accepted as 5 inputs")
u.route("#/models/descriptors")
u.wait_for("#fill-examples")
u.click("#fill-examples")
t.is_(len(u.find("#request-form textarea").get_attribute("value").strip().split("\n")), 5,
      "the form's own 'Try with example molecules' button fills it too")
t.is_(u.console_errors(), [], "user: no console errors")
u.quit()
s.stop()
t.done()
