"""
tap.py — minimal TAP producer for the Python tests under t/.

Runs in: test scripts (t/1xx-*.t and later) under /usr/bin/python3.
Called by: every Python test: t = TAP(); t.ok(...); ...; t.done().
Owns: nothing but counters; output goes to stdout, which automake's
tap-driver (or prove) reads.

The plan ("1..N") is printed at the end (done_testing style), so tests
need not count. done() exits 1 when any test failed or none ran, so a test
that stops early (exception) is a failure, never a silent pass: an
uncaught exception is reported as "not ok" + diagnostics by the excepthook
installed here, and the plan is still printed.
"""

import json as _json
import os
import sys
import traceback


class TAP:
    """One TAP stream. Not thread-safe (tests print from one thread)."""

    current = None      # the TAP of this process (Stack shows logs on failure)

    def __init__(self):
        TAP.current = self
        self.died = False
        # Called by done() before the plan (Stack stops its daemons there
        # and reports crashes found in their logs as failed tests).
        self.before_done = []
        self.n = 0
        self.failed = 0
        self.finished = False
        self._install_hooks()

    # ---- results ----
    def ok(self, cond, name=""):
        """Record one test; returns bool(cond) so callers can add diag."""
        self.n += 1
        cond = bool(cond)
        name = str(name).replace("\n", " ").replace("#", "\\#")
        print("%s %d%s" % ("ok" if cond else "not ok", self.n,
                           " - " + name if name else ""), flush=True)
        if not cond:
            self.failed += 1
            # Report the caller's line: the first frame outside this file.
            here = os.path.abspath(__file__)
            for frame in reversed(traceback.extract_stack()):
                if os.path.abspath(frame.filename) != here:
                    self.diag("  Failed test '%s' at %s line %d."
                              % (name, frame.filename, frame.lineno))
                    break
            else:
                self.diag("  Failed test '%s'." % name)
        return cond

    def is_(self, got, want, name=""):
        """ok(got == want) with got/want shown on failure."""
        r = self.ok(got == want, name)
        if not r:
            self.diag("         got: %r" % (got,))
            self.diag("    expected: %r" % (want,))
        return r

    def isnt(self, got, unwanted, name=""):
        r = self.ok(got != unwanted, name)
        if not r:
            self.diag("         got: %r (should differ)" % (got,))
        return r

    def like(self, got, pattern, name=""):
        """ok(re.search(pattern, got)) with got shown on failure."""
        import re
        r = self.ok(got is not None and re.search(pattern, str(got)) is not None, name)
        if not r:
            self.diag("         got: %r" % (got,))
            self.diag("    expected to match: %r" % (pattern,))
        return r

    def status(self, resp, want, name=""):
        """ok(resp.status == want); shows the response body on failure."""
        r = self.ok(resp is not None and resp.status == want, name)
        if not r:
            if resp is None:
                self.diag("    no response")
            else:
                self.diag("    status %s, want %s" % (resp.status, want))
                self.diag("    body: %s" % resp.text[:800])
        return r

    def pass_(self, name=""):
        return self.ok(True, name)

    def fail(self, name=""):
        return self.ok(False, name)

    def skip(self, reason, count=1):
        """Skip count tests (printed as ok with a SKIP directive)."""
        for _ in range(count):
            self.n += 1
            print("ok %d # SKIP %s" % (self.n, reason), flush=True)

    # ---- output ----
    def diag(self, msg):
        """Diagnostic lines (# ...) — shown by the harness."""
        if not isinstance(msg, str):
            try:
                msg = _json.dumps(msg, indent=1, sort_keys=True, default=str)
            except (TypeError, ValueError):
                msg = repr(msg)
        for line in msg.splitlines() or [""]:
            print("# " + line, flush=True)

    note = diag

    # ---- ending ----
    def skip_all(self, reason):
        """Skip the whole file: prints '1..0 # SKIP reason' and exits 0."""
        self.finished = True
        print("1..0 # SKIP %s" % reason, flush=True)
        sys.exit(0)

    def bail_out(self, reason):
        self.finished = True
        print("Bail out! %s" % reason, flush=True)
        sys.exit(255)

    def done(self):
        """Print the plan and exit: 0 if all passed, 1 otherwise."""
        for f in list(self.before_done):
            try:
                f()
            except Exception as e:      # a cleanup failure is a failure
                self.ok(False, "cleanup %r: %r" % (f, e))
        self.finished = True
        print("1..%d" % self.n, flush=True)
        if self.n == 0:
            self.diag("no tests ran")
            sys.exit(1)
        if self.failed:
            self.diag("Looks like you failed %d test(s) of %d." % (self.failed, self.n))
            sys.exit(1)
        sys.exit(0)

    # ---- safety nets ----
    def _install_hooks(self):
        import atexit
        prev = sys.excepthook

        def hook(typ, val, tb):
            if typ in (SystemExit, KeyboardInterrupt) or self.finished:
                prev(typ, val, tb)
                return
            self.died = True
            self.ok(False, "test script died: %s: %s" % (typ.__name__, val))
            for line in traceback.format_exception(typ, val, tb):
                self.diag(line.rstrip("\n"))
            self.finished = True
            print("1..%d" % self.n, flush=True)
            # The default hook would only print the traceback again.

        sys.excepthook = hook

        def at_exit():
            if not self.finished:
                self.ok(False, "test script ended without calling done()")
                print("1..%d" % self.n, flush=True)
                self.finished = True

        atexit.register(at_exit)
