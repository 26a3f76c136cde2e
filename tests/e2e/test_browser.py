# SPDX-License-Identifier: Apache-2.0
"""jwtd's pages in a real browser: headless Chromium driven by Selenium
(browser_util.py), against the real binary.

- sign-up, sign-in (and its error), sign-out, per-session and everywhere,
  and after the access cookie expired (the refresh cookie ends it);
- the cookies as Chromium stores them (DevTools protocol): HttpOnly, Secure,
  SameSite=Strict, paths, host-only __Host- cookies, invisible to scripts;
- CSRF: forms and fetch() from another origin (same site: http://localhost
  on another port, so the SameSite cookies DO travel and only jwtd's
  Origin check stands; and another site: http://127.0.0.1) are refused and
  the session lives on;
- open redirects: rd values that would leave jwtd never do;
- TOTP: enrolment on /account (secret read from the page, codes computed
  here, RFC 6238), the second step, a replayed code, recovery codes (once
  each, renewal), turning it off;
- passkeys with Chrome's virtual authenticator: registration on /account,
  sign-in with the passkey alone, and as the second step after a password;
- e-mail: forgot/reset password and address verification through a real
  SMTP relay (mail_util.SmtpServer);
- the portal flow of deploy/nginx/jwtd-portal.conf on real nginx with TLS:
  app -> sign-in -> back to the app, which sees X-Auth-Username; a cleared
  or expired access cookie is renewed through /auth/refresh/continue with
  no password; rd to another host refused;
- every page is screenshotted (full page, 1000 px wide) into JWTD_ARTIFACTS
  (default build/artifacts/screenshots), and no page may log a
  Content-Security-Policy violation (checked after every test).

The pages run on http://localhost:PORT with JWTD_PUBLIC_URL naming it:
Chromium treats localhost as a secure context (Secure cookies, WebAuthn).
TOTP time is jwtd's test clock (JWTD_TEST_CLOCK), moved forward only.
"""

import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

import pytest

import browser_util
from browser_util import (AppUpstream, Browser, Clock, Otp, StaticSite, jwt_claims,
                          portal_nginx_conf, self_signed_cert)
from e2e_util import free_port, signup, strong_password, uname

pytestmark = pytest.mark.skipif(browser_util.unavailable() is not None,
                                reason=browser_util.unavailable() or "")

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE_NAME = "jwtd browser test"
ACCESS = "__Host-jwtd_access"
ACCESS_DOMAIN = "__Secure-jwtd_access"
REFRESH = "__Secure-jwtd_refresh"
HINT = "__Host-jwtd_session"
JWTD_COOKIES = (ACCESS, ACCESS_DOMAIN, REFRESH, HINT)
RECOVERY_RE = re.compile(r"^[a-hjkmnp-z2-9]{5}-[a-hjkmnp-z2-9]{5}$")
B32_RE = re.compile(r"^[A-Z2-7]+=*$")
MAIL_DOMAIN = "browser-e2e.test"


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    br = Browser()
    yield br
    br.quit()


@pytest.fixture
def b(browser):
    """The module's browser, clean: no cookies, no page, no authenticator.
    After the test: no Content-Security-Policy violation may have been logged."""
    browser.reset()
    yield browser
    try:
        browser.remove_authenticator()
    except Exception:  # noqa: BLE001 - the test may have removed it
        pass
    found = browser.csp_violations()
    browser.console = []
    assert not found, "Content-Security-Policy violations:\n" + "\n".join(found)


@pytest.fixture(scope="module")
def clock():
    c = Clock()
    yield c
    c.close()


class Site:
    def __init__(self, srv, relay, clock):
        self.srv, self.relay, self.clock = srv, relay, clock
        self.base = "http://localhost:%d" % srv.port

    def url(self, path):
        return self.base + path

    def client(self):
        return self.srv.client()

    def metric(self, route, status):
        """jwtd_http_requests_total{route, status} from /metrics."""
        c = self.client()
        try:
            text = c.get("/metrics").body.decode()
        finally:
            c.close()
        m = re.search(r'^jwtd_http_requests_total\{route="%s",status="%d"\} (\d+)$'
                      % (re.escape(route), status), text, re.M)
        return int(m.group(1)) if m else 0

    def new_user(self, email=False):
        """A fresh account made through the JSON API: (username, password, email)."""
        c = self.client()
        try:
            addr = "%s@%s" % (uname("m"), MAIL_DOMAIN) if email else None
            username = uname("br")
            for _ in range(5):
                password = strong_password()
                body = {"username": username, "password": password}
                if addr:
                    body["email"] = addr
                r = c.post("/auth/signup", body)
                if not (r.status == 422 and (r.json or {}).get("error") == "weak_password"):
                    break
            assert r.status == 201, r
            return username, password, addr
        finally:
            c.close()

    def api_login(self, username, password):
        c = self.client()
        try:
            return c.post("/auth/login", {"username": username, "password": password})
        finally:
            c.close()


@pytest.fixture(scope="module")
def site(module_factory, relay, clock):
    port = free_port()
    srv = module_factory(port=port, env=relay.jwtd_env(
        JWTD_PUBLIC_URL="http://localhost:%d" % port,
        JWTD_REDIRECT_DOMAINS="app.jwtd.test",
        JWTD_SITE_NAME=SITE_NAME,
        JWTD_TEST_CLOCK=clock.path,
        JWTD_MAIL_RATE="1000", JWTD_MAIL_ACCOUNT_RATE="100"))
    return Site(srv, relay, clock)


@pytest.fixture(scope="module")
def evil():
    s = StaticSite()
    yield s
    s.close()


# --------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------

def sign_in(b, base, username, password, rd=None):
    """Open /login (with rd), type the username and password, press Sign in."""
    q = "?rd=" + urllib.parse.quote(rd, safe="") if rd else ""
    b.go(base + "/login" + q)
    assert b.h1() == "Sign in", (b.url, b.h1())
    b.submit_form("form[action='/login']", {"username": username, "password": password})


SIGN_OUT = "/auth/refresh/signout"


def sign_out(b, site, everywhere=False, action=SIGN_OUT):
    """Press Sign out (or Sign out everywhere) on /account (the form posts
    to `action`)."""
    if urllib.parse.urlsplit(b.url).path != "/account":
        b.go(site.url("/account"))
    xp = ("//form[@action='%s'][input[@name='scope' and @value='all']]//button" % action
          if everywhere else "//form[@action='%s'][not(input[@name='scope'])]//button" % action)
    b.click_and_wait(b.find(xp, by="xpath"))
    done, notice = (("signed_out_everywhere", "You are signed out everywhere.") if everywhere
                    else ("signed_out", "You are signed out."))
    assert b.url == site.url("/login?done=" + done), b.url
    assert notice in b.notices("ok")
    assert not jwtd_cookies(b), jwtd_cookies(b)


def at_account(b, site, username=None):
    assert b.url.startswith(site.url("/account")), b.url
    assert b.h1() == "Your account", (b.url, b.h1(), b.text())
    if username:
        assert b.text("#h-profile + table") .split("\n")[0].endswith(username), b.text()


def jwtd_cookies(b):
    return {k: c for k, c in b.cookies().items() if k[0] in JWTD_COOKIES}


def access_claims(b, name=ACCESS):
    c = b.cookie(name)
    assert c, "no %s cookie: %r" % (name, b.cookies())
    return jwt_claims(c["value"])


def no_alert(b):
    from selenium.common.exceptions import NoAlertPresentException
    try:
        text = b.d.switch_to.alert.text
    except NoAlertPresentException:
        return
    b.d.switch_to.alert.dismiss()
    raise AssertionError("a script ran on a jwtd page: alert(%r)" % text)


def enrol_totp(b, site, password, shoot=False):
    """Set up the authenticator app from /account: returns (Otp, recovery codes)."""
    b.go(site.url("/account"))
    b.submit_form("form[action='/account/totp']", {"password": password})
    assert b.h1() == "Set up an authenticator app", b.text()
    svg = b.find(".qr svg")
    assert svg.size["width"] >= 150 and svg.size["height"] >= 150, svg.size
    secret = b.text("#totp-secret").replace(" ", "")
    assert B32_RE.match(secret) and len(secret) >= 16, secret
    if shoot:
        b.shot("totp-enrol")
    otp = Otp(secret, site.clock)
    if shoot:
        # a wrong code first: the same key stays pending
        b.submit_form("form[action='/account/totp/confirm']", {"code": otp.wrong()})
        assert b.notices() == ["The code is wrong."], b.text()
        # the key is not shown again to whoever holds the session (it was
        # shown after the password); the page says what to do instead
        assert secret not in b.text().replace(" ", "") and not b.find_all(".qr svg"), b.text()
        assert "set it up again" in b.text(), b.text()
        b.shot("totp-enrol-wrong-code")
    b.submit_form("form[action='/account/totp/confirm']", {"code": otp.fresh()})
    assert b.h1() == "Recovery codes", b.text()
    assert "Two-step sign-in is on." in b.notices("ok")
    codes = [e.text for e in b.find_all("ul.codes code")]
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    assert all(RECOVERY_RE.match(c) for c in codes), codes
    if shoot:
        b.shot("recovery-codes")
    return otp, codes


def second_step(b, site, username, password):
    sign_in(b, site.base, username, password)
    assert b.url == site.url("/login"), b.url
    assert b.h1() == "Two-step sign-in", b.text()
    assert not b.cookie(ACCESS) and not b.cookie(REFRESH), b.cookies()


def type_code(b, code):
    b.submit_form("form[action='/login/mfa']:has(input[name=code])", {"code": code})


def type_recovery(b, code):
    b.submit_form("form[action='/login/mfa']:has(input[name=recovery_code])",
                  {"recovery_code": code})


def recovery_left(b):
    m = re.search(r"Recovery codes left: (\d+) of 10", b.text())
    assert m, b.text()
    return int(m.group(1))


# --------------------------------------------------------------------------
# 0. every page loads its stylesheet and script, and the CSP check works
# --------------------------------------------------------------------------

def test_pages_are_styled_and_scripted_under_their_csp(b, site):
    """Every page without a session loads /static/jwtd.css and
    /static/passkeys.js under its own CSP (styled: the main column is 30rem;
    scripted: the passkey button is shown); and an injected inline resource
    IS reported, so the suite's CSP check can fail."""
    pages = {"/login": "Sign in", "/signup": "Create an account",
             "/forgot-password": "Forgot your password?",
             "/reset-password?token=" + "A" * 43: "Choose a new password",
             "/verify-email?token=" + "A" * 43: "Confirm your e-mail address",
             "/reset-password?token=no%20such": "Choose a new password"}
    for path, title in pages.items():
        b.go(site.url(path))
        assert b.h1() == title, (path, b.h1())
        assert b.d.title == "%s \u2014 %s" % (title, SITE_NAME), b.d.title
        style = b.d.execute_script(
            "const s = getComputedStyle(document.querySelector('main'));"
            "return [s.maxWidth, getComputedStyle(document.body).margin];")
        assert style == ["480px", "0px"], (path, style)
    b.go(site.url("/login"))
    b.wait(lambda: b.find("button[data-passkey=signin]").is_displayed(), what="passkeys.js")
    assert b.csp_violations() == []
    # the detector: a resource the policy forbids must show up
    b.d.execute_script("const s = document.createElement('style');"
                       "s.textContent = 'body{color:red}'; document.head.appendChild(s);")
    b.wait(lambda: b.csp_violations(), what="a reported CSP violation")
    assert "style-src" in b.csp_violations()[0], b.csp_violations()
    b.console = []


# --------------------------------------------------------------------------
# 1. sign up, sign in, sign out
# --------------------------------------------------------------------------

def test_signup_signin_signout(b, site):
    b.go(site.url("/signup"))
    assert b.h1() == "Create an account"
    assert b.has("input#email"), "the sign-up form asks for an address when mail is on"
    b.shot("signup")
    username = uname("web")
    for _ in range(5):
        password = strong_password()
        b.submit_form("form[action='/signup']", {"username": username, "password": password})
        if not any("too weak" in n for n in b.notices()):
            break
    at_account(b, site, username)
    assert b.text(".card table td strong") == "This one"
    assert b.cookie(ACCESS) and b.cookie(REFRESH) and b.cookie(HINT)
    b.shot("account")
    sign_out(b, site)
    b.shot("login-signed-out")

    # wrong password: the error, the username kept, no cookie at all
    b.go(site.url("/login"))
    b.shot("login")
    b.submit_form("form[action='/login']", {"username": username, "password": password + "x"})
    assert b.url == site.url("/login") and b.h1() == "Sign in", b.url
    assert b.notices() == ["The username or password is wrong."], b.text()
    assert b.find("#username").get_attribute("value") == username
    assert b.find("#password").get_attribute("value") == ""
    assert b.cookies() == {}, b.cookies()
    b.shot("login-error")

    b.submit_form("form[action='/login']", {"username": username, "password": password})
    at_account(b, site, username)
    # signed in: /login goes straight on
    b.go(site.url("/login"))
    at_account(b, site)


def test_sessions_signed_out_one_by_one_and_everywhere(b, site):
    """The sessions table: another session's Sign out button ends that one
    only; Sign out everywhere ends them all (the API's refresh tokens die)."""
    username, password, _ = site.new_user()
    others = [site.api_login(username, password).json["refresh_token"] for _ in range(2)]
    sign_in(b, site.base, username, password)
    at_account(b, site)
    rows = b.find_all("form[action='/account/sessions/revoke']")
    assert len(rows) == 2, b.text()
    b.click_and_wait(rows[0].find_element("css selector", "button"))
    assert b.url == site.url("/account?done=session_revoked"), b.url
    assert "That session is signed out." in b.notices("ok")
    assert len(b.find_all("form[action='/account/sessions/revoke']")) == 1
    c = site.client()
    answers = [c.post("/auth/refresh", {"refresh_token": t}) for t in others]
    assert sorted(r.status for r in answers) == [200, 401], answers
    (alive,) = [r.json["refresh_token"] for r in answers if r.status == 200]
    sign_out(b, site, everywhere=True)
    assert c.post("/auth/refresh", {"refresh_token": alive}).status == 401
    c.close()


def test_sign_out_after_the_access_cookie_expired(b, site):
    """An account page left open past the access cookie's lifetime: Sign
    out still ends the session on the server, because Chromium sends the
    refresh cookie (Path=/auth/refresh) to the form's /auth/refresh/signout.
    A form of an older page, posting to /logout, is handed on there (307:
    the same post again, same origin) and ends it too."""
    username, password, _ = site.new_user()
    c = site.client()
    for action in (SIGN_OUT, "/logout"):
        sign_in(b, site.base, username, password)
        at_account(b, site)
        token = b.cookie(REFRESH)["value"]
        if action != SIGN_OUT:
            b.d.execute_script("document.querySelectorAll(\"form[action='%s']\").forEach("
                               "f => f.setAttribute('action', '%s'))" % (SIGN_OUT, action))
        site.clock.forward_to(site.clock.now() + 16 * 60)  # the access token has expired
        assert b.cookie(ACCESS), "the browser keeps the cookie (it expires by its own clock)"
        sign_out(b, site, everywhere=action != SIGN_OUT, action=action)
        r = c.post("/auth/refresh", {"refresh_token": token})
        assert r.status == 401 and "revoked" in r.json["error_description"], (action, r)
    c.close()


# --------------------------------------------------------------------------
# 2. cookies as the browser keeps them
# --------------------------------------------------------------------------

def test_cookie_attributes_as_stored(b, site):
    username, password, _ = site.new_user()
    before = time.time()
    sign_in(b, site.base, username, password)
    at_account(b, site)
    got = jwtd_cookies(b)
    assert set(got) == {(ACCESS, "localhost"), (REFRESH, "localhost"), (HINT, "localhost")}, got
    for (name, domain), c in got.items():
        assert c["httpOnly"] is True, c
        assert c["secure"] is True, c
        assert c["sameSite"] == "Strict", c
        assert not c["domain"].startswith("."), "host-only expected: %r" % c
        assert c["session"] is False, c
    access, refresh, hint = got[(ACCESS, "localhost")], got[(REFRESH, "localhost")], \
        got[(HINT, "localhost")]
    assert access["path"] == "/" and hint["path"] == "/", (access, hint)
    assert refresh["path"] == "/auth/refresh", refresh
    assert hint["value"] == "1"
    assert before + 900 - 30 <= access["expires"] <= time.time() + 900 + 30, access
    assert refresh["expires"] >= before + 29 * 86400, refresh
    assert jwt_claims(access["value"])["amr"] == ["pwd"]
    # scripts see none of them
    assert b.d.execute_script("return document.cookie") == ""
    # the page's own scripts reach the API with the cookie
    r = b.fetch(site.url("/auth/me"), credentials="same-origin")
    assert r.get("status") == 200, r
    sign_out(b, site)


# --------------------------------------------------------------------------
# 3. CSRF from another origin
# --------------------------------------------------------------------------

def autosubmit(action, fields):
    inputs = "".join('<input type="hidden" name="%s" value="%s">' % (k, v)
                     for k, v in fields.items())
    return ('<!DOCTYPE html><html><body><h1>Win a prize</h1>'
            '<form id="f" method="post" action="%s">%s<button>Go</button></form>'
            '<script>document.getElementById("f").submit()</script></body></html>'
            % (action, inputs))


def test_csrf_forms_from_another_origin_are_refused(b, site, evil):
    username, password, _ = site.new_user()
    new_pw = strong_password()
    evil.pages["/logout.html"] = autosubmit(site.url("/logout"), {"scope": "all"})
    evil.pages["/signout.html"] = autosubmit(site.url(SIGN_OUT), {"scope": "all"})
    evil.pages["/password.html"] = autosubmit(site.url("/account/password"), {
        "current_password": password, "new_password": new_pw})
    evil.pages["/login.html"] = autosubmit(site.url("/login"), {
        "username": username, "password": password, "rd": "/account"})
    sign_in(b, site.base, username, password)
    at_account(b, site)
    session = b.cookie(ACCESS)["value"]
    origins = ["http://localhost:%d" % evil.port,      # same site, another origin
               "http://127.0.0.1:%d" % evil.port]      # another site
    n403 = {r: site.metric(r, 403) for r in ("page_logout", "page_signout",
                                             "page_account_password", "page_login")}
    for i, origin in enumerate(origins):
        for page, route, action in (("/logout.html", "page_logout", "/logout"),
                                    ("/signout.html", "page_signout", SIGN_OUT),
                                    ("/password.html", "page_account_password",
                                     "/account/password"),
                                    ("/login.html", "page_login", "/login")):
            b.go(origin + page)
            b.wait_url(lambda u: u == site.url(action), what="the forged post")
            assert b.h1() == "Request refused", (origin, page, b.text())
            assert "another site" in b.text("main"), b.text()
            if i == 0 and page == "/logout.html":
                b.shot("csrf-refused")
            n403[route] += 1
            assert site.metric(route, 403) == n403[route], (route, "jwtd did not refuse it")
            # the session lives on, unchanged
            b.go(site.url("/account"))
            at_account(b, site, username)
            assert b.cookie(ACCESS)["value"] == session
    assert site.api_login(username, password).status == 200
    assert site.api_login(username, new_pw).status == 401
    assert evil.seen.count("/logout.html") == 2
    assert evil.seen.count("/signout.html") == 2


def test_csrf_fetch_to_the_json_api_from_another_origin(b, site, evil):
    """From http://localhost:OTHER (same site: the Strict cookies travel),
    fetch() can neither read /auth/me nor log out, nor change the password,
    with the session cookie; the session works afterwards."""
    username, password, _ = site.new_user()
    sign_in(b, site.base, username, password)
    at_account(b, site)
    evil.pages["/blank.html"] = "<!DOCTYPE html><title>elsewhere</title><p>elsewhere"
    b.go("http://localhost:%d/blank.html" % evil.port)
    csrf_before = site.metric("logout", 403)
    pw_before = site.metric("password", 403) + site.metric("password", 415)
    # reading: CORS blocks it (no Access-Control-Allow-Origin)
    r = b.fetch(site.url("/auth/me"), credentials="include")
    assert "error" in r, r
    # simple requests (no preflight) that carry the cookie
    r = b.fetch(site.url("/auth/logout"), method="POST", credentials="include", mode="no-cors")
    assert r.get("type") == "opaque", r
    r = b.fetch(site.url("/auth/password"), method="POST", credentials="include",
                mode="no-cors", headers={"Content-Type": "text/plain"},
                body='{"current_password": "%s", "new_password": "%s"}'
                     % (password, strong_password()))
    assert r.get("type") == "opaque", r
    # JSON needs a preflight, which another origin does not pass
    r = b.fetch(site.url("/auth/logout"), method="POST", credentials="include",
                headers={"Content-Type": "application/json"}, body="{}")
    assert "error" in r, r
    assert site.metric("logout", 403) == csrf_before + 1, "the forged logout was not refused"
    assert site.metric("password", 403) + site.metric("password", 415) == pw_before + 1
    b.go(site.url("/account"))
    at_account(b, site, username)
    assert site.api_login(username, password).status == 200
    # and from jwtd's own origin the same logout works (the test can fail)
    r = b.fetch(site.url("/auth/logout"), method="POST", credentials="same-origin",
                headers={"Content-Type": "application/json"}, body="{}")
    assert r.get("status") == 204, r
    b.go(site.url("/account"))
    assert b.url.startswith(site.url("/login")), b.url


# --------------------------------------------------------------------------
# 4. open redirects
# --------------------------------------------------------------------------

BAD_RD = [
    "https://evil.test/",
    "//evil.test",
    "/\\evil.test",
    "https://app.jwtd.test@evil.test/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "http://evil.test/",
    "https://app.jwtd.test.evil.test/",
    "https://evil.test\\@app.jwtd.test/",
    "https://evil.test#@app.jwtd.test/",
    "///evil.test",
    "/\t/evil.test",
    "https:evil.test",
    "data:text/html,<script>alert(1)</script>",
    "https://app.jwtd.test:443@evil.test/",
    "https://%65vil.test/",
]


def test_open_redirects_never_leave_jwtd(b, site):
    username, password, _ = site.new_user()
    c = site.client()
    # signed out: the page says so and drops the value from its form
    for i, rd in enumerate(BAD_RD):
        q = urllib.parse.quote(rd, safe="")
        assert c.get("/login?rd=" + q).status == 400, rd
        b.go(site.url("/login?rd=" + q))
        assert b.url.startswith(site.base + "/"), (rd, b.url)
        assert b.notices() == ["The address to return to after signing in is not allowed "
                               "here."], (rd, b.text())
        assert b.find("input[name=rd]").get_attribute("value") == "", rd
        if i == 0:
            b.shot("login-rd-refused")
        no_alert(b)
    # signing in from such a page (its form's rd is empty, as checked for
    # each value above) ends on the account page
    b.submit_form("form[action='/login']", {"username": username, "password": password})
    at_account(b, site)
    for rd in BAD_RD:
        q = urllib.parse.quote(rd, safe="")
        # signed in: /login?rd= does not send the browser on either
        b.go(site.url("/login?rd=" + q))
        assert b.url.startswith(site.base + "/") and b.h1() == "Sign in", (rd, b.url)
        # nor does the renewal hop
        b.go(site.url("/auth/refresh/continue?rd=" + q))
        assert b.url.startswith(site.base + "/"), (rd, b.url)
        assert "not allowed" in b.text("main"), (rd, b.text())
        no_alert(b)
        assert b.cookie(ACCESS), "the session ended on %r" % rd
    # a form whose rd was changed in the page is refused by the POST too
    b.reset()
    for rd in ("https://evil.test/", "//evil.test", "javascript:alert(1)"):
        b.go(site.url("/login"))
        b.d.execute_script("document.querySelector('input[name=rd]').value = arguments[0]", rd)
        b.submit_form("form[action='/login']", {"username": username, "password": password})
        assert b.url == site.url("/login"), (rd, b.url)
        assert "not allowed" in " ".join(b.notices()), (rd, b.text())
        assert not b.cookie(ACCESS), rd
        no_alert(b)
    # controls: a path of jwtd and an allowed host are kept
    sign_in(b, site.base, username, password, rd="/account?from=rd")
    assert b.url == site.url("/account?from=rd"), b.url
    b.reset()
    b.go(site.url("/login?rd=" + urllib.parse.quote("https://app.jwtd.test/x?y=1", safe="")))
    assert b.notices() == []
    assert b.find("input[name=rd]").get_attribute("value") == "https://app.jwtd.test/x?y=1"
    c.close()


# --------------------------------------------------------------------------
# 5. TOTP
# --------------------------------------------------------------------------

def test_totp_enrolment_second_step_replay_and_recovery_codes(b, site):
    username, password, _ = site.new_user()
    sign_in(b, site.base, username, password)
    otp, codes = enrol_totp(b, site, password, shoot=True)
    b.click_and_wait(b.find("Back to your account", by="link text"))
    assert "On. Recovery codes left: 10 of 10." in b.text()
    sign_out(b, site)

    # password, then the code
    second_step(b, site, username, password)
    assert b.has("input#code") and b.has("input#recovery_code")
    assert not b.find_all("button[data-passkey=signin]"), "no passkey on this account"
    b.shot("login-second-step")
    type_code(b, otp.wrong())
    assert b.h1() == "Two-step sign-in" and b.notices() == ["The code is wrong."], b.text()
    assert not b.cookie(ACCESS)
    b.shot("login-second-step-error")
    code = otp.fresh()
    type_code(b, code)
    at_account(b, site, username)
    assert access_claims(b)["amr"] == ["pwd", "otp"]
    sign_out(b, site)

    # the same code again: refused; the next one works
    second_step(b, site, username, password)
    type_code(b, code)
    assert b.h1() == "Two-step sign-in" and b.notices(), b.text()
    assert not b.cookie(ACCESS)
    type_code(b, otp.fresh())
    at_account(b, site)
    sign_out(b, site)

    # a recovery code works once (case does not matter)
    second_step(b, site, username, password)
    type_recovery(b, codes[0])
    at_account(b, site)
    assert access_claims(b)["amr"] == ["pwd", "otp"]
    assert recovery_left(b) == 9
    sign_out(b, site)
    second_step(b, site, username, password)
    type_recovery(b, codes[0])
    assert b.h1() == "Two-step sign-in" and b.notices() == ["The code is wrong."], b.text()
    type_recovery(b, codes[1].upper())
    at_account(b, site)
    assert recovery_left(b) == 8

    # new codes: the old ones stop working
    b.submit_form("form[action='/account/recovery-codes']", {"password": password})
    assert b.h1() == "Recovery codes"
    assert "New recovery codes: the old ones no longer work." in b.notices("ok")
    new_codes = [e.text for e in b.find_all("ul.codes code")]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    b.go(site.url("/account"))
    assert recovery_left(b) == 10
    sign_out(b, site)
    second_step(b, site, username, password)
    type_recovery(b, codes[2])
    assert b.notices() == ["The code is wrong."], b.text()
    type_recovery(b, new_codes[0])
    at_account(b, site)

    # turned off: the password alone signs in again
    b.submit_form("form[action='/account/totp/remove']", {"password": password})
    assert "The authenticator app is removed." in b.notices("ok")
    sign_out(b, site)
    sign_in(b, site.base, username, password)
    at_account(b, site)
    assert access_claims(b)["amr"] == ["pwd"]


# --------------------------------------------------------------------------
# 6. passkeys
# --------------------------------------------------------------------------

def passkey_failed(b):
    """passkeys.js showed an error (not its "Follow your browser's prompt")."""
    box = b.find("#passkey-status")
    return box.is_displayed() and not box.text.startswith("Follow")


def add_passkey(b, site, password, name):
    b.go(site.url("/account"))
    form = b.find("form[data-passkey=register]")
    b.wait(form.is_displayed, what="the passkey form (passkeys.js)")
    form.find_element("css selector", "#pk-name").send_keys(name)
    form.find_element("css selector", "#pk-password").send_keys(password)
    b.mark_document()
    form.find_element("css selector", "button[type=submit]").click()
    b.wait_new_document(what="the passkey registration",
                        or_else=lambda: passkey_failed(b))
    assert b.url == site.url("/account?done=passkey_added"), b.text("#passkey-status")
    assert "The passkey is added: you can sign in with it." in b.notices("ok")


def click_passkey(b, site, expect):
    button = b.find("button[data-passkey=signin]")
    b.wait(button.is_displayed, what="the passkey button (passkeys.js)")
    b.mark_document()
    button.click()
    b.wait_new_document(what="the passkey sign-in",
                        or_else=lambda: passkey_failed(b))
    assert b.url == expect, b.text("#passkey-status")


def test_passkey_register_sign_in_alone_and_as_second_step(b, site):
    b.add_authenticator()
    username, password, _ = site.new_user()
    sign_in(b, site.base, username, password)
    at_account(b, site)
    add_passkey(b, site, password, "Virtual key")
    rows = [r.text for r in b.find_all("form[action='/account/passkeys/remove']")]
    assert len(rows) == 1
    assert "Virtual key" in b.text("#h-mfa ~ table"), b.text()
    b.shot("account-passkey")
    creds = b.credentials()
    assert len(creds) == 1 and creds[0].is_resident_credential and \
        creds[0].rp_id == "localhost", creds
    sign_out(b, site)

    # the passkey alone (a discoverable credential: no username typed)
    b.go(site.url("/login"))
    b.shot("login-passkey")
    click_passkey(b, site, site.url("/account"))
    at_account(b, site, username)
    amr = access_claims(b)["amr"]
    assert amr in (["hwk"], ["swk"]), amr
    assert b.cookie(REFRESH) and b.cookie(HINT), "a passkey sign-in is a page session too"
    r = b.fetch(site.url("/auth/sessions"), credentials="same-origin")
    assert r.get("status") == 200 and '"sessions"' in r["text"], r
    sign_out(b, site)

    # after a password the passkey is the second step (the only one here)
    second_step(b, site, username, password)
    assert not b.has("input#code") and not b.has("input#recovery_code")
    click_passkey(b, site, site.url("/account"))
    assert access_claims(b)["amr"] == ["pwd"] + amr

    # with TOTP too: all three ways on the second step; the passkey finishes it
    enrol_totp(b, site, password)
    sign_out(b, site)
    second_step(b, site, username, password)
    assert b.has("input#code") and b.has("input#recovery_code")
    b.wait(b.find("button[data-passkey=signin]").is_displayed, what="the passkey button")
    b.shot("login-second-step-all")
    click_passkey(b, site, site.url("/account"))
    assert access_claims(b)["amr"] == ["pwd"] + amr

    # removed: the password and TOTP remain
    form = b.find("form[action='/account/passkeys/remove']")
    form.find_element("css selector", "input[type=password]").send_keys(password)
    b.click_and_wait(form.find_element("css selector", "button"))
    assert "The passkey is removed." in b.notices("ok"), b.text()
    assert "No passkeys yet." in b.text()


# --------------------------------------------------------------------------
# 8. e-mail: forgot/reset password, verify the address
# --------------------------------------------------------------------------

def mail_link(site, to, path):
    """The newest link to `path` mailed to `to` (waits for it)."""
    deadline = time.monotonic() + 10
    while True:
        links = [m.link for m in site.relay.messages(to)
                 if m.link and urllib.parse.urlsplit(m.link).path == path]
        if links:
            break
        assert time.monotonic() < deadline, "no %s link in %r" % (path, site.relay.messages(to))
        time.sleep(0.05)
    assert links[-1].startswith(site.base + path + "?token="), links[-1]
    return links[-1]


def test_forgot_and_reset_password(b, site):
    username, password, addr = site.new_user(email=True)
    b.go(site.url("/login"))
    b.click_and_wait(b.find("Forgot your password?", by="link text"))
    assert b.url == site.url("/forgot-password") and b.h1() == "Forgot your password?"
    b.shot("forgot-password")
    b.submit_form("form[action='/forgot-password']", {"identifier": addr})
    assert b.h1() == "Check your inbox" and b.notices("ok"), b.text()
    b.shot("forgot-password-sent")
    link = mail_link(site, addr, "/reset-password")
    b.go(link)
    assert b.h1() == "Choose a new password"
    b.shot("reset-password")
    new_pw = strong_password()
    b.submit_form("form[action='/reset-password']", {"password": new_pw})
    assert b.url == site.url("/login?done=password_set"), (b.url, b.text())
    assert "Your password is set; sign in with it." in b.notices("ok")
    b.submit_form("form[action='/login']", {"username": username, "password": new_pw})
    at_account(b, site, username)
    assert site.api_login(username, password).status == 401
    # the link works once, and says so as soon as it is opened again, with
    # the way to a new one (no form to fill in for nothing)
    b.reset()
    b.go(link)
    assert b.notices() == ["This link is unknown, already used or expired."], b.text()
    assert not b.find_all("form[action='/reset-password']"), b.text()
    b.shot("reset-password-used")
    b.click_and_wait(b.find("Ask for a new link", by="link text"))
    assert b.url == site.url("/forgot-password"), b.url
    assert site.api_login(username, new_pw).status == 200


def test_verify_email_by_link_and_by_code(b, site):
    username, password, addr = site.new_user(email=True)
    link = mail_link(site, addr, "/verify-email")
    b.go(link)
    assert b.h1() == "Confirm your e-mail address"
    b.shot("verify-email")
    b.submit_form("form[action='/verify-email']")
    assert b.h1() == "Address confirmed", b.text()
    assert b.notices("ok") == ["The address is confirmed for the account %s." % username]
    b.shot("verify-email-done")
    sign_in(b, site.base, username, password)
    assert "%s (confirmed)" % addr in b.text("#h-profile + table")

    # the six-digit code typed on the account page
    username, password, addr = site.new_user(email=True)
    msg = site.relay.wait_one(addr)
    b.reset()
    sign_in(b, site.base, username, password)
    assert "%s (not confirmed)" % addr in b.text("#h-profile + table")
    b.shot("account-unconfirmed")
    b.submit_form("form[action='/account/email/verify']", {"code": msg.code})
    assert "Your e-mail address is confirmed." in b.notices("ok"), b.text()
    assert "%s (confirmed)" % addr in b.text("#h-profile + table")


# --------------------------------------------------------------------------
# 7. the portal behind nginx
# --------------------------------------------------------------------------

class Portal:
    def __init__(self, srv, port, app, clock, tmp):
        self.srv, self.port, self.app, self.clock, self.tmp = srv, port, app, clock, tmp
        self.auth = "https://auth.jwtd.test:%d" % port
        self.app_base = "https://app.jwtd.test:%d" % port

    def access_log(self):
        with open(os.path.join(self.tmp, "access.log")) as f:
            return f.read()

    def get(self, path):
        """GET path of auth.jwtd.test through nginx, without a browser."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "auth.jwtd.test:%d" % self.port})
            r = conn.getresponse()
            r.read()
            return r
        finally:
            conn.close()


def wait_tls(port, proc, deadline):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                with ctx.wrap_socket(s, server_hostname="auth.jwtd.test"):
                    return
        except OSError:
            assert proc.poll() is None, "nginx exited: %s" % proc.stderr.read().decode()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def portal(module_factory):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    tmp = tempfile.mkdtemp(prefix="jwtd-portal-")
    os.chmod(tmp, 0o755)
    port = free_port()
    clock = Clock()
    app = AppUpstream()
    srv = module_factory(env={
        "JWTD_PUBLIC_URL": "https://auth.jwtd.test:%d" % port,
        "JWTD_COOKIE_DOMAIN": "jwtd.test",
        "JWTD_REDIRECT_DOMAINS": "app.jwtd.test",
        "JWTD_TRUSTED_PROXIES": "127.0.0.1",
        "JWTD_TEST_CLOCK": clock.path})
    cert, key = self_signed_cert(tmp, ["auth.jwtd.test", "app.jwtd.test"])
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(portal_nginx_conf(tmp, port, srv.listen, app.port, cert, key))
    proc = subprocess.Popen([NGINX, "-p", tmp, "-c", conf], stderr=subprocess.PIPE)
    try:
        wait_tls(port, proc, time.monotonic() + 10)
        yield Portal(srv, port, app, clock, tmp)
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        app.close()
        clock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_portal_sign_in_returns_to_the_app_and_renews_without_password(b, portal):
    c = portal.srv.client()
    username, password, user = signup(c)
    c.close()
    target = portal.app_base + "/some/path?x=1"
    b.go(target)
    # nginx sent us to the sign-in page with the way back
    assert b.url.startswith(portal.auth + "/login?rd="), b.url
    assert b.h1() == "Sign in"
    assert b.find("input[name=rd]").get_attribute("value") == target
    assert portal.app.seen == [], "the app was reached without a session"
    b.shot("portal-login")
    b.submit_form("form[action='/login']", {"username": username, "password": password})
    assert b.url == target, b.url
    assert b.text("#user") == username and b.text("#path") == "/some/path?x=1"
    assert portal.app.seen[-1] == ("/some/path?x=1", username, user["id"])
    b.shot("portal-app")

    got = jwtd_cookies(b)
    assert set(got) == {(ACCESS_DOMAIN, ".jwtd.test"), (REFRESH, "auth.jwtd.test"),
                        (HINT, "auth.jwtd.test")}, got
    for c_ in got.values():
        assert c_["httpOnly"] and c_["secure"] and c_["sameSite"] == "Strict", c_
    assert got[(REFRESH, "auth.jwtd.test")]["path"] == "/auth/refresh"

    def renewed(what):
        old_refresh = b.cookie(REFRESH)["value"]
        hops = portal.access_log().count("GET /auth/refresh/continue?")
        n = len(portal.app.seen)
        b.go(target)
        assert b.url == target, (what, b.url)
        assert b.text("#user") == username, what
        assert portal.app.seen[-1][1] == username and len(portal.app.seen) == n + 1, what
        assert b.cookie(REFRESH)["value"] != old_refresh, "%s: not renewed" % what
        assert portal.access_log().count("GET /auth/refresh/continue?") == hops + 1, what
        assert not b.has("input[type=password]")

    # 1. the access cookie is gone (the refresh cookie and the hint stay)
    b.delete_cookie(ACCESS_DOMAIN, ".jwtd.test")
    assert not b.cookie(ACCESS_DOMAIN) and b.cookie(REFRESH) and b.cookie(HINT)
    renewed("access cookie cleared")
    # 2. the access token expired (jwtd's clock 16 min on; the cookie is still there)
    portal.clock.forward_to(time.time() + 16 * 60)
    assert b.cookie(ACCESS_DOMAIN)
    renewed("access token expired")

    # rd to a host that is not listed: refused on the pages and the hop
    for rd in ("https://evil.jwtd.test:%d/" % portal.port, "https://jwtd.test/",
               "https://app.jwtd.test.evil.test/", "http://app.jwtd.test:%d/" % portal.port):
        q = urllib.parse.quote(rd, safe="")
        for path in ("/login?rd=", "/auth/refresh/continue?rd="):
            b.go(portal.auth + path + q)
            assert b.url.startswith(portal.auth + "/"), (rd, b.url)
            assert "not allowed" in b.text("main"), (rd, b.text())
    # an allowed one, signed in: straight there
    b.go(portal.auth + "/login?rd=" + urllib.parse.quote(portal.app_base + "/other", safe=""))
    assert b.url == portal.app_base + "/other" and b.text("#user") == username

    # the proxy keeps /metrics and mail links' tokens to itself
    r = portal.get("/metrics")
    assert r.status == 404, r.status
    marker = "tok" + secrets.token_hex(8)
    b.go(portal.auth + "/reset-password?token=" + marker)
    b.go(portal.auth + "/verify-email?token=" + marker)
    # the same paths spelled otherwise (jwtd routes the decoded path)
    for spelled in ("/%72eset-password", "/reset%2dpassword", "/%76erify-email",
                    "//Reset-Password"):
        portal.get(spelled + "?token=" + marker)
    assert "GET /reset-password?(hidden)" in portal.access_log()
    assert marker not in portal.access_log(), "a mail link's token reached nginx's log"

    # signing out clears the domain cookie too: the app sends us to sign in again
    b.go(portal.auth + "/account")
    b.click_and_wait(b.find("//form[@action='%s'][not(input[@name='scope'])]//button"
                            % SIGN_OUT, by="xpath"))
    assert b.url == portal.auth + "/login?done=signed_out", b.url
    assert not jwtd_cookies(b), jwtd_cookies(b)
    b.go(target)
    assert b.url.startswith(portal.auth + "/login?rd="), b.url

