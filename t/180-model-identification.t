#!/usr/bin/python3
# 180-model-identification.t — the Ersilia identification fields of a model (title, slug, description, interpretation, publication, source code, license, target organisms, biomedical areas, tasks, input/output types) are typed and validated, titles unique ignoring case; anonymous and user GET /api/models(/{id}) show them but never local_command, image or resources (admins see all); an Ersilia catalogue imports through POST /api/models/import-catalog and `modelhubctl import-catalog FILE [--create]` (registered models updated, others skipped or created disabled, bad records skipped with their reason).
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                 # noqa: E402
from stack import Stack             # noqa: E402
from flows import error_code        # noqa: E402

t = TAP()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1"})
s.add_demo_models()
adm = s.admin_token
usr = s.user("ident_user")
PRIVATE = ["local_command", "image", "image_tag", "port", "cpu_request_m", "cpu_limit_m", "memory_request_mib",
           "memory_limit_mib", "disable_memory_limit", "max_instances", "idle_seconds"]
IDENT = {"title": "Molecular weight", "slug": "molecular-weight", "interpretation": "Weight in g/mol",
         "publication": "https://example.org/paper", "source_code": "https://example.org/code",
         "license": "MIT", "target_organisms": ["Any"], "biomedical_areas": ["Any"],
         "tasks": ["Regression"], "input_types": ["Compound"], "output_types": ["Value"]}


def version(mid):
    return s.api("GET", "/api/models/" + mid, token=adm).json["version"]


r = s.api("PATCH", "/api/models/eos3b5e", token=adm, json=dict(IDENT, version=version("eos3b5e")))
t.status(r, 200, "admin sets the identification fields")
t.is_({k: r.json.get(k) for k in IDENT}, IDENT, "stored typed and given back")
t.is_(s.sql("SELECT tasks[1], array_length(output_types, 1) FROM model WHERE id = 'eos3b5e'"), [("Regression", "1")],
      "lists are text[] columns")
t.is_(s.api("GET", "/api/models/descriptors", token=adm).json.get("tasks"), [], "a model without them: empty lists")

for who, tok in (("anonymous", None), ("user", usr)):
    one = s.api("GET", "/api/models/eos3b5e", token=tok).json or {}
    t.is_({k: one.get(k) for k in IDENT}, IDENT, "%s sees the identification fields" % who)
    t.is_([k for k in PRIVATE if k in one], [], "%s: no local_command, image or resources on one model" % who)
    items = (s.api("GET", "/api/models", token=tok).json or {}).get("items", [])
    t.ok(items and all(not any(k in m for k in PRIVATE) for m in items), "%s: none in the list either" % who)
    t.ok(all("cache_enabled" in m and "description" in m for m in items), "%s: public fields kept" % who)
one = s.api("GET", "/api/models/eos3b5e", token=adm).json
t.is_([k for k in PRIVATE if k not in one], [], "an admin sees every field")
t.ok(all("memory_limit_mib" in m for m in s.api("GET", "/api/models", token=adm).json["items"]), "in the list too")

# ---- validation
for body, field in (({"tasks": "Regression"}, "tasks"), ({"tasks": ["ok", ""]}, "tasks"),
                    ({"target_organisms": None}, "target_organisms"), ({"title": "x" * 201}, "title"),
                    ({"biomedical_areas": ["a"] * 33}, "biomedical_areas"), ({"license": 3}, "license")):
    r = s.api("PATCH", "/api/models/descriptors", token=adm, json=dict(body, version=version("descriptors")))
    t.ok(r.status == 422 and field in (r.json or {}).get("error", {}).get("fields", {}),
         "PATCH %s: 422 naming %s" % (json.dumps(body)[:40], field))
r = s.api("PATCH", "/api/models/descriptors", token=adm, json={"title": "MOLECULAR weight", "version": version("descriptors")})
t.ok(r.status == 422 and "eos3b5e" in (r.json or {}).get("error", {}).get("fields", {}).get("title", ""),
     "a title another model has (any case): 422 on title naming that model")
r = s.api("PATCH", "/api/models/eos3b5e", token=adm, json={"title": "Molecular Weight", "version": version("eos3b5e")})
t.status(r, 200, "a model keeps (and may re-case) its own title")
r = s.api("PATCH", "/api/models/eos3b5e", token=adm, json={"title": None, "version": version("eos3b5e")})
t.ok(r.status == 200 and r.json["title"] is None, "a title can be cleared with null")

# ---- import through the API
CAT = [
    {"Identifier": "eos3b5e", "Slug": "mw", "Title": " Molecular weight (RDKit) ", "Description": "The weight.",
     "Task": "Regression", "Input": ["Compound"], "Output": ["Value", ""], "Target Organism": ["Not Applicable"],
     "Biomedical Area": ["Any", "ADMET"], "Source Code": "https://example.org/src", "GitHub": "https://gh/x",
     "Publication": "https://example.org/p", "License": "GPL-3.0", "Interpretation": "g/mol", "Mode": "ignored"},
    {"Identifier": "descriptors", "Title": "Molecular weight (RDKit)"},
    {"Identifier": "eos9new", "Title": "A new one", "Task": ["Classification"], "Biomedical Area": "Malaria"},
    {"Title": "no identifier"},
    {"Identifier": "Bad Id!"},
]
r = s.api("POST", "/api/models/import-catalog", token=adm, json=CAT)
t.status(r, 200, "import: 200")
rep = r.json or {}
t.is_((rep.get("updated"), rep.get("created")), (["eos3b5e"], []), "registered model updated, nothing created")
sk = {x["identifier"]: x["reason"] for x in rep.get("skipped", [])}
t.like(sk.get("descriptors", ""), r"title.*eos3b5e", "a record whose title another model has: skipped, why")
t.like(sk.get("eos9new", ""), r"not registered", "an unregistered model: skipped without create")
t.ok(None in sk and "Bad Id!" in sk, "records without a valid Identifier: skipped")
m = s.api("GET", "/api/models/eos3b5e").json
t.is_((m["title"], m["slug"], m["description"], m["tasks"], m["output_types"], m["biomedical_areas"],
       m["source_code"], m["license"], m["interpretation"]),
      ("Molecular weight (RDKit)", "mw", "The weight.", ["Regression"], ["Value"], ["Any", "ADMET"],
       "https://example.org/src", "GPL-3.0", "g/mol"),
      "the catalogue's keys land on the typed fields (blanks trimmed, a string list, Source Code over GitHub)")
t.ok(m.get("enabled") is not False and "local_command" not in m, "the model stays as it was otherwise")

r = s.api("POST", "/api/models/import-catalog?create=true", token=adm, json=CAT[2:3])
t.is_((r.json or {}).get("created"), ["eos9new"], "create=true adds an unregistered model")
new = s.api("GET", "/api/models/eos9new", token=adm).json
t.ok(new["enabled"] is False and new["biomedical_areas"] == ["Malaria"], "disabled, with its fields")
t.ok("eos9new" not in [x["id"] for x in s.api("GET", "/api/models").json["items"]], "not in the public catalogue")
old = {"id": "descriptors", "identificationDetails": {"title": "Descriptors", "sourceCode": "https://o/s",
                                                      "targetOrganisms": ["Human"], "biomedicalAreas": ["Cancer"]}}
r = s.api("POST", "/api/models/import-catalog", token=adm, json=old)
t.is_((r.json or {}).get("updated"), ["descriptors"], "one record in the old hub's shape (identificationDetails)")
d = s.api("GET", "/api/models/descriptors").json
t.is_((d["title"], d["source_code"], d["target_organisms"]), ("Descriptors", "https://o/s", ["Human"]), "read too")

t.status(s.api("POST", "/api/models/import-catalog", token=usr, json=CAT), 403, "a user: 403")
r = s.api("POST", "/api/models/import-catalog", token=adm, data="[]", headers={"Content-Type": "text/plain"})
t.status(r, 415, "not JSON: 415")
r = s.api("POST", "/api/models/import-catalog", token=adm, data="[{", headers={"Content-Type": "application/json"})
t.ok(r.status == 400 and error_code(r) == "bad_json", "broken JSON: 400 bad_json")
r = s.api("POST", "/api/models/import-catalog?create=yes", token=adm, json=[])
t.ok(r.status == 422 and error_code(r) == "invalid_parameter", "create=yes: 422 invalid_parameter")

# ---- modelhubctl import-catalog
tmp = tempfile.mkdtemp(prefix="t180-")
path = os.path.join(tmp, "catalog.json")
with open(path, "w") as f:
    json.dump([{"Identifier": "descriptors", "Title": "RDKit descriptors", "Task": ["Representation"]},
               {"Identifier": "eos0ctl", "Title": "From the command line"}], f)
r = s.ctl("import-catalog", path)
t.is_(r.returncode, 0, "modelhubctl import-catalog: exit 0")
t.like(r.stdout, r"updated model descriptors", "says what it updated")
t.like(r.stderr, r"skipped eos0ctl: not registered", "and what it skipped, why")
t.like(r.stdout, r"1 updated, 0 added, 1 skipped", "a summary line")
t.is_(s.api("GET", "/api/models/descriptors").json["tasks"], ["Representation"], "written")
r = s.ctl("import-catalog", path, "--create")
t.ok(r.returncode == 0 and "added (disabled) model eos0ctl" in r.stdout, "--create adds the other, disabled")
t.is_(s.sql("SELECT enabled, title FROM model WHERE id = 'eos0ctl'"), [("f", "From the command line")], "stored")
t.is_(s.ctl("import-catalog", os.path.join(tmp, "missing.json")).returncode, 1, "a missing file: exit 1")
s.stop()
t.done()
