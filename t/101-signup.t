#!/usr/bin/python3
# 101-signup.t — POST /api/auth/signup: happy path, every validation error, duplicates (409), stored hash.
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP            # noqa: E402
from stack import Stack, fcgi_request   # noqa: E402

SIGNUPS = 5
t = TAP()
s = Stack(config={"auth.pwhash_fast": "1", "signup.per_ip_per_hour": str(SIGNUPS)})


def signup(**body):
    return s.api("POST", "/api/auth/signup", json=body)


def users():
    return int(s.sql("SELECT count(*) FROM app_user")[0][0])


# ---- happy path
r = signup(username="alice", email="Alice@Example.ORG", password="correct horse battery",
           first_name="Alice", last_name="Liddell")
t.status(r, 201, "signup answers 201")
u = r.json or {}
t.ok(isinstance(u.get("id"), int) and u["id"] > 0, "user id is a positive integer")
t.is_(u.get("username"), "alice", "username returned")
t.is_(u.get("email"), "alice@example.org", "email stored lower-cased")
t.is_(u.get("first_name"), "Alice", "first_name returned")
t.is_(u.get("last_name"), "Liddell", "last_name returned")
t.is_(u.get("roles"), ["USER"], "new accounts have the USER role only")
t.is_(u.get("disabled"), False, "not disabled")
t.like(u.get("created_at"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", "created_at is ISO UTC")
t.ok("password" not in r.text and "hash" not in r.text and "argon" not in r.text,
     "no password or hash in the answer")
row = s.sql("SELECT password_hash, roles::text FROM app_user WHERE username = 'alice'")
t.like(row and row[0][0], r"^\$argon2id\$", "password stored as an argon2id hash")
t.ok(row and "correct horse" not in row[0][0], "password not stored in clear")

r = s.api("POST", "/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
t.status(r, 200, "the new account can log in")

# optional names may be absent or null
r = signup(username="bob.b-1_x", email="bob@example.org", password="0123456789", first_name=None)
t.status(r, 201, "minimal signup (10-char password, all username characters, null name)")
t.is_(r.json and r.json.get("first_name"), None, "absent first_name is null")

# ---- validation errors: each names its field
n0 = users()
cases = [
    ("username missing", dict(email="c1@example.org", password="0123456789abc"), "username"),
    ("username too short", dict(username="ab", email="c2@example.org", password="0123456789abc"),
     "username"),
    ("username too long", dict(username="a" * 33, email="c3@example.org",
                               password="0123456789abc"), "username"),
    ("username upper case", dict(username="Carol", email="c4@example.org",
                                 password="0123456789abc"), "username"),
    ("username with space", dict(username="ca rol", email="c5@example.org",
                                 password="0123456789abc"), "username"),
    ("username with @", dict(username="ca@rol", email="c6@example.org",
                             password="0123456789abc"), "username"),
    ("username not a string", dict(username=42, email="c7@example.org",
                                   password="0123456789abc"), "username"),
    ("username empty", dict(username="", email="c7b@example.org",
                            password="0123456789abc"), "username"),
    ("email missing", dict(username="carol", password="0123456789abc"), "email"),
    ("email empty", dict(username="carol", email="", password="0123456789abc"), "email"),
    ("email null", dict(username="carol", email=None, password="0123456789abc"), "email"),
    ("email without @", dict(username="carol", email="carol.example.org",
                             password="0123456789abc"), "email"),
    ("email without domain dot", dict(username="carol", email="carol@localhost",
                                      password="0123456789abc"), "email"),
    ("email with two @", dict(username="carol", email="ca@rol@example.org",
                              password="0123456789abc"), "email"),
    ("email with space", dict(username="carol", email="ca rol@example.org",
                              password="0123456789abc"), "email"),
    ("email with double dot", dict(username="carol", email="ca..rol@example.org",
                                   password="0123456789abc"), "email"),
    ("email too long", dict(username="carol", email="c" * 60 + "@" + ".".join(["d" * 60] * 4) +
                            ".org", password="0123456789abc"),
     "email"),
    ("email not a string", dict(username="carol", email=["c@example.org"],
                                password="0123456789abc"), "email"),
    ("password missing", dict(username="carol", email="c@example.org"), "password"),
    ("password too short", dict(username="carol", email="c@example.org", password="123456789"),
     "password"),
    ("password equals username", dict(username="carolcarol", email="c@example.org",
                                      password="carolcarol"), "password"),
    ("password equals email", dict(username="carol", email="carol@example.org",
                                   password="carol@example.org"), "password"),
    ("password not a string", dict(username="carol", email="c@example.org",
                                   password=1234567890123), "password"),
    ("password with control char", dict(username="carol", email="c@example.org",
                                        password="0123456789\u0001abc"), "password"),
    ("password too long", dict(username="carol", email="c@example.org", password="x" * 1025),
     "password"),
    ("first_name too long", dict(username="carol", email="c@example.org",
                                 password="0123456789abc", first_name="n" * 101), "first_name"),
    ("last_name with newline", dict(username="carol", email="c@example.org",
                                    password="0123456789abc", last_name="a\nb"), "last_name"),
    ("first_name not a string", dict(username="carol", email="c@example.org",
                                     password="0123456789abc", first_name=5), "first_name"),
    ("unknown field", dict(username="carol", email="c@example.org", password="0123456789abc",
                           roles=["ADMIN"]), "roles"),
]
for name, body, field in cases:
    r = signup(**body)
    fields = ((r.json or {}).get("error") or {}).get("fields") or {}
    ok = t.status(r, 422, "%s: 422" % name)
    t.is_(ok and r.json["error"]["code"], "validation_failed", "%s: code validation_failed" % name)
    t.ok(field in fields and isinstance(fields[field], str) and fields[field],
         "%s: error.fields names %s" % (name, field))
    t.is_(sorted(fields), [field], "%s: only %s is named" % (name, field))

r = signup(username="A", email="nope", password="short", extra=1)
fields = ((r.json or {}).get("error") or {}).get("fields") or {}
t.status(r, 422, "everything wrong at once: 422")
t.is_(sorted(fields), ["email", "extra", "password", "username"], "every rejected field named")
t.is_(users(), n0, "no account was created by any rejected signup")

# ---- not JSON
r = s.api("POST", "/api/auth/signup", data="username=x", headers={"Content-Type": "text/plain"})
t.status(r, 415, "non-JSON content type: 415")
r = s.api("POST", "/api/auth/signup", data="{bad", headers={"Content-Type": "application/json"})
t.status(r, 400, "malformed JSON: 400")
r = s.api("POST", "/api/auth/signup", data="[1]", headers={"Content-Type": "application/json"})
t.status(r, 400, "JSON array instead of object: 400")
r = s.api("GET", "/api/auth/signup")
t.status(r, 405, "GET on signup: 405")

# ---- duplicates: 409 naming the field
r = signup(username="alice", email="other@example.org", password="0123456789abc")
t.status(r, 409, "duplicate username: 409")
f = ((r.json or {}).get("error") or {}).get("fields") or {}
t.is_(sorted(f), ["username"], "duplicate username: fields names username only")
t.is_(r.json and r.json["error"]["code"], "conflict", "duplicate username: code conflict")

r = signup(username="alice2", email="ALICE@example.org", password="0123456789abc")
t.status(r, 409, "duplicate email (other case): 409")
f = ((r.json or {}).get("error") or {}).get("fields") or {}
t.is_(sorted(f), ["email"], "duplicate email: fields names email only")

r = signup(username="alice", email="alice@example.org", password="0123456789abc")
t.status(r, 409, "both taken: 409")
f = ((r.json or {}).get("error") or {}).get("fields") or {}
t.is_(sorted(f), ["email", "username"], "both taken: both named")
t.is_(users(), n0, "duplicates created nothing")

# the original account is untouched by the failed duplicates
r = s.api("POST", "/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
t.status(r, 200, "original account still logs in with its own password")

# ---- signups per address per hour (only valid ones count; 2 made above from 127.0.0.1)
def signup_from(ip, i):
    body = {"username": "rate%d" % i, "email": "rate%d@example.org" % i, "password": "0123456789ab"}
    return fcgi_request(s.fcgi_socket, "POST", "/api/auth/signup", json.dumps(body).encode(),
                        {"Content-Type": "application/json"}, remote_addr=ip)


for i in range(SIGNUPS):
    t.status(signup_from("10.4.0.1", i), 201, "signup %d of %d from one address" % (i + 1, SIGNUPS))
r = signup_from("10.4.0.1", 99)
t.status(r, 429, "signup %d within the hour: 429" % (SIGNUPS + 1))
t.is_(((r.json or {}).get("error") or {}).get("code"), "rate_limited", "code rate_limited")
ra = r.headers.get("retry-after", "")
t.ok(re.match(r"^\d+$", ra) and 1 <= int(ra) <= 3600, "Retry-After in seconds (got %r)" % ra)
t.ok(not s.sql("SELECT 1 FROM app_user WHERE username = 'rate99'"), "no account created")
t.status(signup_from("10.4.0.2", 99), 201, "another address may still sign up")

# A NUL inside a JSON string never reaches the validators: 400 bad_json.
r = s.api("POST", "/api/auth/signup", json={"username": "nul_user", "email": "nul@example.org",
                                            "password": "0123456789\u0000abc"})
t.status(r, 400, "password with a NUL: 400")
t.is_((r.json or {}).get("error", {}).get("code"), "bad_json", "... code bad_json")
s.stop()
t.done()
