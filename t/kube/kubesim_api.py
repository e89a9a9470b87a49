"""kubesim_api.py — the HTTP side of the Kubernetes API simulator: routing,
authentication and rule-based authorization, discovery and minimal OpenAPI,
list/watch/get/create/update/patch/delete, pods/log, nodes/proxy, the scale
subresource, metrics.k8s.io and server-side Table output for kubectl.

Runs in: the kubesim.py process, one thread per connection (ThreadingHTTPServer).
Called by: kubectl, the python client, modelhub's kubernetes backend.
Owns: per-connection state only; watches hold their connection until the
  timeout, the client closing it, or the simulator stopping.
"""

import base64
import copy
import http.server
import io
import json
import os
import select
import socket
import ssl
import time
import urllib.parse
import uuid

from kubesim_core import (
    AUTHZ, ApiError, KEY_MACHINE, KEY_MD, KIND_OF, METRICS, NAME_RE, RESOURCES, VERSION,
    api_group, api_resource_list, field_match, gone, invalid, iso, json_patch,
    label_match, log, merge_patch, node_ready, not_found, parse_field_selector,
    parse_iso, parse_label_selector, rand_suffix)
from kubesim_cluster import PodRT


# ---------------------------------------------------------------- Table output

def age(ts):
    """kubectl's short human duration of the time since ts."""
    d = int(max(0, time.time() - parse_iso(ts))) if ts else 0
    if d < 120:
        return "%ds" % d
    if d < 600:
        return "%dm%ds" % (d // 60, d % 60) if d % 60 else "%dm" % (d // 60)
    if d < 3 * 3600:
        return "%dm" % (d // 60)
    if d < 48 * 3600:
        return "%dh" % (d // 3600)
    return "%dd" % (d // 86400)


def pod_status_text(pod):
    st = pod.get("status") or {}
    reason = st.get("reason") or st.get("phase", "Pending")
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            t = state["terminated"]
            reason = t.get("reason") or ("Signal:%d" % t["signal"] if t.get("signal") else "ExitCode:%d" % t.get("exitCode", 0))
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def table_columns(key):
    """[(name, type, priority, cell function)] of kubectl's server-side columns."""
    name = ("Name", "string", 0, lambda o: o["metadata"]["name"])
    agec = ("Age", "string", 0, lambda o: age(o["metadata"].get("creationTimestamp")))
    if key == "pods":
        def ready(o):
            css = o["status"].get("containerStatuses") or []
            return "%d/%d" % (sum(1 for c in css if c.get("ready")), len(o["spec"].get("containers") or []))
        return [name, ("Ready", "string", 0, ready), ("Status", "string", 0, pod_status_text),
                ("Restarts", "string", 0, lambda o: str(sum(c.get("restartCount", 0) for c in o["status"].get("containerStatuses") or []))),
                agec, ("IP", "string", 1, lambda o: o["status"].get("podIP") or "<none>"),
                ("Node", "string", 1, lambda o: o["spec"].get("nodeName") or "<none>"),
                ("Nominated Node", "string", 1, lambda o: "<none>"),
                ("Readiness Gates", "string", 1, lambda o: "<none>")]
    if key == "nodes":
        def status(o):
            s = "Ready" if node_ready(o) else "NotReady"
            return s + (",SchedulingDisabled" if o["spec"].get("unschedulable") else "")
        return [name, ("Status", "string", 0, status), ("Roles", "string", 0, lambda o: "<none>"), agec,
                ("Version", "string", 0, lambda o: o["status"]["nodeInfo"]["kubeletVersion"]),
                ("Internal-IP", "string", 1, lambda o: o["status"]["addresses"][0]["address"]),
                ("External-IP", "string", 1, lambda o: "<none>"),
                ("OS-Image", "string", 1, lambda o: o["status"]["nodeInfo"]["osImage"]),
                ("Kernel-Version", "string", 1, lambda o: o["status"]["nodeInfo"]["kernelVersion"]),
                ("Container-Runtime", "string", 1, lambda o: o["status"]["nodeInfo"]["containerRuntimeVersion"])]
    if key == "events":
        return [("Last Seen", "string", 0, lambda o: age(o.get("lastTimestamp"))),
                ("Type", "string", 0, lambda o: o.get("type", "")),
                ("Reason", "string", 0, lambda o: o.get("reason", "")),
                ("Object", "string", 0, lambda o: "%s/%s" % (o["involvedObject"]["kind"].lower(), o["involvedObject"]["name"])),
                ("Message", "string", 0, lambda o: o.get("message", "")),
                ("Count", "integer", 1, lambda o: o.get("count", 1)), (name[0], name[1], 1, name[3])]
    if key == "namespaces":
        return [name, ("Status", "string", 0, lambda o: o["status"]["phase"]), agec]
    if key == KEY_MD:
        st = lambda o, k: (o.get("status") or {}).get(k, 0)  # noqa: E731
        return [name, ("Cluster", "string", 0, lambda o: o["spec"].get("clusterName", "")),
                ("Replicas", "integer", 0, lambda o: st(o, "replicas")),
                ("Ready", "integer", 0, lambda o: st(o, "readyReplicas")),
                ("Updated", "integer", 0, lambda o: st(o, "updatedReplicas")),
                ("Unavailable", "integer", 0, lambda o: st(o, "unavailableReplicas")),
                ("Phase", "string", 0, lambda o: (o.get("status") or {}).get("phase", "")), agec]
    if key == KEY_MACHINE:
        return [name, ("Cluster", "string", 0, lambda o: o["spec"].get("clusterName", "")),
                ("NodeName", "string", 0, lambda o: ((o.get("status") or {}).get("nodeRef") or {}).get("name", "")),
                ("ProviderID", "string", 0, lambda o: o["spec"].get("providerID", "")),
                ("Phase", "string", 0, lambda o: (o.get("status") or {}).get("phase", "")), agec]
    return [name, agec]


def to_table(key, objs, rv, with_columns=True):
    cols = table_columns(key)
    t = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
         "columnDefinitions": [{"name": c[0], "type": c[1], "format": "name" if c[0] == "Name" else "",
                                "description": c[0], "priority": c[2]} for c in cols] if with_columns else None,
         "rows": []}
    for o in objs:
        md = {k: v for k, v in o["metadata"].items() if k != "managedFields"}
        t["rows"].append({"cells": [c[3](o) for c in cols],
                          "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": md}})
    return t


def wants_table(accept):
    return "as=Table" in (accept or "") and ("v=v1;" in accept or accept.endswith("v=v1") or "v=v1," in accept)


# ---------------------------------------------------------------- HTTP

PUBLIC = {"/version", "/healthz", "/livez", "/readyz"}
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def rule_match(rules, verb, res, group, ns):
    """rules: "verb resource[/sub] [apiGroup] [ns=namespace] [key=value...]"
    (the format of t/kube/required-permissions.txt; its conditions, the other
    key=value words, are ignored); "*" matches any verb/resource/group."""
    for r in rules or []:
        parts = r.split("#")[0].split()
        if len(parts) < 2:
            continue
        rns = [p[3:] for p in parts[2:] if p.startswith("ns=")]
        rg = [p for p in parts[2:] if "=" not in p]
        rg = rg[0] if rg else ""
        if rg in ("core", '""'):
            rg = ""
        if (parts[0] in ("*", verb) and parts[1] in ("*", res) and rg in ("*", group)
                and (not rns or rns[0] == ns)):
            return True
    return False


def qint(q, name):
    """Integer query parameter (0 when absent); 400 BadRequest when malformed."""
    try:
        return int(q.get(name) or 0)
    except ValueError:
        raise ApiError(400, "BadRequest", 'invalid value for %s: "%s"' % (name, q.get(name)))


def jdump(obj):
    """Compact JSON, as the API server writes it."""
    return json.dumps(obj, separators=(",", ":"))


def pb_fields(data):
    """Protocol buffer wire format -> [(field number, value)]; length-delimited as bytes."""
    out, i = [], 0
    while i < len(data):
        key, i = pb_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = pb_varint(data, i)
        elif wt == 2:
            n, i = pb_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        elif wt == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ApiError(400, "BadRequest", "unsupported protobuf wire type %d" % wt)
        out.append((num, v))
    return out


def pb_varint(data, i):
    shift = val = 0
    while True:
        if i >= len(data):
            raise ApiError(400, "BadRequest", "truncated protobuf")
        b = data[i]
        i += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, i


def ssar_from_protobuf(raw):
    """kubectl auth can-i sends SelfSubjectAccessReview as protobuf (magic "k8s\\0",
    runtime.Unknown{raw=2}); only spec.resourceAttributes is read."""
    if not raw.startswith(b"k8s\x00"):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s envelope")
    obj = dict(pb_fields(raw[4:])).get(2, b"")
    spec = dict(pb_fields(obj)).get(2, b"")
    ra = dict(pb_fields(spec)).get(1)
    names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
    attrs = {names[k]: v.decode() for k, v in pb_fields(ra or b"") if k in names and isinstance(v, bytes)}
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {}, "spec": {"resourceAttributes": attrs} if ra is not None else {}}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim/1.0"
    timeout = 300
    sim = None  # set by main()

    def setup(self):
        super().setup()
        # Headers, body and chunks are separate writes (TLS records): without
        # TCP_NODELAY each response waited ~40 ms for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt, *a):
        if self.sim.args.verbose:
            log("http", line=repr(fmt % a))

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def do_DELETE(self):
        self.handle_api("DELETE")

    # ---- output

    def send_bytes(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, code, obj):
        self.send_bytes(code, jdump(obj).encode())

    def start_stream(self, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def client_gone(self):
        """During a stream the client sends nothing: readable means closed."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            return bool(r)
        except (OSError, ValueError):
            return True

    # ---- request

    def handle_api(self, method):
        self.close_connection = False
        try:
            n = int(self.headers.get("Content-Length") or 0)
            self.raw_body = self.rfile.read(n) if n > 0 else b""
            u = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(u.path)
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            self.user = self.authenticate(path)
            self.route(method, path.rstrip("/") or "/", q)
        except ApiError as e:
            self.send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:
            import traceback
            traceback.print_exc()
            try:
                self.send_json(500, ApiError(500, "InternalError", "kubesim: %r" % e).status())
            except OSError:
                self.close_connection = True

    def authenticate(self, path):
        auth = self.headers.get("Authorization", "")
        tok = auth[7:].strip() if auth.startswith("Bearer ") else None
        user = self.sim.tokens.get(tok) if tok else None
        if user is None and path not in PUBLIC:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user or {"name": "system:anonymous"}

    def allowed(self, verb, res, group, ns):
        if group == AUTHZ[0] and res == "selfsubjectaccessreviews":
            return True  # like system:basic-user: anyone may ask what they may do
        u = self.user
        return not (rule_match(u.get("deny"), verb, res, group, ns)
                    or ("allow" in u and not rule_match(u["allow"], verb, res, group, ns)))

    def access_review(self):
        """POST selfsubjectaccessreviews (kubectl auth can-i): evaluates the token's rules."""
        body = self.body()
        ra = ((body or {}).get("spec") or {}).get("resourceAttributes")
        if not isinstance(ra, dict):
            raise invalid("SelfSubjectAccessReview", "", "spec.resourceAttributes: Required value")
        res = ra.get("resource", "") + ("/" + ra["subresource"] if ra.get("subresource") else "")
        ok = self.allowed(ra.get("verb", ""), res, ra.get("group", ""), ra.get("namespace") or None)
        body["status"] = {"allowed": ok}
        if not ok:
            body["status"]["denied"] = True
        body.setdefault("metadata", {})["creationTimestamp"] = None
        self.send_json(201, body)

    def authorize(self, verb, res, group, ns, name):
        u = self.user
        if not self.allowed(verb, res, group, ns):
            base = res.split("/")[0]
            what = ('%s "%s"' % (base if not group else base + "." + group, name)) if name else (base if not group else base + "." + group)
            scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
            raise ApiError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
                           % (what, u.get("name", "unknown"), verb, res, group, scope),
                           {"name": name or "", "group": group, "kind": base})

    def body(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            if self.path.split("?")[0].endswith("/selfsubjectaccessreviews"):
                return ssar_from_protobuf(self.raw_body)
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json, application/yaml")
        if not self.raw_body:
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        try:
            return json.loads(self.raw_body)
        except ValueError:
            try:
                import yaml
                return yaml.safe_load(self.raw_body)
            except Exception:
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")

    def route(self, method, path, q):
        sim = self.sim
        if path == "/version":
            return self.send_json(200, VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        if path.startswith("/kubesim/"):
            return self.admin(method, path)
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": "127.0.0.1:%d" % sim.args.port}]})
        if path == "/apis":
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [api_group(gv) for gv in RESOURCES if gv[0]]})
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self.openapi_v3(path[len("/openapi/v3"):].strip("/"))
        if self.inject_fault(method, path):
            return None
        return self.route_checked(method, path, q)

    def route_checked(self, method, path, q=None):
        """The API routes proper (after discovery and fault injection)."""
        sim = self.sim
        if q is None:
            u = urllib.parse.urlsplit(self.path)
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            gv, rest = ("", parts[1]), parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            gv, rest = (parts[1], parts[2]), parts[3:]
        elif parts[0] == "apis" and len(parts) == 2:
            for g in RESOURCES:
                if g[0] == parts[1]:
                    return self.send_json(200, api_group(g))
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if gv not in RESOURCES:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self.send_json(200, api_resource_list(gv))
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in RESOURCES[gv] and RESOURCES[gv][rest[2]]["ns"]:
            ns, rest = rest[1], rest[2:]
        res = rest[0]
        if res not in RESOURCES[gv]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        d = RESOURCES[gv][res]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        tail = "/".join(rest[3:])
        if d["ns"] and name and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub and sub not in d["subs"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if tail and sub != "proxy":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        watch = q.get("watch", "") in ("1", "true", "True")
        verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
        if verb in WRITE_VERBS and gv != AUTHZ:
            sim.audit_write(self.user.get("name", ""), verb, res + ("/" + sub if sub else ""), gv[0], ns, name,
                            self.allowed(verb, res + ("/" + sub if sub else ""), gv[0], ns))
        self.authorize(verb, res + ("/" + sub if sub else ""), gv[0], ns, name)
        if verb not in (d["subs"][sub] if sub else d["verbs"]):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if gv == METRICS:
            return self.metrics_api(res, ns, name, q)
        if gv == AUTHZ:
            return self.access_review()
        key = d["store"]
        if method == "GET" and not name:
            lreqs = parse_label_selector(q.get("labelSelector", ""))
            freqs = parse_field_selector(res, q.get("fieldSelector", ""))
            if watch:
                return self.watch(key, ns, lreqs, freqs, q)
            return self.list(key, ns, lreqs, freqs, q)
        if method == "POST" and not name:
            return self.create(key, d, ns, q)
        if sub == "log":
            return self.pod_log(ns, name, q)
        if sub == "proxy":
            return self.node_proxy(name, tail)
        if sub == "scale":
            return self.scale(method, ns, name)
        if method == "GET":
            with sim.store.lock:
                obj = sim.store.get(key, ns, name)
                if obj is None:
                    raise not_found(res, name, gv[0])
                if wants_table(self.headers.get("Accept")) and not sub:
                    return self.send_json(200, to_table(key, [obj], obj["metadata"]["resourceVersion"]))
                return self.send_json(200, obj)
        if method in ("PUT", "PATCH"):
            return self.update(key, res, gv[0], d["kind"], ns, name, sub, method)
        if method == "DELETE":
            return self.delete(key, res, gv[0], ns, name, q)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def inject_fault(self, method, path):
        """Answer with an injected fault (see admin /kubesim/faults) when one
        matches this request: True when the request was answered (or cut)."""
        f = self.sim.take_fault(method, path)
        if f is None:
            return False
        log("fault injected", method=method, path=path, code=f.get("code", 0), reset=int(bool(f.get("reset"))),
            after=int(bool(f.get("after"))), delay=f.get("delay", 0))
        if f.get("delay"):
            time.sleep(float(f["delay"]))  # a slow API server; then the fault, or the normal answer
            if not f.get("reset") and not f.get("code") and not f.get("after"):
                return False
        if f.get("after"):
            # the request is carried out, then the connection is cut before
            # the answer: the client cannot know it succeeded
            real, self.wfile = self.wfile, io.BytesIO()
            try:
                self.route_checked(method, path)
            finally:
                self.wfile = real
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if f.get("reset"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        code = int(f.get("code", 500))
        if code == 403 and f.get("quota", True):
            # what the ResourceQuota admission plugin answers
            err = ApiError(403, "Forbidden", f.get("message") or
                           'pods "x" is forbidden: exceeded quota: modelhub-quota, requested: cpu=100m, '
                           'used: cpu=4, limited: cpu=4')
        else:
            err = ApiError(code, {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "Timeout",
                                  403: "Forbidden"}.get(code, "InternalError"),
                           f.get("message") or "kubesim: injected fault %d" % code)
        data = jdump(err.status()).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if f.get("retry_after") is not None:
            self.send_header("Retry-After", str(f["retry_after"]))
        self.end_headers()
        self.wfile.write(data)
        return True

    def admin(self, method, path):
        """Fault injection and inspection for tests (full-access token only):
        POST /kubesim/drop-watches  cut every open watch (no final chunk: a network drop)
        POST /kubesim/compact       forget the watch history: every older version is 410
        POST /kubesim/faults        body [{"method","path" (regular expression, searched),
                                    "code" (429, 5xx, 403: "exceeded quota" unless "quota": false)
                                    or "reset": true (cut, not carried out) or "after": true
                                    (carried out, then cut before the answer), "retry_after",
                                    "delay" (seconds before the answer; alone: a slow but normal
                                    answer), "message", "count"}]: the next count matching
                                    requests fail so; [] clears
        GET  /kubesim/faults        the faults with the counts left (how many were used)
        POST /kubesim/node-ready    body {"node", "ready": bool}: the kubelet stops (or resumes)
                                    posting Ready; NotReady nodes get the not-ready NoSchedule
                                    taint, their pods keep running (a kubelet partition)
        POST /kubesim/evict         body {"namespace", "name", "message"}: kubelet eviction (node
                                    pressure): containers killed, pod Failed, reason Evicted
        GET  /kubesim/audit         every write request seen (user, verb, resource, allowed),
                                    also appended to <state-dir>/audit.jsonl"""
        if self.user.get("name") != "admin":
            raise ApiError(403, "Forbidden", "kubesim admin endpoints need the --token token")
        if path == "/kubesim/faults" and method == "GET":
            with self.sim.audit_lock:
                return self.send_json(200, {"items": [{k: v for k, v in f.items() if k != "re"}
                                                      for f in self.sim.faults]})
        if path == "/kubesim/audit" and method == "GET":
            with self.sim.audit_lock:
                return self.send_json(200, {"items": list(self.sim.audit)})
        if method != "POST":
            raise ApiError(405, "MethodNotAllowed", "POST only")
        st = self.sim.store
        if path == "/kubesim/faults":
            faults = self.body()
            if not isinstance(faults, list) or not all(isinstance(f, dict) and f.get("path") for f in faults):
                raise ApiError(400, "BadRequest", "faults: a list of objects with a path")
            self.sim.set_faults(faults)
            return self.send_json(200, {"faults": len(faults)})
        if path == "/kubesim/node-ready":
            b = self.body() or {}
            if not self.sim.set_node_ready(b.get("node", ""), bool(b.get("ready"))):
                raise not_found("nodes", b.get("node", ""))
            return self.send_json(200, {"node": b.get("node"), "ready": bool(b.get("ready"))})
        if path == "/kubesim/evict":
            b = self.body() or {}
            if not self.sim.evict_pod(b.get("namespace", "default"), b.get("name", ""),
                                      b.get("message") or "The node was low on resource: memory."):
                raise not_found("pods", b.get("name", ""))
            return self.send_json(200, {"evicted": b.get("name")})
        if path == "/kubesim/drop-watches":
            with st.cond:
                n = self.sim.open_watches
                self.sim.watch_gen += 1
                st.cond.notify_all()
            log("watches dropped", count=n)
            return self.send_json(200, {"dropped": n})
        if path == "/kubesim/compact":
            with st.lock:
                st.hist.clear()
                st.epoch = st.rv
                st.dropped = False
                st.cond.notify_all()
            log("history compacted", rv=st.rv)
            return self.send_json(200, {"resourceVersion": str(st.rv)})
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def openapi_v3(self, gvpath):
        """Just enough OpenAPI v3 for kubectl: each PATCH operation declares the
        fieldValidation parameter, so kubectl validates on the server (and we
        accept the object as sent) instead of downloading full schemas."""
        gvs = {("api/v1" if not g else "apis/%s/%s" % (g, v)): (g, v) for g, v in RESOURCES}
        if not gvpath:
            return self.send_json(200, {"paths": {k: {"serverRelativeURL": "/openapi/v3/%s?hash=kubesim1" % k}
                                                  for k in gvs}})
        if gvpath not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        g, v = gvs[gvpath]
        paths = {}
        for res, d in RESOURCES[(g, v)].items():
            base = "/" + gvpath + ("/namespaces/{namespace}" if d["ns"] else "") + "/" + res
            gvk = {"group": g, "version": v, "kind": d["kind"]}
            params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
            op = {"x-kubernetes-group-version-kind": gvk, "parameters": params,
                  "responses": {"200": {"description": "OK"}}}
            paths[base] = {"post": dict(op, **{"x-kubernetes-action": "post"})}
            paths[base + "/{name}"] = {"patch": dict(op, **{"x-kubernetes-action": "patch"}),
                                       "put": dict(op, **{"x-kubernetes-action": "put"})}
        self.send_json(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
                             "paths": paths, "components": {"schemas": {}}})

    # ---- collection verbs

    def list(self, key, ns, lreqs, freqs, q):
        st = self.sim.store
        with st.lock:
            items = [o for o in st.list(key, ns) if label_match(lreqs, o["metadata"].get("labels")) and field_match(freqs, o)]
            rv = st.rv
            if q.get("resourceVersionMatch") == "Exact" and q.get("resourceVersion") not in (None, "", str(rv)):
                raise gone("too old resource version: %s (%d)" % (q["resourceVersion"], rv))
            if q.get("continue"):
                # the token names the last item served, so deletions between
                # pages never skip an item; its version is served again
                try:
                    tok = json.loads(base64.urlsafe_b64decode(q["continue"].encode()))
                    after, rv = tuple(tok["after"]), int(tok["rv"])
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "BadRequest", "continue key is not valid")
                if rv < st.oldest():
                    raise gone("The provided continue parameter is too old to display a consistent list result. "
                               "You can start a new list without the continue parameter.")
                items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
            meta = {"resourceVersion": str(rv)}
            limit = qint(q, "limit")
            if limit > 0 and len(items) > limit:
                meta["remainingItemCount"] = len(items) - limit
                items = items[:limit]
                last = items[-1]["metadata"]
                meta["continue"] = base64.urlsafe_b64encode(jdump(
                    {"after": [last.get("namespace", ""), last["name"]], "rv": rv}).encode()).decode()
            kind, apiv = KIND_OF[key]
            if wants_table(self.headers.get("Accept")):
                t = to_table(key, items, rv)
                t["metadata"].update(meta)
                body = jdump(t).encode()
            else:
                if "." not in apiv.split("/")[0]:  # built-in group: items carry no kind/apiVersion
                    items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
                body = jdump({"kind": kind + "List", "apiVersion": apiv, "metadata": meta, "items": items}).encode()
        self.send_bytes(200, body)

    def watch(self, key, ns, lreqs, freqs, q):
        st = self.sim.store
        rvp = q.get("resourceVersion", "")
        deadline = time.time() + qint(q, "timeoutSeconds") if q.get("timeoutSeconds") else None

        def matches(o):
            return (o is not None and (ns is None or o["metadata"].get("namespace", "") == ns)
                    and label_match(lreqs, o["metadata"].get("labels")) and field_match(freqs, o))
        table = wants_table(self.headers.get("Accept"))
        first = [True]

        def wrap(o):
            if not table:
                return o
            t = to_table(key, [o], o["metadata"]["resourceVersion"], first[0])
            first[0] = False
            return t
        err, initial = None, []
        with st.lock:
            if rvp in ("", "0"):
                initial = [jdump({"type": "ADDED", "object": wrap(o)}) for o in st.list(key, ns) if matches(o)]
                since = st.rv
            else:
                try:
                    since = int(rvp)
                except ValueError:
                    raise ApiError(400, "BadRequest", 'invalid resource version "%s"' % rvp)
                if since < st.oldest():
                    err = gone("too old resource version: %d (%d)" % (since, st.oldest() + 1))
                elif since > st.rv:
                    err = ApiError(504, "Timeout", "Too large resource version: %d, current: %d" % (since, st.rv),
                                   {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                    "retryAfterSeconds": 1})
        self.start_stream()
        if err:
            self.chunk((jdump({"type": "ERROR", "object": err.status()}) + "\n").encode())
            return self.end_stream()
        for line in initial:
            self.chunk((line + "\n").encode())
        gen = self.sim.watch_gen
        with st.lock:
            self.sim.open_watches += 1
        try:
            self.watch_loop(key, st, since, matches, wrap, deadline, q, gen)
        finally:
            with st.lock:
                self.sim.open_watches -= 1

    def watch_loop(self, key, st, since, matches, wrap, deadline, q, gen):
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true", "True")
        every = float(self.sim.timing.get("bookmark_every", 5.0))
        last_sent = time.time()
        while not self.sim.stopping.is_set():
            if deadline and time.time() >= deadline:
                break
            if self.client_gone():
                self.close_connection = True
                return
            if self.sim.watch_gen != gen:  # /kubesim/drop-watches: cut without the last chunk
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            lost = False
            with st.cond:  # never write to the socket while holding the lock
                if since < st.oldest():
                    lost = True
                    evs = []
                else:
                    evs = st.since(since)
                    if not evs:
                        st.cond.wait(0.5)
                    else:
                        since = evs[-1][0]
            if not evs and not lost:
                if bookmarks and time.time() - last_sent >= every:
                    kind, apiv = KIND_OF[key]
                    self.chunk((jdump({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": apiv,
                        "metadata": {"resourceVersion": str(since)}}}) + "\n").encode())
                    last_sent = time.time()
                continue
            if lost:
                self.chunk((jdump({"type": "ERROR", "object": gone(
                    "too old resource version: %d (%d)" % (since, st.oldest() + 1)).status()}) + "\n").encode())
                break
            out = []
            for rv, res, ons, typ, obj, old in evs:
                if res != key:
                    continue
                now_m = matches(obj)
                if typ == "MODIFIED":
                    was_m = matches(old)
                    typ = "MODIFIED" if now_m and was_m else "ADDED" if now_m else "DELETED" if was_m else None
                    if typ is None:
                        continue
                elif not now_m:
                    continue
                out.append(jdump({"type": typ, "object": wrap(obj)}) + "\n")
            if out:
                self.chunk("".join(out).encode())
                last_sent = time.time()
        self.end_stream()

    def create(self, key, d, ns, q):
        sim, st = self.sim, self.sim.store
        obj = self.body()
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        kind, apiv = KIND_OF[key]
        if obj.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)"
                           % (obj.get("apiVersion"), apiv))
        obj["kind"], obj["apiVersion"] = kind, apiv
        md = obj.setdefault("metadata", {})
        with st.lock:
            if d["ns"]:
                if md.get("namespace") not in (None, ns):
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
                md["namespace"] = ns
                if not st.get("namespaces", "", ns):
                    raise not_found("namespaces", ns)
            if not md.get("name"):
                if md.get("generateName"):
                    md["name"] = md["generateName"] + rand_suffix()
                else:
                    raise invalid(kind, "", "metadata.name: Required value: name or generateName is required")
            if len(md["name"]) > 253 or not NAME_RE.match(md["name"]):
                raise invalid(kind, md["name"], 'metadata.name: Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\'' % md["name"])
            if st.get(key, ns or "", md["name"]):
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (d["kind"].lower() + "s", md["name"]),
                               {"name": md["name"], "kind": d["kind"].lower() + "s"})
            if key == "pods":
                sim.admit_pod(obj, ns)
            elif key == "nodes":
                tmpl = obj
                new = sim.new_node(md["name"], {}, ready=True, extra_labels=md.get("labels"))
                new["spec"].update(tmpl.get("spec") or {})
                if (tmpl.get("status") or {}).get("capacity"):
                    new["status"]["capacity"].update(tmpl["status"]["capacity"])
                    new["status"]["allocatable"].update(tmpl["status"].get("allocatable") or tmpl["status"]["capacity"])
                obj = new
            elif key == "namespaces":
                obj = sim.new_namespace(md["name"])
            elif key == KEY_MD:
                obj.setdefault("spec", {}).setdefault("replicas", 1)
                obj.setdefault("status", {})
                obj["spec"].setdefault("selector", {"matchLabels": {"cluster.x-k8s.io/deployment-name": md["name"]}})
                obj["spec"].setdefault("clusterName", "kubesim")
                obj["spec"].setdefault("template", {"spec": {}})
                obj["spec"]["template"].setdefault("spec", {}).setdefault("infrastructureRef", {})
                md.setdefault("annotations", {}).setdefault("kubesim/node-template", "{}")
                md["generation"] = 1
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = iso()
            md.pop("resourceVersion", None)
            if q.get("dryRun"):
                return self.send_json(201, obj)
            st.add(key, obj)
            log("created", kind=kind, name=md["name"], ns=ns or "")
            self.send_json(201, obj)

    # ---- object verbs

    def update(self, key, res, group, kind, ns, name, sub, method):
        st = self.sim.store
        body = self.body()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        with st.lock:
            cur = st.get(key, ns, name)
            if cur is None:
                raise not_found(res, name, group)
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "the body of the request must be an object")
                new = copy.deepcopy(body)
                brv = (new.get("metadata") or {}).get("resourceVersion")
                if brv and brv != cur["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your changes to the latest version and try again' % (res, name),
                                   {"name": name, "kind": res})
                if (new.get("metadata") or {}).get("name") not in (None, name):
                    raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                                   % (new["metadata"]["name"], name))
            elif ctype == "application/json-patch+json":
                new = json_patch(cur, body)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "patch body must be a JSON object")
                new = merge_patch(cur, body, strategic=ctype.startswith("application/strategic"))
            else:
                raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json')
            for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if k in cur["metadata"]:
                    new.setdefault("metadata", {})[k] = cur["metadata"][k]
            new["kind"], new["apiVersion"] = cur["kind"], cur["apiVersion"]
            if sub == "status":
                final = copy.deepcopy(cur)
                final["status"] = new.get("status", {})
            else:
                final = new
                final["status"] = copy.deepcopy(cur.get("status", {}))
                if key == "pods" and final.get("spec") != cur["spec"]:
                    raise invalid("Pod", name, "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
                if key == KEY_MD:
                    r = (final.get("spec") or {}).get("replicas", 0)
                    if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                        raise invalid(kind, name, "spec.replicas: Invalid value: %r: must be greater than or equal to 0" % (r,))
                if final.get("spec") != cur.get("spec") and "generation" in cur["metadata"]:
                    final["metadata"]["generation"] = cur["metadata"]["generation"] + 1
            final["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if final != cur:
                final = st.replace(key, final)
                log("updated", kind=kind, name=name, how=method if method == "PUT" else ctype.split("/")[1])
            self.send_json(200, final)

    def delete(self, key, res, group, ns, name, q):
        sim, st = self.sim, self.sim.store
        opts = {}
        if self.raw_body:
            try:
                opts = json.loads(self.raw_body) or {}
            except ValueError:
                raise ApiError(400, "BadRequest", "DeleteOptions body is not JSON")
        grace = q.get("gracePeriodSeconds", opts.get("gracePeriodSeconds"))
        if grace is not None:
            try:
                grace = max(0, int(grace))
            except (TypeError, ValueError):
                raise ApiError(400, "BadRequest", "invalid gracePeriodSeconds")
        with st.lock:
            cur = st.get(key, ns, name)
            if cur is None:
                raise not_found(res, name, group)
            pre = (opts.get("preconditions") or {})
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise ApiError(409, "Conflict", "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (pre["uid"], cur["metadata"]["uid"]))
            if key == "pods":
                obj = sim.delete_pod(cur, grace)
            elif key == "nodes":
                obj = copy.deepcopy(cur)
                sim.remove_node(name)
            elif key == KEY_MACHINE:
                obj = copy.deepcopy(cur)
                nref = (cur.get("status") or {}).get("nodeRef") or {}
                if nref.get("name"):
                    sim.remove_node(nref["name"])
                st.remove(key, ns, name)
            elif key == KEY_MD:
                obj = st.mutate(key, ns, name, lambda m: m["metadata"].setdefault("deletionTimestamp", iso()))
            elif key == "namespaces":
                for p in st.list("pods", name):
                    sim.delete_pod(p, 0)
                obj = st.remove(key, ns, name)
            else:
                obj = st.remove(key, ns, name)
            log("deleted", res=res, name=name, ns=ns or "", grace=grace)
            self.send_json(200, obj)

    # ---- subresources

    def pod_log(self, ns, name, q):
        sim, st = self.sim, self.sim.store
        with st.lock:
            pod = st.get("pods", ns, name)
            if pod is None:
                raise not_found("pods", name)
            names = [c["name"] for c in pod["spec"]["containers"]]
            cname = q.get("container") or (names[0] if len(names) == 1 else None)
            if cname is None:
                raise ApiError(400, "BadRequest", "a container name must be specified for pod %s, choose one of: [%s]"
                               % (name, " ".join(names)))
            if cname not in names:
                raise ApiError(400, "BadRequest", "container %s is not valid for pod %s" % (cname, name))
            cs = next((c for c in pod["status"].get("containerStatuses") or [] if c["name"] == cname), None)
            prev = q.get("previous") in ("1", "true", "True")
            if cs is None or ("waiting" in cs["state"] and cs["restartCount"] == 0 and not cs.get("lastState")):
                why = (cs or {}).get("state", {}).get("waiting", {}).get("reason", "ContainerCreating")
                raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: %s' % (cname, name, why))
            n = cs["restartCount"]
            uid = pod["metadata"]["uid"]
            rt = PodRT(ns, name, uid, "", "")
            if prev:
                if n == 0:
                    raise ApiError(400, "BadRequest", 'previous terminated container "%s" in pod "%s" not found' % (cname, name))
                n -= 1
            elif not os.path.exists(sim.log_path(rt, cname, n)) and n > 0:
                n -= 1
            path = sim.log_path(rt, cname, n)
        follow = q.get("follow") in ("1", "true", "True")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        if q.get("tailLines"):
            t = qint(q, "tailLines")
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-t:]) if t > 0 else b""
        if q.get("limitBytes"):
            data = data[:qint(q, "limitBytes")]
        if not follow:
            return self.send_bytes(200, data, "text/plain")
        self.start_stream("text/plain")
        self.chunk(data)
        pos = os.path.getsize(path) if os.path.exists(path) else 0
        while not self.client_gone():
            with open(path, "rb") as f:
                f.seek(pos)
                more = f.read()
            pos += len(more)
            self.chunk(more)
            with st.lock:
                rtl = sim.rts.get(uid)
                running = rtl is not None and cname in rtl.procs
            if not running and not more:
                break
            time.sleep(0.2)
        self.end_stream()

    def node_proxy(self, name, tail):
        sim, st = self.sim, self.sim.store
        with st.lock:
            node = st.get("nodes", "", name)
            if node is None:
                raise not_found("nodes", name)
            err = (node["metadata"].get("annotations") or {}).get("kubesim/proxy-error")
            ready = node_ready(node)
        if err:
            code = int(err) if err.isdigit() else 503
            raise ApiError(code, "ServiceUnavailable" if code == 503 else "InternalError",
                           "error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused")
        if not ready and name in sim.ready_at:
            raise ApiError(503, "ServiceUnavailable",
                           "error trying to reach service: dial tcp 127.0.0.1:10250: connect: connection refused")
        if tail == "metrics/resource":
            return self.send_bytes(200, sim.resource_metrics(name).encode(), "text/plain; version=0.0.4; charset=utf-8")
        if tail in ("healthz", ""):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        self.send_bytes(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def scale(self, method, ns, name):
        st = self.sim.store

        def scale_of(md):
            return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {"name": name, "namespace": ns, "uid": md["metadata"]["uid"],
                                 "resourceVersion": md["metadata"]["resourceVersion"],
                                 "creationTimestamp": md["metadata"]["creationTimestamp"]},
                    "spec": {"replicas": md["spec"].get("replicas", 0)},
                    "status": {"replicas": (md.get("status") or {}).get("replicas", 0),
                               "selector": (md.get("status") or {}).get("selector", "")}}
        with st.lock:
            md = st.get(KEY_MD, ns, name)
            if md is None:
                raise not_found("machinedeployments", name, "cluster.x-k8s.io")
            if method == "GET":
                return self.send_json(200, scale_of(md))
            body = self.body()
            cur = scale_of(md)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if method == "PUT":
                new = body
                brv = ((body or {}).get("metadata") or {}).get("resourceVersion")
                if brv and brv != md["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on machinedeployments.cluster.x-k8s.io "%s": the object has been modified; please apply your changes to the latest version and try again' % name)
            elif ctype == "application/json-patch+json":
                new = json_patch(cur, body)
            else:
                new = merge_patch(cur, body)
            r = ((new or {}).get("spec") or {}).get("replicas")
            if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                raise invalid("Scale", name, "spec.replicas: Invalid value: %r: must be greater than or equal to 0" % (r,))

            def f(m):
                if m["spec"].get("replicas") != r:
                    m["spec"]["replicas"] = r
                    m["metadata"]["generation"] = m["metadata"].get("generation", 1) + 1
            md = st.mutate(KEY_MD, ns, name, f)
            log("scaled", md=name, replicas=r)
            self.send_json(200, scale_of(md))

    def metrics_api(self, res, ns, name, q):
        sim, st = self.sim, self.sim.store
        lreqs = parse_label_selector(q.get("labelSelector", ""))
        with st.lock:
            if res == "pods":
                if name:
                    pod = st.get("pods", ns, name)
                    m = sim.pod_metrics(pod) if pod else None
                    if m is None:
                        raise ApiError(404, "NotFound", 'podmetrics.metrics.k8s.io "%s/%s" not found' % (ns, name),
                                       {"name": name, "group": "metrics.k8s.io", "kind": "pods"})
                    return self.send_json(200, m)
                items = [m for m in (sim.pod_metrics(p) for p in st.list("pods", ns)
                                     if label_match(lreqs, p["metadata"].get("labels"))) if m]
                return self.send_json(200, {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                            "metadata": {}, "items": items})
            if name:
                node = st.get("nodes", "", name)
                if node is None:
                    raise ApiError(404, "NotFound", 'nodemetrics.metrics.k8s.io "%s" not found' % name,
                                   {"name": name, "group": "metrics.k8s.io", "kind": "nodes"})
                return self.send_json(200, sim.node_metrics(node))
            items = [sim.node_metrics(n) for n in st.list("nodes") if label_match(lreqs, n["metadata"].get("labels"))]
            return self.send_json(200, {"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                        "metadata": {}, "items": items})
