#!/usr/bin/python3
# 171-password-reset.t — forgot password: the same 202 for known and unknown accounts, a one-time link mailed over SMTP (a local test SMTP server) when configured, hashed, short-lived, single use, revoking every session; per-address and per-account limits; an admin-made link shown once; no email without SMTP.
import hashlib
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")), "t", "lib"))
from tap import TAP                     # noqa: E402
from stack import Stack, free_port      # noqa: E402
from flows import error_code as code    # noqa: E402


class SMTPSink:
    """A minimal SMTP server on loopback keeping each message (RFC 5321
    happy path: EHLO, MAIL, RCPT, DATA, QUIT)."""

    def __init__(self):
        self.port = free_port()
        self.messages = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 sink ESMTP\r\n")
        msg = {"rcpt": [], "data": ""}
        while True:
            line = f.readline()
            if not line:
                break
            cmd = line.decode().strip()
            up = cmd.upper()
            if up.startswith("EHLO") or up.startswith("HELO"):
                c.sendall(b"250-sink\r\n250 8BITMIME\r\n")
            elif up.startswith("MAIL FROM"):
                msg["from"] = cmd
                c.sendall(b"250 ok\r\n")
            elif up.startswith("RCPT TO"):
                msg["rcpt"].append(cmd)
                c.sendall(b"250 ok\r\n")
            elif up == "DATA":
                c.sendall(b"354 go\r\n")
                data = []
                while True:
                    ln = f.readline()
                    if ln in (b".\r\n", b""):
                        break
                    data.append(ln.decode())
                msg["data"] = "".join(data)
                self.messages.append(msg)
                msg = {"rcpt": [], "data": ""}
                c.sendall(b"250 queued\r\n")
            elif up == "QUIT":
                c.sendall(b"221 bye\r\n")
                break
            else:
                c.sendall(b"250 ok\r\n")
        c.close()


def wait_mail(sink, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end and len(sink.messages) < n:
        time.sleep(0.05)
    return len(sink.messages) >= n


t = TAP()
sink = SMTPSink()
s = Stack(hubd=False, config={"auth.pwhash_fast": "1", "mail.smtp_url": "smtp://127.0.0.1:%d" % sink.port,
                              "mail.from": "modelhub <hub@example.org>",
                              "site.url": "https://hub.example.org/", "reset.per_ip_per_hour": "6",
                              "auth.reset_seconds": "600"})
PW = "erin-password-1"
erin = s.user("erin", PW, "erin@example.com")
erin2 = s.login("erin")

# ---- asking: same answer whether or not the account exists
r = s.api("POST", "/api/auth/password-reset", json={})
t.is_((r.status, code(r)), (422, "validation_failed"), "no login: 422")
r = s.api("POST", "/api/auth/password-reset", json={"login": "nobody-here"})
t.status(r, 202, "unknown account: 202")
unknown_body = r.json
r = s.api("POST", "/api/auth/password-reset", json={"login": "ERIN@example.com"})
t.status(r, 202, "known account (by email, any case): 202")
t.is_(r.json, unknown_body, "same body for known and unknown accounts")
t.is_(r.json, {"accepted": True, "email_enabled": True}, "says email is on")
t.ok(wait_mail(sink, 1), "one message reached the SMTP server")
t.is_(len(sink.messages), 1, "nothing sent for the unknown account")
m = sink.messages[0]
t.like(m["rcpt"][0], r"<erin@example.com>", "sent to the account's address")
t.like(m["data"], r"(?m)^Subject: modelhub password reset\r?$", "subject")
t.like(m["data"], r"(?m)^From: modelhub <hub@example.org>\r?$", "from mail.from")
link = re.search(r"https://hub\.example\.org/#/reset-password\?token=([0-9a-f]{64})", m["data"])
t.ok(link, "link built from site.url (not the Host header)")
tok = link.group(1) if link else ""
stored = s.sql("SELECT encode(token_hash, 'hex'), created_by IS NULL,"
               " expires_at - created_at <= interval '600 seconds' FROM password_reset")
t.is_(stored, [(hashlib.sha256(bytes.fromhex(tok)).hexdigest(), "t", "t")],
      "only the token's hash stored, self-service, auth.reset_seconds long")
t.ok(tok not in open(s.tmp + "/log/fcgi.log").read(), "the token is not in the log")

# ---- using it
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": "ab" * 32, "new_password": "brand-new-pass-1"})
t.is_((r.status, code(r)), (422, "invalid_reset_token"), "unknown token: 422 invalid_reset_token")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": "zz", "new_password": "brand-new-pass-1"})
t.is_(code(r), "invalid_reset_token", "malformed token: same")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": tok, "new_password": "short"})
t.is_((r.status, code(r)), (422, "validation_failed"), "weak new password: 422")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": tok, "new_password": "erin@example.com"})
t.is_(r.status, 422, "new password equal to the email: 422")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": tok, "new_password": "brand-new-pass-1"})
t.status(r, 200, "reset with the link")
t.is_(s.api("GET", "/api/auth/session", token=erin).status, 401, "every session revoked (1)")
t.is_(s.api("GET", "/api/auth/session", token=erin2).status, 401, "every session revoked (2)")
t.is_(s.api("POST", "/api/auth/login", json={"username": "erin", "password": PW}).status, 401, "old password refused")
t.is_(s.api("POST", "/api/auth/login", json={"username": "erin", "password": "brand-new-pass-1"}).status, 200,
      "new password works")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": tok, "new_password": "another-pass-22"})
t.is_((r.status, code(r)), (422, "invalid_reset_token"), "a link works once")

# ---- expired links
r = s.api("POST", "/api/auth/password-reset", json={"login": "erin"})
t.ok(wait_mail(sink, 2), "second link mailed (by username)")
tok2 = re.search(r"token=([0-9a-f]{64})", sink.messages[1]["data"]).group(1)
s.sql("UPDATE password_reset SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": tok2, "new_password": "another-pass-22"})
t.is_(code(r), "invalid_reset_token", "an expired link is refused")

# ---- disabled accounts get nothing
adm = s.admin_token
uid = s.sql("SELECT id FROM app_user WHERE username = 'erin'")[0][0]
s.api("PATCH", "/api/admin/users/%s" % uid, token=adm, json={"disabled": True})
n = len(sink.messages)
r = s.api("POST", "/api/auth/password-reset", json={"login": "erin"})
t.status(r, 202, "disabled account: still 202")
time.sleep(0.5)
t.is_(len(sink.messages), n, "but no mail for a disabled account")
s.api("PATCH", "/api/admin/users/%s" % uid, token=adm, json={"disabled": False})

# ---- limits: per account (3 an hour, silently) and per address
s.sql("DELETE FROM rate_limit")
for i in range(6):
    s.api("POST", "/api/auth/password-reset", json={"login": "erin"})
time.sleep(0.5)
t.is_(len(sink.messages), n + 3, "at most 3 links an hour per account")
r = s.api("POST", "/api/auth/password-reset", json={"login": "erin"})
t.is_((r.status, code(r)), (429, "rate_limited"), "per address: the 7th in an hour gets 429")
t.like(r.headers.get("retry-after", ""), r"^\d+$", "with Retry-After")

# ---- an admin-made link, shown once
r = s.api("POST", "/api/admin/users/%s/reset-link" % uid, token=s.user("frank"))
t.is_(r.status, 403, "a USER cannot make reset links")
r = s.api("POST", "/api/admin/users/999999/reset-link", token=adm)
t.is_(r.status, 404, "unknown user: 404")
r = s.api("POST", "/api/admin/users/%s/reset-link" % uid, token=adm)
t.status(r, 201, "admin makes a link")
j = r.json or {}
t.like(j.get("url", ""), r"^https://hub\.example\.org/#/reset-password\?token=[0-9a-f]{64}$", "full url from site.url")
t.like(j.get("path", ""), r"^/#/reset-password\?token=[0-9a-f]{64}$", "and the path")
t.is_(s.sql("SELECT created_by IS NOT NULL FROM password_reset ORDER BY id DESC LIMIT 1")[0][0], "t",
      "remembered who made it")
r = s.api("POST", "/api/auth/password-reset/confirm", json={"token": j.get("token"), "new_password": "admin-given-pass-3"})
t.status(r, 200, "the admin's link resets the password")
t.is_(s.api("POST", "/api/auth/login", json={"username": "erin", "password": "admin-given-pass-3"}).status, 200,
      "and the new password works")

# ---- without SMTP: no email, the page is told to ask an admin
s.set_config(**{"mail.smtp_url": ""})
s.reload_fcgi()
time.sleep(1)
s.sql("DELETE FROM rate_limit")
n = len(sink.messages)
r = s.api("POST", "/api/auth/password-reset", json={"login": "erin"})
t.is_((r.status, r.json), (202, {"accepted": True, "email_enabled": False}), "no SMTP: 202, email_enabled false")
time.sleep(0.5)
t.is_(len(sink.messages), n, "and nothing sent")
t.done()
