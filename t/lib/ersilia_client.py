#!/usr/bin/python3
"""
ersilia_client.py — a small client that behaves like the old Ersilia hub's
documented Python client (ersilia-hub docs/INTEGRATION.md): it starts an
anonymous session with a fresh UUID, sends the lines of a file to a model,
polls until the request ends and writes the result lines to a file; or it
prints the model catalogue. Written here from the documented behaviour
(UPSTREAM.md §1, docs/api.md "Compatibility with the Ersilia hub API") to
check that modelhub serves such scripts unchanged; it uses the same library
(requests) and the same calls, in the same order.

Runs in: tests (t/142-ersilia-client.t) under /usr/bin/python3 (needs
python3-requests). Usage:
    ersilia_client.py BASE_URL MODEL_ID INPUT_FILE OUTPUT_FILE
    ersilia_client.py BASE_URL print_models
Environment: ERSILIA_POLL_SECONDS (default 10, as the old client), and
ERSILIA_TIMEOUT_SECONDS (default 600).
"""
import base64
import json
import os
import sys
import time
import uuid

import requests


def auth_header(base):
    r = requests.post("%s/api/auth/anonymous-login/%s" % (base, uuid.uuid4()))
    if r.status_code != 200:
        raise SystemExit("anonymous login: HTTP %d %s" % (r.status_code, r.text))
    session = json.dumps(r.json()["session"]).encode()
    return {"Authorization": "ErsiliaAnonymous " + base64.b64encode(session).decode()}


def run_model(base, model_id, src, dst):
    with open(src) as f:
        lines = f.readlines()
    hdr = auth_header(base)
    r = requests.post(base + "/api/work-requests", headers=hdr,
                      json={"model_id": model_id, "request_payload": {"entries": lines}})
    if r.status_code != 200:
        raise SystemExit("submit: HTTP %d %s" % (r.status_code, r.text))
    rid = r.json()["id"]
    poll = float(os.environ.get("ERSILIA_POLL_SECONDS", "10"))
    end = time.time() + float(os.environ.get("ERSILIA_TIMEOUT_SECONDS", "600"))
    while True:
        if time.time() > end:
            raise SystemExit("request time out reached")
        r = requests.get("%s/api/work-requests/%s" % (base, rid), headers=hdr,
                         params={"include_result": True, "csv_result": True})
        if r.status_code != 200:
            raise SystemExit("poll: HTTP %d %s" % (r.status_code, r.text))
        j = r.json()
        if j["request_status"] == "FAILED":
            raise SystemExit("job failed: %s" % j["request_status_reason"])
        if j["request_status"] == "COMPLETED":
            break
        time.sleep(poll)
    with open(dst, "w+") as f:
        for line in j["result"]:
            f.write(line + "\n")


def print_models(base):
    r = requests.get(base + "/api/models", headers=auth_header(base))
    if r.status_code != 200:
        raise SystemExit("models: HTTP %d %s" % (r.status_code, r.text))
    for m in r.json()["items"]:
        print("%s  |  [%s]" % (m["id"], "x" if m["enabled"] else " "))


if __name__ == "__main__":
    if len(sys.argv) == 5:
        run_model(*sys.argv[1:])
    elif len(sys.argv) == 3 and sys.argv[2] == "print_models":
        print_models(sys.argv[1])
    else:
        raise SystemExit(__doc__)
