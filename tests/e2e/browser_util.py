# SPDX-License-Identifier: Apache-2.0
"""Helpers for the browser tests (test_browser.py): a real headless Chromium
driven by Selenium (Debian's chromium, chromium-driver, python3-selenium),
and the small servers those tests put around jwtd.

- `Browser`: one Chromium with a fresh profile, a 1000x900 window, every
  console message collected (to find Content-Security-Policy violations),
  cookies read through the DevTools protocol (they are HttpOnly: page
  scripts cannot see them), full-page screenshots into JWTD_ARTIFACTS;
- `Clock` and `Otp`: jwtd's test clock (JWTD_TEST_CLOCK) and an
  authenticator app on it (RFC 6238, SHA-1, 6 digits, 30 s), so that a test
  knows the time step jwtd is in and never waits for the next one;
- `StaticSite`: "another origin" (http.server) serving the pages a test
  gives it: the attacker's side of the CSRF tests;
- `AppUpstream`: the app behind nginx in the portal test, which shows what
  nginx told it about the user;
- `self_signed_cert`, `portal_nginx_conf`: TLS and the shipped
  deploy/nginx/jwtd-portal.conf adapted to free loopback ports.

Chromium runs with --host-resolver-rules="MAP *.jwtd.test 127.0.0.1" and
--ignore-certificate-errors (the portal test's names and its self-signed
certificate); neither changes anything for http://localhost.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

from e2e_util import REPO

CHROMIUM = os.environ.get("JWTD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JWTD_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1000, 900)
PORTAL_DOMAIN = "jwtd.test"
STEP = 30


def artifacts_dir():
    d = os.environ.get("JWTD_ARTIFACTS") or os.path.join(REPO, "build", "artifacts",
                                                          "screenshots")
    os.makedirs(d, exist_ok=True)
    return d


def unavailable():
    """Why no browser test can run here (None when they can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return "%s is not installed (apt-get install chromium chromium-driver)" % path
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "Selenium is not installed (apt-get install python3-selenium)"
    return None


# --------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------

class Browser:
    """One headless Chromium. `d` is the Selenium WebDriver."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        self.profile = tempfile.mkdtemp(prefix="jwtd-e2e-chromium-")
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=%d,%d" % WINDOW, "--user-data-dir=" + self.profile,
                  "--host-resolver-rules=MAP *.%s 127.0.0.1" % PORTAL_DOMAIN,
                  "--ignore-certificate-errors", "--lang=en-US",
                  "--password-store=basic", "--disable-features=Translate"):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service(CHROMEDRIVER, log_path=os.path.join(self.profile,
                                                                   "chromedriver.log"))
        self.d = webdriver.Chrome(service=self.service, options=o)
        self.d.set_window_size(*WINDOW)
        self.d.set_page_load_timeout(30)
        self.console = []          # every console entry seen so far: (url at the time, entry)

    def quit(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- state between tests ---------------------------------------------------

    def reset(self):
        """A clean slate: no page, no cookies, no cache, console drained."""
        self.d.get("about:blank")
        self.cdp("Network.clearBrowserCookies")
        self.cdp("Network.clearBrowserCache")
        self.drain_console()
        self.console = []

    def cdp(self, cmd, params=None):
        return self.d.execute_cdp_cmd(cmd, params or {})

    # -- console (CSP violations) --------------------------------------------

    def drain_console(self):
        try:
            entries = self.d.get_log("browser")
        except Exception:  # noqa: BLE001 - a dead page has no log
            entries = []
        url = self.url
        self.console.extend((url, e) for e in entries)
        return entries

    def csp_violations(self):
        """Console entries that report a Content-Security-Policy violation."""
        self.drain_console()
        out = []
        for url, e in self.console:
            msg = e.get("message", "")
            if "content security policy" in msg.lower() or "content-security-policy" in msg.lower():
                out.append("%s: %s" % (url, msg))
        return out

    # -- navigation --------------------------------------------------------------

    @property
    def url(self):
        try:
            return self.d.current_url
        except Exception:  # noqa: BLE001
            return "?"

    def go(self, url):
        self.drain_console()
        self.d.get(url)
        self.wait_loaded()

    def wait_loaded(self, timeout=20):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.d, timeout).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def wait(self, pred, timeout=20, what="condition"):
        """Poll pred() until true; an element that went away with a page
        (or is not there yet) counts as false, and so does Chromium's
        "unhandled inspector error" for a script run on an element of a
        document that is being replaced (seen on a passkey sign-in's
        navigation; it is not a StaleElementReferenceException)."""
        from selenium.common.exceptions import (JavascriptException, NoSuchElementException,
                                                StaleElementReferenceException,
                                                WebDriverException)
        from selenium.webdriver.support.ui import WebDriverWait

        def poll(d):
            try:
                return pred()
            except (NoSuchElementException, StaleElementReferenceException,
                    JavascriptException):
                raise
            except WebDriverException as e:
                if "inspector error" in str(e) or "Cannot find context" in str(e):
                    return False
                raise
        return WebDriverWait(self.d, timeout, poll_frequency=0.05,
                             ignored_exceptions=(NoSuchElementException,
                                                 StaleElementReferenceException,
                                                 JavascriptException)).until(
            poll, message="waiting for %s (at %s)" % (what, self.url))

    def wait_url(self, pred, timeout=20, what="URL"):
        self.wait(lambda: pred(self.url), timeout, what)
        self.wait_loaded()

    def mark_document(self):
        """Tag the current document, for wait_new_document()."""
        self.drain_console()
        self.d.execute_script("window.__jwtdTestOld = true;")

    def wait_new_document(self, timeout=20, what="the next page", or_else=None):
        """Wait until the tagged document was replaced by one that has
        loaded (or until or_else() is true: returns False then)."""
        def ready():
            if or_else is not None and or_else():
                return "else"
            return self.d.execute_script(
                "return !window.__jwtdTestOld && document.readyState === 'complete'")
        return self.wait(ready, timeout, what) is True

    def click_and_wait(self, element, timeout=20):
        """Click something that submits a form or follows a link, and wait
        until the next document has loaded."""
        from selenium.webdriver.support.ui import WebDriverWait
        self.drain_console()
        # A mark on the current window object: the next document has none.
        # (Selenium's staleness_of() on an element is not used: Chromium
        # sometimes answers "Node with given id does not belong to the
        # document" for the old node instead of "stale".)
        self.d.execute_script("window.__jwtd_before_click = true;")
        element.click()
        WebDriverWait(self.d, timeout, poll_frequency=0.05).until(
            lambda d: self._settled(lambda: d.execute_script(
                "return window.__jwtd_before_click !== true"
                " && document.readyState === 'complete';")))

    # -- reading the page ----------------------------------------------------

    def _settled(self, fn):
        """Run a DOM query; retry when chromedriver answers that the node it
        resolved left the document (seen once, right after a navigation)."""
        from selenium.common.exceptions import WebDriverException
        for attempt in range(40):
            try:
                return fn()
            except WebDriverException as e:
                if "does not belong to the document" not in str(e) or attempt == 39:
                    raise
                time.sleep(0.1)

    def find(self, css, by="css selector"):
        return self._settled(lambda: self.d.find_element(by, css))

    def find_all(self, css):
        return self._settled(lambda: self.d.find_elements("css selector", css))

    def has(self, css):
        return bool(self.find_all(css))

    def text(self, css="body"):
        return self.find(css).text

    def h1(self):
        found = self.find_all("h1")
        return found[0].text if found else ""

    def notices(self, kind="error"):
        return [e.text for e in self.find_all("p.notice.%s" % kind) if e.is_displayed()]

    def fill(self, css, value):
        el = self.find(css)
        el.clear()
        el.send_keys(value)
        return el

    def submit_form(self, form_css, fields=None, button_css="button[type=submit]"):
        """Fill the inputs of one form (name -> value) and press its button."""
        form = self.find(form_css)
        for name, value in (fields or {}).items():
            el = form.find_element("css selector", "[name='%s']" % name)
            el.clear()
            el.send_keys(value)
        self.click_and_wait(form.find_element("css selector", button_css))

    def fetch(self, url, **init):
        """fetch() from the current page: {"ok", "status", "text"} or
        {"error": "<TypeError ...>"} when the browser blocked it."""
        script = """
            const [url, init, done] = arguments;
            fetch(url, init).then(
                async r => done({ok: r.ok, status: r.status, type: r.type,
                                 text: r.type === "opaque" ? "" : await r.text()}),
                e => done({error: String(e)}));
        """
        return self.d.execute_async_script(script, url, init)

    # -- cookies ---------------------------------------------------------------

    def cookies(self):
        """Every cookie the browser holds, as the DevTools protocol reports
        them (name, value, domain, path, expires, httpOnly, secure, sameSite,
        session, ...), keyed by (name, domain)."""
        got = self.cdp("Network.getAllCookies")["cookies"]
        return {(c["name"], c["domain"]): c for c in got}

    def cookie(self, name):
        """The one cookie called `name` (None without); fails if several."""
        found = [c for (n, _), c in self.cookies().items() if n == name]
        assert len(found) <= 1, "several cookies %s: %r" % (name, found)
        return found[0] if found else None

    def delete_cookie(self, name, domain):
        self.cdp("Network.deleteCookies", {"name": name, "domain": domain})

    # -- screenshots -------------------------------------------------------------

    def shot(self, name):
        """The whole page (not only the window: the account page is long),
        1000 CSS pixels wide, as <JWTD_ARTIFACTS>/<name>.png."""
        self.wait_loaded()
        m = self.cdp("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        vp = m.get("cssLayoutViewport") or m["layoutViewport"]
        width = max(int(vp["clientWidth"]), 1)
        height = max(int(size["height"]), int(vp["clientHeight"]), 1)
        data = self.cdp("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 8000), "scale": 1}})
        path = os.path.join(artifacts_dir(), name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return path

    # -- passkeys: Chrome's virtual authenticator -------------------------------

    def add_authenticator(self):
        from selenium.webdriver.common.virtual_authenticator import (
            Protocol, Transport, VirtualAuthenticatorOptions)
        self.d.add_virtual_authenticator(VirtualAuthenticatorOptions(
            protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True,
            has_user_verification=True, is_user_verified=True))

    def remove_authenticator(self):
        if getattr(self.d, "_authenticator_id", None):
            self.d.remove_virtual_authenticator()

    def credentials(self):
        return self.d.get_credentials()


# --------------------------------------------------------------------------
# jwtd's test clock and an authenticator app on it
# --------------------------------------------------------------------------

class Clock:
    """JWTD_TEST_CLOCK: the file's first 8 bytes are a little-endian offset
    in milliseconds that jwtd adds to its clock. Only ever moved forward, so
    that nothing jwtd issued earlier carries a time in its future."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="jwtd-e2e-clock-")
        self.path = os.path.join(self.dir, "clock")
        self.offset_ms = 0
        with open(self.path, "wb") as f:
            f.write(struct.pack("<q", 0))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def now(self):
        return time.time() + self.offset_ms / 1000.0

    def step(self):
        return int(self.now() // STEP)

    def forward_to(self, t):
        off = int(t * 1000) - int(time.time() * 1000)
        off = max(off, self.offset_ms)
        with open(self.path, "r+b") as f:
            f.write(struct.pack("<q", off))
            f.flush()
        self.offset_ms = off


def hotp(key, counter):
    """RFC 4226 HOTP, 6 digits, SHA-1 (RFC 6238 TOTP with counter = step)."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


class Otp:
    """An authenticator app for one secret (base32, as the page shows it)."""

    def __init__(self, secret_b32, clock):
        s = secret_b32.replace(" ", "").upper()
        self.key = base64.b32decode(s + "=" * (-len(s) % 8))
        self.clock = clock
        self.last = None

    def at(self, step):
        return hotp(self.key, step)

    def fresh(self):
        """A code jwtd accepts now: for a step after every one used so far
        (jwtd takes a step once). When that step is ahead of jwtd's clock,
        the clock is moved to its start, so the code is the current one."""
        s = self.clock.step()
        step = s if self.last is None else max(self.last + 1, s)
        if step > s:
            self.clock.forward_to(step * STEP + 1)
        self.last = step
        return self.at(step)

    def wrong(self):
        near = {self.at(self.clock.step() + d) for d in range(-3, 4)}
        for n in range(1000000):
            code = "%06d" % ((n * 7919 + 123457) % 1000000)
            if code not in near:
                return code
        raise AssertionError("no wrong code")


# --------------------------------------------------------------------------
# Small HTTP servers around jwtd
# --------------------------------------------------------------------------

class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, body, ctype="text/html; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _Server:
    def __init__(self, handler, host="127.0.0.1", port=0):
        self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class StaticSite(_Server):
    """Another origin: serves `pages[path]` (HTML text) and records every
    request it got. Reached as http://localhost:PORT (same site as a jwtd on
    http://localhost, another origin) or http://127.0.0.1:PORT (another site)."""

    def __init__(self):
        site = self
        self.pages = {}
        self.seen = []

        class H(_Quiet):
            def do_GET(self):
                site.seen.append(self.path)
                path = urllib.parse.urlsplit(self.path).path
                if path in site.pages:
                    self._send(200, site.pages[path])
                else:
                    self._send(404, "not here")

        super().__init__(H)


class AppUpstream(_Server):
    """The app behind nginx: an HTML page naming the user nginx passed on
    (X-Auth-Username, X-Auth-User-Id); every request is recorded as
    (path, username, user id)."""

    def __init__(self):
        app = self
        self.seen = []

        class H(_Quiet):
            def do_GET(self):
                if self.path == "/favicon.ico":
                    self._send(404, "none")
                    return
                who = self.headers.get("X-Auth-Username")
                uid = self.headers.get("X-Auth-User-Id")
                app.seen.append((self.path, who, uid))
                esc = lambda s: (s or "").replace("&", "&amp;").replace("<", "&lt;")  # noqa: E731
                body = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
                        "<title>The app</title></head><body>"
                        "<h1>The app</h1><p>Signed in as <strong id=user>%s</strong></p>"
                        "<p>Path: <code id=path>%s</code></p><p>User id: <code id=uid>%s</code>"
                        "</p></body></html>" % (esc(who), esc(self.path), esc(uid)))
                self._send(200, body)

        super().__init__(H)


# --------------------------------------------------------------------------
# TLS and nginx for the portal flow
# --------------------------------------------------------------------------

def self_signed_cert(tmp, names):
    """A self-signed certificate for `names` (openssl CLI): (cert, key) paths."""
    cert, key = os.path.join(tmp, "portal.pem"), os.path.join(tmp, "portal.key")
    san = ",".join("DNS:" + n for n in names)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=" + names[0], "-addext", "subjectAltName=" + san,
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)       # nginx's worker (not root) reads it
    return cert, key


PORTAL_CONF = os.path.join(REPO, "deploy", "nginx", "jwtd-portal.conf")


def portal_nginx_conf(tmp, port, jwtd_listen, app_port, cert, key):
    """deploy/nginx/jwtd-portal.conf with its names, addresses, port and
    certificate paths rewritten (example.com -> jwtd.test, 443 -> `port`),
    wrapped in a minimal nginx.conf that keeps everything in `tmp`."""
    with open(PORTAL_CONF) as f:
        site = f.read()
    dom = PORTAL_DOMAIN
    rules = [
        ("/etc/ssl/certs/example.com.pem", cert),
        ("/etc/ssl/private/example.com.key", key),
        ("server 127.0.0.1:8080;", "server %s;" % jwtd_listen),
        ("server 127.0.0.1:3000;", "server 127.0.0.1:%d;" % app_port),
        ("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % port),
        ("return 302 https://auth.example.com/login",
         "return 302 https://auth.%s:%d/login" % (dom, port)),
        ("server_name auth.example.com;", "server_name auth.%s;" % dom),
        ("server_name app.example.com;", "server_name app.%s;" % dom),
        ("access_log /var/log/nginx/access.log jwtd;", "access_log %s/access.log jwtd;" % tmp),
    ]
    for old, new in rules:
        assert old in site, "deploy/nginx/jwtd-portal.conf changed shape: %r is gone" % old
        site = site.replace(old, new)
    return """
worker_processes 1;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/error.log warn;
events { worker_connections 256; }
http {
    access_log %(tmp)s/access.log;
    client_body_temp_path %(tmp)s/body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
%(site)s
}
""" % {"tmp": tmp, "site": site}


def jwt_claims(token):
    """The payload of a compact JWS (not verified: the tests read the amr)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
