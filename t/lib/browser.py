"""
browser.py — headless Chromium for the browser tests (t/5xx-web-*.t).

Runs in: Python test scripts under /usr/bin/python3 with the Debian
packages chromium, chromium-driver and python3-selenium.
Called by: t/500-web-basic.t and the other 5xx tests:
    b = Browser(s.url, t)          # s = stack.Stack(), t = tap.TAP()
    b.go("#/login"); b.fill("#login-form [name=username]", "bob")
    b.wait_text("#current-user", "bob"); b.shot("logged-in")
Owns: one chromedriver process (and the Chromium it starts) with a fresh
profile in a temp dir; both are stopped by quit() (registered atexit).
Screenshots go to t/artifacts/ (created on demand; gitignored) under
$top_builddir, or the source tree without it.

NOTES
- Chromium flags for root in a container: --no-sandbox, and everything that
  would reach the network on its own is switched off, so a test never
  depends on (or waits for) the internet.
- The browser console is collected (goog:loggingPrefs); console_errors()
  returns SEVERE entries, which include CSP violations — tests assert there
  are none.
- Every HTTP response the page receives is seen too (Chromium's network
  events through chromedriver's performance log): a response >= 400 fails
  the test unless the test allowed it beforehand or afterwards with
  allow_http(status, method, path, why) — exactly the ones it causes on
  purpose (a wrong password's 401, a validation 422). console_errors()
  lists the unexpected ones as "HTTP 404 GET /api/x" (its `ignore` applies
  to console messages only, never to these), and each Browser adds one
  more test at t.done(), "<name>: no unexpected HTTP error response", so a
  browser whose console the test forgot to check is checked all the same.
- skip_reason() says why a test must skip (no chromium, driver or
  selenium) so a machine without them reports SKIP, not a failure.
"""

import atexit
import json
import os
import re
import shutil
import tempfile
import time

CHROMIUM = os.environ.get("MODELHUB_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("MODELHUB_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = float(os.environ.get("MODELHUB_BROWSER_WAIT", "15"))

_here = os.path.dirname(os.path.abspath(__file__))
ARTIFACTS = os.path.join(os.path.abspath(os.environ.get("top_builddir")
                                         or os.path.join(_here, "..", "..")), "t", "artifacts")


def skip_reason():
    """None when a browser test can run, else why not."""
    if not os.access(CHROMIUM, os.X_OK):
        return "chromium not installed (%s)" % CHROMIUM
    if not os.access(DRIVER, os.X_OK):
        return "chromedriver not installed (%s)" % DRIVER
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "python3-selenium not installed"
    return None


_CONTRAST_JS = """
function parse(c) {
  const m = /rgba?\\(([\\d.]+),\\s*([\\d.]+),\\s*([\\d.]+)(?:,\\s*([\\d.]+))?/.exec(c || '');
  return m ? [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]] : [0, 0, 0, 0];
}
function lum(c) {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function ratio(a, b) {
  const x = lum(a), y = lum(b);
  return Math.round(((Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05)) * 100) / 100;
}
function bgOf(e) {
  for (; e && e.nodeType === 1; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] >= 0.9) return c;
  }
  return [255, 255, 255, 1];
}
function lowContrast(root, minimum) {
  const out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const e = n.parentElement;
    if (!n.data.trim() || seen.has(e) || !e.offsetParent && getComputedStyle(e).position !== 'fixed') continue;
    seen.add(e);
    const cs = getComputedStyle(e);
    if (cs.visibility === 'hidden' || parseFloat(cs.opacity) === 0 || e.closest('.sr-only, [aria-hidden=true]')) continue;
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? Math.min(3, minimum) : minimum;
    const r = ratio(parse(cs.color), bgOf(e));
    if (r < need) out.push([r, n.data.trim().slice(0, 40), cs.color + ' on ' + getComputedStyle(e).backgroundColor]);
  }
  return out;
}
"""


class Browser:
    def __init__(self, base_url, tap=None, name="web"):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base = base_url.rstrip("/")
        self.t = tap
        self.name = name
        self.profile = tempfile.mkdtemp(prefix="modelhub-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-extensions",
                  "--window-size=1280,900", "--user-data-dir=" + self.profile):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        opts.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self._console = []
        self._http = []         # responses >= 400: dicts status, method, url, path
        self._methods = {}      # network requestId -> method
        self._allowed = []      # [status, method, compiled path, why, times seen, from index, to index]
        atexit.register(self.quit)
        if tap is not None and hasattr(tap, "before_done"):
            tap.before_done.append(self._check_http_at_done)

    # ---- navigation and waiting
    def go(self, route=""):
        """Load the app afresh at a hash route ('#/login') or a path ('/x')."""
        url = self.base + ("/" + route if route.startswith("#") else route)
        # A URL differing only in its hash would not reload the document.
        self.driver.get("about:blank")
        self.driver.get(url)
        self.wait_js("return document.body.dataset.ready === '1'", "app started")

    def route(self, route):
        """Change the hash route inside the running app."""
        self.driver.execute_script("location.hash = arguments[0]", route)

    def wait(self, cond, what, timeout=None):
        """Poll cond() until truthy; returns its value or raises."""
        deadline = time.time() + (timeout or WAIT_S)
        last = None
        while time.time() < deadline:
            try:
                v = cond()
                if v:
                    return v
            except Exception as e:  # element gone between find and read
                last = e
            time.sleep(0.1)
        self.shot("timeout-" + "".join(c if c.isalnum() else "-" for c in what)[:40])
        raise TimeoutError("browser: waited %.0f s for %s (%r); url=%s" % (
            timeout or WAIT_S, what, last, self.driver.current_url))

    def wait_js(self, script, what, timeout=None):
        return self.wait(lambda: self.driver.execute_script(script), what, timeout)

    def find(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def exists(self, css):
        return len(self.finds(css)) > 0

    def wait_for(self, css, timeout=None):
        """The first element matching css once it is displayed."""
        def cond():
            for e in self.finds(css):
                if e.is_displayed():
                    return e
            return None
        return self.wait(cond, "element " + css, timeout)

    def wait_gone(self, css, timeout=None):
        return self.wait(lambda: not any(e.is_displayed() for e in self.finds(css)),
                         "no element " + css, timeout)

    def wait_text(self, css, text, timeout=None):
        """Element css whose text contains text."""
        def cond():
            for e in self.finds(css):
                if text in e.text:
                    return e
            return None
        return self.wait(cond, "%s containing %r" % (css, text), timeout)

    def wait_route(self, prefix, timeout=None):
        return self.wait(lambda: self.hash().startswith(prefix), "route " + prefix, timeout)

    def wait_idle(self, timeout=None):
        """No API call in flight (the global loader's counter is 0)."""
        return self.wait_js("return document.body.dataset.apiInflight === '0' "
                            "|| document.body.dataset.apiInflight === undefined",
                            "API calls finished", timeout)

    def hash(self):
        return self.driver.execute_script("return location.hash")

    # ---- forms
    def fill(self, css, value):
        e = self.wait_for(css)
        e.clear()
        e.send_keys(value)
        return e

    def click(self, css):
        e = self.wait_for(css)
        e.click()
        return e

    def field_error(self, form_css, name):
        """Text of the error slot of field `name` in the form."""
        es = self.finds('%s .field[data-field="%s"] .field-error' % (form_css, name))
        return es[0].text if es else None

    # ---- accessibility
    def unlabelled(self):
        """Visible form controls without an accessible name (label, aria-label,
        aria-labelledby; buttons: their text), as HTML snippets."""
        return self.driver.execute_script("""
return [...document.querySelectorAll('input, select, textarea, button')]
  .filter((e) => e.type !== 'hidden' && (e.offsetParent !== null || e.type === 'file'))
  .filter((e) => {
    if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')) return false;
    if (e.tagName === 'BUTTON') return !e.textContent.trim();
    return !(e.labels && e.labels.length);
  })
  .map((e) => e.outerHTML.slice(0, 160));""")

    def low_contrast(self, root="body", minimum=4.5):
        """Visible text under root whose contrast with its background is
        below WCAG AA (4.5:1; 3:1 for large text), as [(ratio, text, css
        colours)]. The background is the first opaque one up the tree."""
        return self.driver.execute_script(_CONTRAST_JS + """
return lowContrast(document.querySelector(arguments[0]), arguments[1]);""", root, minimum)

    def focus_ring_contrast(self, css):
        """Contrast of the focus outline of element css (focused by
        keyboard) against the background behind it; None without one."""
        return self.driver.execute_script(_CONTRAST_JS + """
const e = document.querySelector(arguments[0]);
if (!e) return null;
const cs = getComputedStyle(e);
if (cs.outlineStyle === 'none' || parseFloat(cs.outlineWidth) === 0) return null;
return ratio(parse(cs.outlineColor), bgOf(e.parentElement));""", css)

    def focus_rings(self, limit=40):
        """Tab through the page from its skip link (at most `limit` stops)
        and measure each focused element's focus ring: [(contrast of the
        outline against the background behind it, or None without an
        outline, 'tag#id[href] text')]."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        # a key press first: focus from the keyboard is what :focus-visible shows
        ActionChains(self.driver).send_keys(Keys.SHIFT).perform()
        self.driver.execute_script("window.__ringSeen = new Set();"
                                   "const s = document.querySelector('#skip-link'); if (s) s.focus();")
        out = []
        for _ in range(limit):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            r = self.driver.execute_script(_CONTRAST_JS + """
const e = document.activeElement;
if (!e || e === document.body || window.__ringSeen.has(e)) return null;
window.__ringSeen.add(e);
const cs = getComputedStyle(e);
const d = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (e.getAttribute('href') ? '[' + e.getAttribute('href') + ']' : '') + ' ' + (e.textContent || e.value || '').trim().slice(0, 30);
if (cs.outlineStyle === 'none' || parseFloat(cs.outlineWidth) === 0) return [null, d];
return [ratio(parse(cs.outlineColor), bgOf(e.parentElement)), d];""")
            if r is None:
                break
            out.append(tuple(r))
        return out

    # ---- evidence
    def shot(self, label):
        """Save a screenshot t/artifacts/<name>-<label>.png; returns the path."""
        try:
            os.makedirs(ARTIFACTS, exist_ok=True)
            path = os.path.join(ARTIFACTS, "%s-%s.png" % (self.name, label))
            self.driver.save_screenshot(path)
            return path
        except Exception:
            return None

    def shots(self, label, widths=(1280, 390)):
        """Screenshots of the whole page (not just the window) at each
        width (window height: a desktop 900, a phone 844):
        <name>-<label>-<width>.png."""
        paths = []
        for w in widths:
            self.driver.set_window_size(w, 900 if w >= 600 else 844)
            time.sleep(0.3)   # layout and a redraw at the new width
            paths.append(self.full_shot("%s-%d" % (label, w)))
        self.driver.set_window_size(1280, 900)
        return paths

    def full_shot(self, label):
        """Like shot() but the full height of the page (Chromium's
        captureBeyondViewport); falls back to the window."""
        import base64
        try:
            m = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = m.get("cssContentSize") or m["contentSize"]
            # The whole window's width: captured beyond the viewport the
            # page has no vertical scrollbar and is laid out that wide (the
            # layout viewport's width, without the scrollbar, cut 15 px
            # off the right of every tall page).
            width = self.driver.execute_script("return innerWidth")
            png = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width,
                         "height": min(size["height"], 16000), "scale": 1}})
            os.makedirs(ARTIFACTS, exist_ok=True)
            path = os.path.join(ARTIFACTS, "%s-%s.png" % (self.name, label))
            with open(path, "wb") as f:
                f.write(base64.b64decode(png["data"]))
            return path
        except Exception:
            return self.shot(label)

    def focused(self):
        """The focused element as 'tag#id.class[href]' (for focus checks)."""
        return self.driver.execute_script("""
const e = document.activeElement;
if (!e) return null;
return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (e.getAttribute('href') ? '[' + e.getAttribute('href') + ']' : '');""")

    def console(self):
        """Browser console entries since the last call (accumulated)."""
        self._drain_network()
        try:
            self._console.extend(self.driver.get_log("browser"))
        except Exception:
            pass
        return self._console

    def clear_console(self):
        """Forget the console entries seen so far (not the HTTP errors:
        those are checked over the browser's whole life)."""
        self.console()
        self._console.clear()

    # ---- HTTP error responses
    def allow_http(self, status, method, path, why):
        """Declare a response >= 400 the test causes on purpose: `status`
        to `method` (or '*') on a URL whose path (no query) fully matches
        the regular expression `path`; `why` says what causes it. It
        covers responses from now on (declare it just before the action
        that causes it), not those already received, until
        end_allow(the returned entry) when given."""
        if not why:
            raise ValueError("allow_http: say why the test causes %s %s %s" % (status, method, path))
        self._drain_network()
        entry = [int(status), method.upper(), re.compile(path), why, 0, len(self._http), None]
        self._allowed.append(entry)
        return entry

    def end_allow(self, entry):
        """An allow_http() entry covers nothing received from now on."""
        self._drain_network()
        entry[6] = len(self._http)

    def _drain_network(self):
        """Read Chromium's network events collected since the last call;
        remember every response with a status >= 400."""
        if self.driver is None:
            return
        try:
            entries = self.driver.get_log("performance")
        except Exception:
            return
        for e in entries:
            try:
                m = json.loads(e["message"])["message"]
                p = m.get("params") or {}
                if m.get("method") == "Network.requestWillBeSent":
                    self._methods[p["requestId"]] = p["request"]["method"]
                elif m.get("method") == "Network.responseReceived" and p["response"]["status"] >= 400:
                    url = p["response"]["url"]
                    path = re.sub(r"^[a-z]+://[^/]*", "", url).split("?")[0].split("#")[0] or "/"
                    self._http.append({"status": p["response"]["status"], "url": url, "path": path,
                                       "method": self._methods.get(p["requestId"], "?")})
            except (KeyError, TypeError, ValueError):
                continue

    def http_errors(self):
        """Responses >= 400 that no allow_http() entry covers, as
        'HTTP 404 GET /api/x' (over the browser's whole life)."""
        self._drain_network()
        out = []
        for i, r in enumerate(self._http):
            hit = [a for a in self._allowed if a[0] == r["status"] and a[1] in ("*", r["method"])
                   and a[2].fullmatch(r["path"]) and i >= a[5] and (a[6] is None or i < a[6])]
            for a in hit:
                a[4] += 1       # (counts each call of http_errors(): only 0 matters)
            if not hit:
                out.append("HTTP %d %s %s" % (r["status"], r["method"], r["path"]))
        return out

    def console_errors(self, ignore=()):
        """SEVERE console entries, minus those whose message contains any
        of `ignore` (say why in the test), plus every unexpected HTTP
        error response (http_errors(); `ignore` does not apply to them:
        allow_http() does). The console's own "Failed to load resource"
        line for a response seen on the network is left out (the network
        entry, with its method and path, stands for it)."""
        entries = self.console()
        seen = {r["url"] for r in self._http}
        out = []
        for e in entries:
            if e.get("level") != "SEVERE":
                continue
            msg = e.get("message", "")
            m = re.match(r"(\S+) - Failed to load resource: the server responded with a status of \d+", msg)
            if m and m.group(1) in seen:
                continue
            if any(i in msg for i in ignore):
                continue
            out.append(msg)
        return out + self.http_errors()

    def _check_http_at_done(self):
        """The test added at t.done() for each browser."""
        self._drain_network()
        errs = self.http_errors()
        self.t.is_(errs, [], "%s: no unexpected HTTP error response (>= 400) seen by the page" % self.name)
        for a in self._allowed:
            if not a[4]:
                self.t.diag("%s: allowed %d %s %s (%s) did not happen" % (self.name, a[0], a[1], a[2].pattern, a[3]))

    def quit(self):
        d = getattr(self, "driver", None)
        if d is not None:
            self._drain_network()
            self.driver = None
            try:
                d.quit()
            except Exception:
                pass
        if getattr(self, "profile", None):
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
