#!/usr/bin/python3
# 511-web-no-result.t — issue 19 defect 2: a molecule the demo model cannot read (RDKit fails, the hub's SMILES screen lets it through: F[Cl](F)F, Br(C)C) comes back as an all-null record; it is now a "no result" with a reason: counted in error_count, an error in the JSON result, a last "error" column in the CSV with error_column=true (the default CSV keeps its columns; the page's CSV link asks for it when there are errors), and listed on the request page ("Inputs with errors (2)", not 0). A request where nothing could be read is FAILED MODEL_ERROR naming why. Real stack with modelhubd and the demo models; screenshots at 1280 and 390 px.
import csv
import io
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
from stack import Stack             # noqa: E402

s = Stack(hubd=True, config={"auth.pwhash_fast": "1", "hub.runners": "1"})
s.add_demo_models()
tok = s.user("nores_user", password="nores-user-password")


def submit(inputs):
    r = s.api("POST", "/api/requests", token=tok, json={"model_id": "eos3b5e", "inputs": inputs})
    t.status(r, 201, "submit %d inputs" % len(inputs))
    return r.json["id"]


def wait(rid):
    deadline = time.time() + 120
    while time.time() < deadline:
        j = s.api("GET", "/api/requests/%s" % rid, token=tok).json
        if j["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return j
        time.sleep(0.3)
    raise TimeoutError("request %s" % rid)


# F[Cl](F)F and Br(C)C (halogens with too many bonds) pass the hub's SMILES
# screen, which checks the valence of C, N, O and F only; RDKit refuses
# them and the demo model answers {"mol_weight": null}.
BAD = {1: "F[Cl](F)F", 3: "Br(C)C"}
inputs = ["CCO", "F[Cl](F)F", "c1ccccc1", "Br(C)C"]
rid = submit(inputs)
j = wait(rid)
t.is_((j["status"], j["error_count"], j["progress"]["done"]), ("COMPLETED", 2, 4),
      "COMPLETED, error_count 2 (was 0), 4 done")
res = s.api("GET", "/api/requests/%s/result?format=json" % rid, token=tok).json["results"]
t.ok(all(res[i]["error"].startswith("no result: the model returned no values") for i in BAD),
     "JSON: the unreadable inputs carry the error 'no result: …' (%s)" % res[1].get("error"))
t.ok(all("error" not in res[i] and res[i]["record"]["mol_weight"] > 0 for i in (0, 2)),
     "JSON: the good inputs have values and no error")
r = s.api("GET", "/api/requests/%s/result?format=csv&error_column=true" % rid, token=tok)
rows = list(csv.reader(io.StringIO(r.text)))
t.is_(rows[0], ["input", "mol_weight", "error"], "CSV with error_column=true: a last error column")
t.ok(len(rows) == 5 and rows[2][2].startswith("no result") and rows[4][2].startswith("no result")
     and rows[2][1] == "" and rows[1][2] == "" and rows[3][2] == "",
     "  the reason on the unreadable rows, empty on the others")
r = s.api("GET", "/api/requests/%s/result?format=csv" % rid, token=tok)
t.is_(r.text.split("\r\n")[0], "input,mol_weight", "the default CSV keeps its columns")
r = s.api("GET", "/api/requests/%s/result?format=csv&error_column=yes" % rid, token=tok)
t.is_((r.status, ((r.json or {}).get("error") or {}).get("code")), (422, "invalid_parameter"),
      "error_column=yes: 422 invalid_parameter")

good = submit(["CCO", "c1ccccc1"])
t.is_(wait(good)["error_count"], 0, "an error-free request: error_count 0")

none = submit(["F[Cl](F)F", "Br(C)C"])
j = wait(none)
t.is_((j["status"], j["failure_reason"]), ("FAILED", "MODEL_ERROR"), "nothing readable: FAILED MODEL_ERROR")
t.like(j.get("failure_detail") or "", r"every input failed; last error: no result", "  the detail says why")

# ---- the request page lists them
b = Browser(s.url, t, name="511")
b.go("#/login")
b.fill("#login-form [name=username]", "nores_user")
b.fill("#login-form [name=password]", "nores-user-password")
b.click("#login-submit")
b.wait_for("#current-user")
b.route("#/requests/%s" % rid)
b.wait_text("#request-errors", "2")
t.pass_("request page: Inputs with errors 2 (was 0)")
box = b.wait_for("#input-errors")
t.like(box.text, r"Inputs with errors \(2\)", "the inputs with errors are listed")
t.ok("F[Cl](F)F" in box.text and "Br(C)C" in box.text and "no result" in box.text,
     "  each with its input and the reason")
t.ok("CCO" not in box.text.split(), "  the good inputs are not listed")
link = b.find("#request-detail .downloads a").get_attribute("href")
body = b.driver.execute_async_script(
    "const d = arguments[arguments.length - 1]; fetch(arguments[0]).then((r) => r.text()).then(d, () => d(null));", link)
t.is_((body or "").split("\r\n")[0], "input,mol_weight,error", "the page's CSV download has the error column")
t.ok("no result" in (body or ""), "  with the reasons")
b.route("#/requests/%s" % good)
b.wait_text("#request-errors", "0")
link = b.find("#request-detail .downloads a").get_attribute("href")
t.ok("error_column" not in link, "an error-free request's CSV link asks for no error column")
b.shots("request-no-result")
t.is_(b.console_errors(), [], "no console errors")
b.quit()
s.stop()
t.done()
