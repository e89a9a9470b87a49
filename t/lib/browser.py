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
- skip_reason() says why a test must skip (no chromium, driver or
  selenium) so a machine without them reports SKIP, not a failure.
"""

import atexit
import os
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
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self._console = []
        atexit.register(self.quit)

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
            view = m.get("cssLayoutViewport") or m["layoutViewport"]
            png = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": view["clientWidth"],
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
        try:
            self._console.extend(self.driver.get_log("browser"))
        except Exception:
            pass
        return self._console

    def console_errors(self, ignore=()):
        """SEVERE console entries, minus those whose message contains any
        of `ignore` (e.g. the 401 a deliberate expiry produces)."""
        out = []
        for e in self.console():
            if e.get("level") != "SEVERE":
                continue
            msg = e.get("message", "")
            if any(i in msg for i in ignore):
                continue
            out.append(msg)
        return out

    def quit(self):
        d, self.driver = getattr(self, "driver", None), None
        if d is not None:
            try:
                d.quit()
            except Exception:
                pass
        if getattr(self, "profile", None):
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
