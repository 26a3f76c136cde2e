# SPDX-License-Identifier: Apache-2.0
"""The sign-in pages over plain HTTP (no browser): what a hand-made request
can try that a browser would not send (test_browser.py drives Chromium).

- CSRF: a form post is vouched for by a same-origin `Origin`, or (without
  one) by `Sec-Fetch-Site: same-origin`; `Sec-Fetch-Site: none` only beside
  a matching `Origin` (docs/pages.md);
- `rd`: an allowed domain on any canonical port, jwtd's own host only at
  jwtd's own origin (scheme, host and port of JWTD_PUBLIC_URL); RFC 3986
  characters less quotes and brackets, `%` only as `%XX`;
- failures the account page shows are said in words;
- sign-out ends the session on the server even when the access cookie has
  expired (the forms post under /auth/refresh, where the refresh cookie
  goes), and its notice says no more than happened;
- /auth/refresh/continue without `rd` returns to the documented default;
- a page is no way around the back-off: a blocked second step says when to
  try again (Retry-After, as the JSON API) and keeps its ticket;
- what a screen reader gets: each control a name of its own, an error tied
  to the field it is about, one field with the focus, headings in order, a
  title naming the page;
- a mail link that no longer works says so when it is opened, and opening
  one (a mail scanner's GET) never spends it.

Time is jwtd's test clock (JWTD_TEST_CLOCK), moved forward: nothing sleeps.
"""

import html
import html.parser
import re
import secrets
import urllib.parse

import pytest

from browser_util import Clock, Otp
from e2e_util import free_port, refresh, signup, strong_password, uname
from softauthn import Authenticator

CHEAP_ARGON2 = {"JWTD_ARGON2_MEMORY": "7168", "JWTD_ARGON2_ITERATIONS": "5"}
FORM = "application/x-www-form-urlencoded"
ACCESS = "__Host-jwtd_access"
REFRESH = "__Secure-jwtd_refresh"


@pytest.fixture(scope="module")
def site(module_factory):
    port = free_port()
    srv = module_factory(port=port, env=dict(
        CHEAP_ARGON2, JWTD_PUBLIC_URL="http://localhost:%d" % port,
        JWTD_REDIRECT_DOMAINS="app.jwtd.test,.apps.jwtd.test"))
    srv.public = "http://localhost:%d" % port
    return srv


@pytest.fixture
def c(site):
    cl = site.client()
    yield cl
    cl.close()


def own_origin(c):
    """The Origin a browser on this connection's host would send."""
    return "http://%s:%d" % (c.host, c.port)


def post_form(c, path, fields, headers=None, cookie=None):
    h = dict(headers or {})
    if cookie:
        h["Cookie"] = cookie
    return c.request("POST", path, body=urllib.parse.urlencode(fields).encode(), headers=h,
                     content_type=FORM)


def session_cookie(resp):
    """The Cookie header for the cookies a response set."""
    pairs = [h.split(";", 1)[0] for h in resp.header_all("Set-Cookie")]
    return "; ".join(p for p in pairs if not p.endswith("="))


def assert_form_vouched(r, ok):
    """A sign-in post's answer: signed in (303 with cookies), or a 403 that
    set nothing."""
    if ok:
        assert r.status == 303, r
        assert any(s.startswith(ACCESS + "=") for s in r.header_all("Set-Cookie")), r
    else:
        assert r.status == 403, r
        assert r.header_all("Set-Cookie") == [], r


@pytest.mark.parametrize("headers,ok", [
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Sec-Fetch-Site": "cross-site"}, False),
    ({"Sec-Fetch-Site": "same-site"}, False),
    ({}, False),
    ({"Origin": "null"}, False),
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Origin": "SELF", "Sec-Fetch-Site": "none"}, True),
    ({"Origin": "SELF", "Sec-Fetch-Site": "cross-site"}, False),
    ({"Origin": "SELF"}, True),
], ids=["none-alone", "cross-site", "same-site", "neither", "origin-null", "same-origin",
        "origin-and-none", "origin-and-cross-site", "origin"])
def test_what_vouches_for_a_form_post(c, site, headers, ok):
    """Trap: `Sec-Fetch-Site: none` without Origin passed the sign-in form's
    check, although the docs say a post without Origin is refused."""
    username, password, _ = signup(c)
    h = {k: (own_origin(c) if v == "SELF" else v) for k, v in headers.items()}
    r = post_form(c, "/login", {"username": username, "password": password}, headers=h)
    assert_form_vouched(r, ok)


@pytest.mark.parametrize("host,origin,ok", [
    ("PUB_HOST", "PUB", True),
    # a proxy passing $host drops the port: the public origin still is one
    ("localhost", "PUB", True),
    ("127.0.0.1:1", "PUB", True),
    # the public host by another scheme or port: another site
    ("PUB_HOST", "https://PUB_HOST", False),
    ("localhost", "http://localhost", False),
    ("localhost:1", "http://localhost:1", False),
    # not a web origin
    ("SELF_HOST", "ftp://SELF_HOST", False),
    ("SELF_HOST", "httpx://SELF_HOST", False),
], ids=["public", "public-host-without-port", "public-other-host", "public-host-https",
        "public-host-port-80", "public-host-other-port", "ftp", "httpx"])
def test_origin_is_scheme_host_and_port(c, site, host, origin, ok):
    """Trap: the forms' CSRF check compared only what follows "://" with
    Host: a page on http://auth.example.com (or ftp://) passed as
    https://auth.example.com's own, and behind a proxy that passes Host
    without the port every form post was refused."""
    username, password, _ = signup(c)
    pub_host = site.public.split("://", 1)[1]
    subst = {"PUB": site.public, "PUB_HOST": pub_host, "SELF_HOST": "%s:%d" % (c.host, c.port)}

    def fill(v):
        for k in sorted(subst, key=len, reverse=True):
            v = v.replace(k, subst[k])
        return v
    h = {"Host": fill(host), "Origin": fill(origin)}
    r = post_form(c, "/login", {"username": username, "password": password}, headers=h)
    assert_form_vouched(r, ok)


def rd_status(c, rd):
    return c.get("/login?rd=" + urllib.parse.quote(rd, safe="")).status


@pytest.mark.parametrize("rd", [
    "/account", "/account?from=rd",
    "SELF/x", "SELF/",
    "https://app.jwtd.test/x?y=1", "https://app.jwtd.test:8443/x", "https://a.apps.jwtd.test/",
    "https://app.jwtd.test/a%27b", "https://app.jwtd.test/~a_b-c.d!$&()*+,;=:@/?q#f",
    "https://a_b.apps.jwtd.test/", "https://x-1.y.apps.jwtd.test/",
    "/a..b/c", "/account/.well", "/x?p=/../y",
])
def test_allowed_return_addresses(c, site, rd):
    assert rd_status(c, rd.replace("SELF", site.public)) == 200, rd


@pytest.mark.parametrize("path", ["/login", "/signup", "/account/password"])
def test_form_over_the_body_limit_gets_a_page(c, path):
    """Trap: a form over JWTD_MAX_BODY (16 KiB) on a page route got the JSON
    API's 413 - the server refused the body before the page's handler ran,
    so a browser showed raw JSON. It gets the page's "form is too large"
    (HTML, the pages' CSP); one byte less is an ordinary form answer."""
    big = {"username": "x", "password": "p" * 16384}
    r = post_form(c, path, big, headers={"Origin": own_origin(c)})
    assert r.status == 413, r
    assert r.header("Content-Type").startswith("text/html"), r.header("Content-Type")
    assert "The form is too large." in r.body.decode(), r.body[:300]
    assert "script-src 'self'" in r.header("Content-Security-Policy")
    c.close()
    fits = urllib.parse.urlencode({"username": "x", "password": "p" * 10})
    fits += "&pad=" + "q" * (16384 - len(fits) - len("&pad="))
    assert len(fits) == 16384
    r = c.request("POST", path, body=fits.encode(), headers={"Origin": own_origin(c)},
                  content_type=FORM)
    # (signed out, /account/password sends the browser to sign in: 303)
    assert r.status != 413 and (r.header("Content-Type") or "text/html").startswith(
        "text/html"), r


@pytest.mark.parametrize("path", ["/logout", "/login/mfa", "/account/password",
                                  "/account/totp/confirm", "/auth/refresh/signout"])
def test_form_address_opened_in_the_address_bar_gets_a_page(c, path):
    """Found by an audit: GET /logout typed into the address bar, or Enter
    in the address bar of a page a form post showed (/login/mfa after a
    wrong code), answered the JSON API's 405 - raw JSON in the browser. A
    page's form route answers a method it does not take with a page: still
    405 with Allow, a way on, the pages' headers."""
    r = c.get(path)
    assert r.status == 405, r
    assert "POST" in r.header("Allow") and "GET" not in r.header("Allow"), r.header("Allow")
    assert r.header("Content-Type").startswith("text/html"), r.header("Content-Type")
    assert "script-src 'self'" in r.header("Content-Security-Policy")
    assert r.header("X-Frame-Options") == "DENY"
    body = r.body.decode()
    assert 'role="alert"' in body and '<a href="/account">' in body, body
    # the JSON API keeps the contract's error shape
    r = c.get("/auth/login")
    assert r.status == 405 and r.json["error"] == "method_not_allowed", r


def test_form_address_with_the_pages_off_is_not_found(module_factory):
    """With JWTD_PAGES=off a page's route answers 404 whatever the method
    (as its handlers do), not a page."""
    srv = module_factory(env=dict(CHEAP_ARGON2, JWTD_PAGES="off"))
    c = srv.client()
    try:
        for method, path in (("GET", "/logout"), ("POST", "/logout"), ("GET", "/login")):
            r = c.request(method, path, headers={"Origin": "http://%s:%d" % (c.host, c.port)})
            assert r.status == 404 and r.json["error"] == "not_found", (method, path, r)
    finally:
        c.close()


def test_long_browser_name_is_cut_visibly(c, site):
    """Found by an audit: the sessions table cut a browser's name at 60
    bytes mid-word ("AppleWebKit/537.36 (KHTML, l") with nothing to say
    so. The cut ends in an ellipsis and the whole name is the cell's title
    (escaped); a short name shows whole, without a title."""
    username, password, _ = signup(c)
    long_ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0 Safari/537.36 \"<x>\"")
    cookies = []
    for ua in (long_ua, "curl/8.0 <y>"):
        r = post_form(c, "/login", {"username": username, "password": password},
                      headers={"Origin": own_origin(c), "User-Agent": ua})
        assert r.status == 303, r
        cookies.append(session_cookie(r))
    html = c.get("/account", headers={"Cookie": cookies[0]}).body.decode()
    escaped = long_ua.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;")
    assert '<td title="%s">%s\u2026</td>' % (escaped, long_ua[:60]) in html, html
    assert "<td>curl/8.0 &lt;y&gt;</td>" in html, html


@pytest.mark.parametrize("n", [1, 500, 682, 683, 1400, 2046])
def test_long_return_address_keeps_the_page_whole(c, n):
    """Trap: a valid rd of 1,400 reserved characters (each "?" is three
    bytes in a link) cut the sign-in page's "Create an account" link in
    the middle of its href, and the rest of the page fell inside the
    attribute. Up to the 2,048 characters allowed, the link carries the
    whole rd and the page ends whole."""
    import html.parser

    class Links(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.hrefs = []

        def handle_starttag(self, tag, attrs):
            if tag == "a":
                self.hrefs.append(dict(attrs).get("href", ""))
    rd = "/" + "?" * (n - 1)
    r = c.get("/login?rd=" + urllib.parse.quote(rd, safe=""))
    assert r.status == 200, r
    text = r.body.decode()
    assert text.rstrip().endswith("</html>"), text[-200:]
    parser = Links()
    parser.feed(text)
    signup_links = [h for h in parser.hrefs if h.startswith("/signup")]
    assert len(signup_links) == 1, parser.hrefs
    query = urllib.parse.urlsplit(signup_links[0]).query
    assert urllib.parse.parse_qs(query)["rd"] == [rd]


@pytest.mark.parametrize("rd,kept", [
    ("https://app.jwtd.test/a b", "https://app.jwtd.test/a%20b"),
    ("https://app.jwtd.test/caf\u00e9", "https://app.jwtd.test/caf%C3%A9"),
    ("https://app.jwtd.test/s?q=hello world", "https://app.jwtd.test/s?q=hello%20world"),
    ("https://app.jwtd.test/50%", "https://app.jwtd.test/50%25"),
    ("https://app.jwtd.test/%zz", "https://app.jwtd.test/%25zz"),
    ("https://app.jwtd.test/ok%20already", "https://app.jwtd.test/ok%20already"),
    ("/account?x=\u00fc ber", "/account?x=%C3%BC%20ber"),
])
def test_return_address_decoded_by_the_query_is_encoded_back(c, rd, kept):
    """Trap: the portal's nginx sends the original URL unencoded
    (rd=https://$host$request_uri), so the query's decoding turns "/a%20b"
    or "/caf%C3%A9" into a space or raw UTF-8, and the sign-in page refused
    the address: the user was stranded on a 400 page. Spaces, non-ASCII
    bytes and a lone '%' after the host are percent-encoded back; the form
    carries the address as it will be used."""
    r = c.get("/login?rd=" + urllib.parse.quote(rd, safe=""))
    assert r.status == 200, (rd, r)
    m = re.search(r'name="rd" value="([^"]*)"', r.body.decode())
    assert m and m.group(1) == kept, (rd, m and m.group(1))


@pytest.mark.parametrize("rd", [
    # jwtd's own host, but another origin: another port, another scheme
    "http://localhost:9/x", "https://localhost/x", "http://localhost/x",
    # canonical ports only
    "https://app.jwtd.test:0443/x", "https://app.jwtd.test:00000000443/x",
    "https://app.jwtd.test:/x", "https://app.jwtd.test:65536/x",
    # characters outside RFC 3986, quotes, brackets, bare %
    "https://app.jwtd.test/a'b", "https://app.jwtd.test/a`b", "https://app.jwtd.test/{x}",
    "https://app.jwtd.test/a|b", "https://app.jwtd.test/a^b", "https://[::1]/x",
    "/a'b", "/x\"y", "/a\tb", "https://app.jwtd.test/a\nb",
    # a space or raw non-ASCII byte in the host is not encoded back: refused
    "https://app.jwtd.test x/", "https://caf\u00e9.jwtd.test/", "https://app.jwtd.test%20/",
    # the usual suspects
    "//evil.test", "/\\evil.test", "https://evil.test/", "https://app.jwtd.test.evil.test/",
    "https://app.jwtd.test@evil.test/", "https://apps.jwtd.test/",
    # not host names, though under an allowed parent domain
    "https://..apps.jwtd.test/", "https://a..apps.jwtd.test/", "https://-a.apps.jwtd.test/",
    "https://a-.apps.jwtd.test/", "https://a;b.apps.jwtd.test/", "https://a!b.apps.jwtd.test/",
    "https://a&b.apps.jwtd.test/",
    # dot segments, which the browser resolves before it goes
    "/account/../..//evil.test", "/a/./b", "/a/%2e%2E/b", "/..", "/account/.",
])
def test_refused_return_addresses(c, site, rd):
    """Trap: jwtd's own host was accepted on any port and scheme (another
    site on the same machine), ports with leading zeros and quotes went
    through, against the documented rule."""
    assert rd_status(c, rd) == 400, rd


def test_own_host_under_a_listed_parent_domain_is_still_one_origin(module_factory):
    """Trap: with a parent domain listed (.jwtd.test), jwtd's own host was
    allowed as a return address on any port and scheme - another site on
    the same machine - against the documented rule. The own host is allowed
    only at jwtd's own origin; its siblings on any port."""
    port = free_port()
    srv = module_factory(port=port, env=dict(
        CHEAP_ARGON2, JWTD_PUBLIC_URL="https://auth.jwtd.test",
        JWTD_REDIRECT_DOMAINS=".jwtd.test"))
    c = srv.client()
    try:
        for rd, ok in (("https://auth.jwtd.test/account", True),
                       ("https://auth.jwtd.test:8443/x", False),
                       ("https://AUTH.jwtd.test:9/x", False),
                       ("https://app.jwtd.test:8443/x", True)):
            assert (rd_status(c, rd) == 200) == ok, rd
    finally:
        c.close()


def test_sign_in_goes_back_to_its_own_origin_only(c, site):
    username, password, _ = signup(c)
    for rd, to in ((site.public + "/account", site.public + "/account"),
                   ("https://app.jwtd.test:8443/x", "https://app.jwtd.test:8443/x")):
        r = post_form(c, "/login", {"username": username, "password": password, "rd": rd},
                      headers={"Origin": own_origin(c)})
        assert r.status == 303 and r.header("Location") == to, r
    r = post_form(c, "/login", {"username": username, "password": password,
                                "rd": "http://localhost:9/x"}, headers={"Origin": own_origin(c)})
    assert r.header("Location") != "http://localhost:9/x", r
    assert r.header_all("Set-Cookie") == [] or r.status != 303, r


def test_taken_address_is_said_in_words(c, site):
    """Trap: the account page answered an address of another account with
    "That did not work."."""
    addr = "taken-%s@example.com" % secrets.token_hex(4)
    r = c.post("/auth/signup", {"username": "t-" + secrets.token_hex(4),
                                "password": strong_password(), "email": addr})
    assert r.status == 201, r
    username, password, _ = signup(c)
    r = post_form(c, "/login", {"username": username, "password": password},
                  headers={"Origin": own_origin(c)})
    assert r.status == 303, r
    r = post_form(c, "/account/email", {"email": addr, "password": password},
                  headers={"Origin": own_origin(c)}, cookie=session_cookie(r))
    assert r.status == 409, r
    assert "belongs to another account" in r.body.decode(), r.body[:2000]



def test_echoed_fields_show_no_control_characters(c, site):
    """Found by an audit: a sign-in form sent back after a wrong password
    echoed BEL and ESC raw inside value="..." (HTML allows no control
    characters there); they show as U+FFFD now, markup stays escaped."""
    typed = "nobody\x07\x1b[31m<b>\x7f"
    r = post_form(c, "/login", {"username": typed, "password": "wrong-password-1"},
                  headers={"Origin": own_origin(c)})
    assert r.status in (401, 422), r
    body = r.body.decode("utf-8")
    assert "\x07" not in body and "\x1b" not in body and "\x7f" not in body, body[:2000]
    assert "nobody\ufffd\ufffd[31m&lt;b&gt;\ufffd" in body, body[:2000]


@pytest.fixture(scope="module")
def strict_site(module_factory):
    """Strict single use (no reuse interval): a spent refresh token is
    refused at once."""
    port = free_port()
    srv = module_factory(port=port, env=dict(
        CHEAP_ARGON2, JWTD_PUBLIC_URL="http://localhost:%d" % port,
        JWTD_REFRESH_REUSE_INTERVAL="0"))
    return srv


def test_head_does_not_spend_the_refresh_cookie(strict_site):
    """Trap: HEAD was served by GET's handler everywhere, and GET
    /auth/refresh/continue rotates the session, so a HEAD request (a link
    checker, a prefetch) spent the refresh token and the browser's next hop
    was refused as a reuse. HEAD is refused there with 405 and changes
    nothing (docs/pages.md)."""
    c = strict_site.client()
    username, password, _ = signup(c)
    r = post_form(c, "/login", {"username": username, "password": password},
                  headers={"Origin": own_origin(c)})
    assert r.status == 303, r
    cookie = session_cookie(r)
    assert "__Secure-jwtd_refresh=" in cookie, r
    path = "/auth/refresh/continue?rd=" + urllib.parse.quote("/account", safe="")
    h = c.request("HEAD", path, headers={"Cookie": cookie})
    assert h.status == 405, h
    assert h.header("Allow") == "GET, OPTIONS", h
    assert h.header_all("Set-Cookie") == [], h
    o = c.request("OPTIONS", path)
    assert o.status == 204 and o.header("Allow") == "GET, OPTIONS", o
    # the refresh token is unspent: GET renews the session ...
    g = c.get(path, headers={"Cookie": cookie})
    assert g.status == 303 and g.header("Location") == "/account", g
    assert any(s.startswith(ACCESS + "=") and not s.startswith(ACCESS + "=;")
               for s in g.header_all("Set-Cookie")), g
    # ... once: the same cookie again is a reuse, and the hop sends to sign-in
    again = c.get(path, headers={"Cookie": cookie})
    assert again.status == 303 and again.header("Location").startswith("/login"), again
    # every other GET route still answers HEAD like GET
    assert c.request("HEAD", "/login").status == 200
    c.close()


# --------------------------------------------------------------------------
# sign-out, and the renewal hop's default
# --------------------------------------------------------------------------

class Jar:
    """One browser's cookies, sent as a browser sends them: a cookie goes to
    the paths its Path matches (RFC 6265 5.1.4), so the refresh cookie
    (Path=/auth/refresh) reaches /auth/refresh/... and never /logout."""

    def __init__(self):
        self.cookies = {}  # name -> (value, path)

    def update(self, resp):
        for line in resp.header_all("Set-Cookie"):
            pair, _, attrs = line.partition(";")
            name, _, value = pair.strip().partition("=")
            path = "/"
            for a in attrs.split(";"):
                k, _, v = a.strip().partition("=")
                if k.lower() == "path":
                    path = v
            if value:
                self.cookies[name] = (value, path)
            else:
                self.cookies.pop(name, None)

    def value(self, name):
        return self.cookies[name][0]

    def header(self, path):
        def match(cp):
            return path == cp or (path.startswith(cp) and
                                  (cp.endswith("/") or path[len(cp)] == "/"))
        return "; ".join("%s=%s" % (n, v) for n, (v, cp) in self.cookies.items() if match(cp))


def page_sign_in(c, username, password):
    """Sign in through the page; the browser's cookies."""
    r = post_form(c, "/login", {"username": username, "password": password},
                  headers={"Origin": own_origin(c)})
    assert r.status == 303, r
    jar = Jar()
    jar.update(r)
    assert REFRESH in jar.cookies and ACCESS in jar.cookies, r
    return jar


def page_sign_out(c, jar, path, scope=None):
    """Post a sign-out form to path with what the browser sends there."""
    r = post_form(c, path, {"scope": scope} if scope else {},
                  headers={"Origin": own_origin(c)}, cookie=jar.header(path))
    jar.update(r)
    return r


def login_notice(c, location):
    body = c.get(location).body.decode()
    return body.split('role="status">', 1)[1].split("</p>", 1)[0] if 'role="status"' in body \
        else None


@pytest.fixture(scope="module")
def clocked(module_factory):
    """A server on jwtd's test clock (only ever moved forward)."""
    clock = Clock()
    port = free_port()
    srv = module_factory(port=port, env=dict(
        CHEAP_ARGON2, JWTD_PUBLIC_URL="http://localhost:%d" % port,
        JWTD_TEST_CLOCK=clock.path))
    srv.clock = clock
    yield srv
    clock.close()


def expire_access(srv):
    """jwtd's clock past the access cookie's lifetime (15 min) and leeway."""
    srv.clock.forward_to(srv.clock.now() + 15 * 60 + 30)


def test_sign_out_after_the_access_cookie_expired(clocked):
    """Trap: an account page left open past the access cookie's 15 minutes
    signed out only in the browser: /logout saw no valid access cookie,
    cleared the cookies and said "You are signed out.", and the session
    lived on (its refresh cookie, Path=/auth/refresh, never reaches
    /logout). The forms post to /auth/refresh/signout, where it does."""
    c = clocked.client()
    username, password, _ = signup(c)
    jar = page_sign_in(c, username, password)
    html = c.get("/account", headers={"Cookie": jar.header("/account")}).body.decode()
    assert html.count('action="/auth/refresh/signout"') == 2, html
    assert 'action="/logout"' not in html
    # the account page says what a first second factor does (docs/mfa.md)
    assert "Turning it on signs out your other sessions." in html, html
    token = jar.value(REFRESH)
    expire_access(clocked)
    r = c.get("/account", headers={"Cookie": jar.header("/account")})
    assert r.status == 303 and r.header("Location").startswith("/login"), "access still valid"

    r = page_sign_out(c, jar, "/auth/refresh/signout")
    assert r.status == 303 and r.header("Location") == "/login?done=signed_out", r
    assert jar.cookies == {}, jar.cookies
    gone = refresh(c, token)
    assert gone.status == 401 and "revoked" in gone.json["error_description"], gone
    assert login_notice(c, r.header("Location")) == "You are signed out."
    c.close()


def test_sign_out_everywhere_after_the_access_cookie_expired(clocked):
    """Trap: "Sign out everywhere" with an expired access cookie ended no
    session at all. With the refresh cookie it ends every session of the
    account: two browsers and an API client."""
    c = clocked.client()
    username, password, _ = signup(c)
    one, two = page_sign_in(c, username, password), page_sign_in(c, username, password)
    api = c.post("/auth/login", {"username": username, "password": password}).json
    tokens = [one.value(REFRESH), two.value(REFRESH), api["refresh_token"]]
    expire_access(clocked)

    r = page_sign_out(c, one, "/auth/refresh/signout", "all")
    assert r.status == 303, r
    assert r.header("Location") == "/login?done=signed_out_everywhere", r
    assert login_notice(c, r.header("Location")) == "You are signed out everywhere."
    assert one.cookies == {}
    for t in tokens:
        assert refresh(c, t).status == 401, "a session outlived Sign out everywhere"
    # the other browser's sign-out finds nothing left to end, and says so
    r = page_sign_out(c, two, "/auth/refresh/signout")
    assert r.header("Location") == "/login?done=no_session", r
    assert "found no live session" in login_notice(c, r.header("Location"))
    c.close()


def test_old_logout_form_hands_on_to_the_refresh_path(clocked):
    """POST /logout (pages rendered before /auth/refresh/signout): with a
    valid access cookie it signs out at once, as before; without one it
    hands the form on with 307, so that the browser posts it again where
    the refresh cookie goes, and the session really ends."""
    c = clocked.client()
    username, password, _ = signup(c)
    jar = page_sign_in(c, username, password)
    token = jar.value(REFRESH)
    r = page_sign_out(c, jar, "/logout")
    assert r.status == 303 and r.header("Location") == "/login?done=signed_out", r
    assert refresh(c, token).status == 401

    jar = page_sign_in(c, username, password)
    token = jar.value(REFRESH)
    expire_access(clocked)
    assert REFRESH not in jar.header("/logout")
    r = page_sign_out(c, jar, "/logout", "all")
    assert r.status == 307 and r.header("Location") == "/auth/refresh/signout", r
    assert r.header_all("Set-Cookie") == [], r
    r = page_sign_out(c, jar, r.header("Location"), "all")
    assert r.status == 303, r
    assert r.header("Location") == "/login?done=signed_out_everywhere", r
    assert refresh(c, token).status == 401
    c.close()


def test_sign_out_says_no_more_than_happened(clocked):
    """Nothing that identifies a session: the cookies are cleared and the
    notice says nothing ended. A refresh token retired past the reuse
    interval (a stolen copy, say) ends its own session, as /auth/refresh
    would, but cannot sign the account out everywhere: the notice says the
    other sessions live on, and they do."""
    c = clocked.client()
    for scope, notice in ((None, "no_session"), ("all", "not_everywhere")):
        r = page_sign_out(c, Jar(), "/auth/refresh/signout", scope)
        assert r.status == 303 and r.header("Location") == "/login?done=" + notice, r
        assert any(h.startswith(REFRESH + "=;") for h in r.header_all("Set-Cookie")), r

    username, password, _ = signup(c)
    stale = page_sign_in(c, username, password)
    other = c.post("/auth/login", {"username": username, "password": password}).json
    rotated = refresh(c, stale.value(REFRESH))
    assert rotated.status == 200, rotated
    expire_access(clocked)  # and long past JWTD_REFRESH_REUSE_INTERVAL (10 s)
    r = page_sign_out(c, stale, "/auth/refresh/signout", "all")
    assert r.status == 303 and r.header("Location") == "/login?done=not_everywhere", r
    assert "your other sessions are not" in login_notice(c, r.header("Location"))
    assert refresh(c, rotated.json["refresh_token"]).status == 401  # its session ended
    assert refresh(c, other["refresh_token"]).status == 200  # the other lives on
    c.close()


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "http://evil.test"}],
                         ids=["neither", "cross-site", "other-origin"])
def test_sign_out_form_is_checked_like_the_others(c, site, headers):
    """The same CSRF check as every page form: refused with 403, nothing
    changes, no cookie is touched."""
    username, password, _ = signup(c)
    jar = page_sign_in(c, username, password)
    h = dict(headers, Cookie=jar.header("/auth/refresh/signout"))
    r = c.request("POST", "/auth/refresh/signout", body=b"scope=all", headers=h,
                  content_type=FORM)
    assert r.status == 403 and r.header_all("Set-Cookie") == [], r
    assert refresh(c, jar.value(REFRESH)).status == 200


def test_pages_under_auth_say_no_store_once(c, site):
    """Found by an audit: a redirect or page under /auth/ (sign-out's 303,
    the renewal hop's refusal) carried two Cache-Control: no-store lines,
    its own and the one every /auth/ answer gets."""
    username, password, _ = signup(c)
    jar = page_sign_in(c, username, password)
    answers = [page_sign_out(c, jar, "/auth/refresh/signout"),
               c.get("/auth/refresh/continue?rd=" + urllib.parse.quote("//evil.test", safe="")),
               c.get("/auth/refresh/continue"),
               c.post("/auth/login", {"username": username, "password": password})]
    for r in answers:
        assert r.header_all("Cache-Control") == ["no-store"], r


@pytest.mark.parametrize("query", ["", "?rd="], ids=["no-rd", "empty-rd"])
def test_refresh_continue_without_rd_returns_to_the_account(c, site, query):
    """Trap: without rd, or with an empty one, the hop read rd
    uninitialised, so its Location (and the way back to /login) came from
    stack bytes. The default is /account; with nothing to renew, /login."""
    username, password, _ = signup(c)
    jar = page_sign_in(c, username, password)
    path = "/auth/refresh/continue" + query
    r = c.get(path, headers={"Cookie": jar.header(path)})
    assert r.status == 303 and r.header("Location") == "/account", r
    assert any(h.startswith(ACCESS + "=") and not h.startswith(ACCESS + "=;")
               for h in r.header_all("Set-Cookie")), r
    r = c.get(path)
    assert r.status == 303 and r.header("Location") == "/login", r


# --------------------------------------------------------------------------
# back-off on the pages, as on the JSON API
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tight(module_factory):
    """Three failures block an account for 20 s; two signups per address
    and window. On jwtd's test clock."""
    clock = Clock()
    port = free_port()
    srv = module_factory(port=port, env=dict(
        CHEAP_ARGON2, JWTD_PUBLIC_URL="http://localhost:%d" % port,
        JWTD_TEST_CLOCK=clock.path, JWTD_MFA_TICKET_TTL="5m",
        JWTD_LOGIN_MAX_FAILURES="3", JWTD_LOGIN_BACKOFF="20s", JWTD_SIGNUP_RATE="2"))
    srv.clock = clock
    yield srv
    clock.close()


def mfa_ticket_of(html):
    m = re.search(r'name="mfa_ticket" value="([^"]*)"', html)
    return m and m.group(1)


def alert_of(html):
    m = re.search(r'role="alert">([^<]*)<', html)
    return m and m.group(1)


def test_blocked_second_step_says_when_and_keeps_its_ticket(tight):
    """Found by an audit: while wrong codes had the account blocked, the
    second-step page answered 429 without Retry-After (the JSON API sends
    it), and showed the password form instead of the code form: the
    ticket, put back untried, was lost, and the password form was blocked
    too. Now the code form comes back with the ticket and Retry-After, and
    that ticket signs in once the block is over."""
    c = tight.client()
    try:
        username, password, _ = signup(c)
        tok = c.post("/auth/login", {"username": username, "password": password}).json
        r = c.post("/auth/mfa/totp", {"password": password}, token=tok["access_token"])
        otp = Otp(r.json["secret"], tight.clock)
        r = c.post("/auth/mfa/totp/confirm", {"code": otp.fresh()}, token=tok["access_token"])
        assert r.status == 200, r
        h = {"Origin": own_origin(c)}
        r = post_form(c, "/login", {"username": username, "password": password}, headers=h)
        ticket = mfa_ticket_of(r.body.decode())
        assert r.status == 200 and ticket, r
        for _ in range(3):
            r = post_form(c, "/login/mfa", {"mfa_ticket": ticket, "code": otp.wrong()}, headers=h)
            assert r.status == 401, r
        assert mfa_ticket_of(r.body.decode()) == ticket  # 3 of its 5 tries used
        blocked_at = tight.clock.now()
        # (any code: none is checked while blocked; fresh() would move the clock)
        r = post_form(c, "/login/mfa", {"mfa_ticket": ticket, "code": otp.wrong()}, headers=h)
        html = r.body.decode()
        assert r.status == 429, r
        assert 1 <= int(r.header("Retry-After")) <= 20, r.header("Retry-After")
        assert "Too many failed logins" in alert_of(html), html
        assert mfa_ticket_of(html) == ticket, html
        assert 'name="code"' in html and 'name="password"' not in html, html
        tight.clock.forward_to(blocked_at + 22)
        r = post_form(c, "/login/mfa", {"mfa_ticket": ticket, "code": otp.fresh()}, headers=h)
        assert r.status == 303 and r.header("Location") == "/account", r
    finally:
        c.close()


def test_signup_page_over_its_rate_says_when(tight):
    """Found by an audit: the sign-up page answered JWTD_SIGNUP_RATE's 429
    without the Retry-After the JSON API sends for it."""
    c = tight.client()
    try:
        for _ in range(3):
            r = post_form(c, "/signup", {"username": "p-" + secrets.token_hex(4),
                                         "password": strong_password()},
                          headers={"Origin": own_origin(c)})
            if r.status == 429:
                break
            assert r.status == 303, r
        assert r.status == 429, r
        assert int(r.header("Retry-After")) >= 1, r
        assert r.header("Content-Type").startswith("text/html"), r
    finally:
        c.close()


# --------------------------------------------------------------------------
# accessibility: what a screen reader gets from each page
# --------------------------------------------------------------------------

class Controls(html.parser.HTMLParser):
    """A page as assistive technology reads it: the title, the headings, and
    each form control (non-hidden input, button) with its accessible name:
    aria-label, else (an input) its <label>'s text, else (a button) its
    text."""

    COLLECT = {"title", "label", "button", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.title, self.headings, self.labels, self.controls = "", [], {}, []
        self.ids, self.alert_ids, self.open = set(), set(), []
        self.feed(text)
        for c in self.controls:
            a = c["attrs"]
            name = a.get("aria-label") or (self.labels.get(a.get("id"), "")
                                           if c["tag"] == "input" else c["text"])
            c["name"] = " ".join(name.split())

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
            if a.get("role") == "alert":
                self.alert_ids.add(a["id"])
        if tag == "input" and a.get("type") != "hidden":
            self.controls.append({"tag": tag, "attrs": a, "text": ""})
        elif tag in self.COLLECT:
            self.open.append((tag, a, []))

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            t, a, parts = self.open.pop()
            text = " ".join("".join(parts).split())
            if t == "title":
                self.title = text
            elif t == "label":
                self.labels[a.get("for")] = text
            elif t == "button":
                self.controls.append({"tag": t, "attrs": a, "text": text})
            else:
                self.headings.append((int(t[1]), text))

    def handle_data(self, data):
        for _, _, parts in self.open:
            parts.append(data)

    def names(self):
        return [c["name"] for c in self.controls]


def assert_accessible(text, fault=(), form=True):
    """The page's controls are told apart and its error is tied to the
    fields in `fault` (ids): only they are aria-invalid, described by the
    alert, and the focus is on one of them; a page whose purpose is a form
    (`form`) gives exactly one field the focus. Returns the parse."""
    p = Controls(text)
    assert p.headings and p.headings[0][0] == 1, p.headings
    assert [h for h in p.headings if h[0] == 1] == [p.headings[0]], p.headings
    assert p.title.startswith(p.headings[0][1] + " \u2014 "), (p.title, p.headings)
    for (a, _), (b, _) in zip(p.headings, p.headings[1:]):
        assert b <= a + 1, ("a heading level skipped", p.headings)
    names = p.names()
    assert all(names), ("a control without a name", [c for c in p.controls if not c["name"]])
    assert sorted(set(n for n in names if names.count(n) > 1)) == [], names
    for c in p.controls:
        for ref in c["attrs"].get("aria-describedby", "").split():
            assert ref in p.ids, ("aria-describedby names no element", c)
    invalid = {c["attrs"].get("id") for c in p.controls
               if c["attrs"].get("aria-invalid") == "true"}
    assert invalid == set(fault), (invalid, fault)
    for c in p.controls:
        if c["attrs"].get("id") in fault:
            refs = c["attrs"].get("aria-describedby", "").split()
            assert set(refs) & p.alert_ids, ("the error is not the field's description", c)
    focused = [c["attrs"].get("id") for c in p.controls if "autofocus" in c["attrs"]]
    assert len(focused) <= 1, focused
    if form or fault:
        assert len(focused) == 1, ("no field has the focus", focused)
    if fault:
        assert focused[0] in fault, (focused, fault)
    return p


@pytest.fixture(scope="module")
def mailed(module_factory, relay):
    """Mail (a real relay), passkeys (JWTD_PUBLIC_URL), a test clock for
    TOTP codes."""
    clock = Clock()
    port = free_port()
    srv = module_factory(port=port, env=relay.jwtd_env(
        JWTD_PUBLIC_URL="http://localhost:%d" % port, JWTD_TEST_CLOCK=clock.path,
        JWTD_MAIL_RATE="1000", JWTD_MAIL_ACCOUNT_RATE="100", **CHEAP_ARGON2))
    srv.public, srv.relay, srv.clock = "http://localhost:%d" % port, relay, clock
    yield srv
    clock.close()


def mailed_user(c, relay):
    """An account with an unconfirmed address: (username, password, address)."""
    a = "%s@pages-e2e.test" % uname("pg")
    for _ in range(5):
        username, password = uname("pg"), strong_password()
        r = c.post("/auth/signup", {"username": username, "password": password, "email": a})
        if r.status == 201:
            return username, password, a
    raise AssertionError(r)


def mail_token(relay, to, path, n=1):
    """The token of the n-th message to `to` whose link goes to `path`."""
    msgs = relay.wait_messages(n, to=to, what=path)
    links = [m.link for m in msgs if m.link and urllib.parse.urlsplit(m.link).path == path]
    assert links, msgs
    return urllib.parse.parse_qs(urllib.parse.urlsplit(links[-1]).query)["token"][0]


def test_every_page_tells_its_controls_apart(mailed):
    """Found by an audit: the account page had five password fields all
    named "Your password", a "Remove" button per passkey and a "Sign out"
    button per session (and the page's own), which a screen reader lists
    as identical (WCAG 2.4.6, 4.1.2); the sign-up page gave no field the
    focus, unlike the sign-in page. Each control's accessible name is its
    own now (a row's names its passkey, escaped, or its session), and every
    page passes the same audit."""
    c = mailed.client()
    h = {"Origin": own_origin(c)}
    try:
        for path in ("/login", "/signup", "/forgot-password"):
            assert_accessible(c.get(path).body.decode())
        username, password, a = mailed_user(c, mailed.relay)
        vtoken = mail_token(mailed.relay, a, "/verify-email")
        assert_accessible(c.get("/verify-email?token=" + vtoken).body.decode(), form=False)
        access = c.post("/auth/login", {"username": username, "password": password}).json[
            "access_token"]
        auth = Authenticator(mailed.public)
        names = ['Key "<1>"', "Key '2' & co"]
        for name in names:
            r = c.post("/auth/passkeys/register/options", {"password": password}, token=access)
            cred_json, _ = auth.create(r.json["publicKey"])
            r = c.post("/auth/passkeys/register", {"credential": cred_json, "name": name},
                       token=access)
            assert r.status == 201, r
        r = c.post("/auth/mfa/totp", {"password": password}, token=access)
        otp = Otp(r.json["secret"], mailed.clock)
        assert c.post("/auth/mfa/totp/confirm", {"code": otp.fresh()}, token=access).status == 200
        cookie = None
        for ua in ("Firefox/1 <a>", "Chromium/2", ""):
            r = post_form(c, "/login", {"username": username, "password": password},
                          headers=dict(h, **{"User-Agent": ua}))
            assert r.status == 200, r
            mfa_page = r.body.decode()
            assert_accessible(mfa_page)
            r = post_form(c, "/login/mfa", {"mfa_ticket": mfa_ticket_of(mfa_page),
                                            "code": otp.fresh()},
                          headers=dict(h, **{"User-Agent": ua}))
            assert r.status == 303, r
            cookie = session_cookie(r)
        text = c.get("/account", headers={"Cookie": cookie}).body.decode()
        p = assert_accessible(text, form=False)
        got = p.names()
        for name in names:
            assert "Remove the passkey \u201c%s\u201d" % name in got, got
            assert "Password to remove the passkey \u201c%s\u201d" % name in got, got
        assert html.escape(names[0], quote=True) in text and names[0] not in text
        assert len([n for n in got if n.startswith("Sign out the session of Firefox/1 <a>")]) \
            == 1, got
        assert len([n for n in got if n.startswith("Sign out the session of Chromium/2")]) \
            == 1, got
        # three others (the API's too) and the page's two
        assert len([n for n in got if n.startswith("Sign out")]) == 5, got
        assert len([n for n in got if n.startswith("Your password")]) == 4, got
        # the reset page of a link that works
        assert c.post("/auth/password/forgot", {"email": a}).status == 202
        rtoken = mail_token(mailed.relay, a, "/reset-password", n=2)
        assert_accessible(c.get("/reset-password?token=" + rtoken).body.decode())
    finally:
        c.close()


def test_an_error_is_tied_to_its_field(mailed):
    """Found by an audit: an error showed only at the top of the page; the
    field it was about did not say it was invalid nor why, and the focus
    stayed on the first field. Now the field (or fields, when the server
    does not say which: a wrong username or password) is aria-invalid,
    described by the alert, and has the focus; an error about no field (a
    limit) marks none."""
    c = mailed.client()
    h = {"Origin": own_origin(c)}
    try:
        username, password, a = mailed_user(c, mailed.relay)
        r = post_form(c, "/login", {"username": username, "password": "wrong-" + password},
                      headers=h)
        assert r.status == 401, r
        p = assert_accessible(r.body.decode(), fault=("username", "password"))
        assert [x["attrs"]["id"] for x in p.controls if "autofocus" in x["attrs"]] == ["password"]
        r = post_form(c, "/login", {"username": username, "password": ""}, headers=h)
        assert_accessible(r.body.decode(), fault=("password",))
        r = post_form(c, "/signup", {"username": username, "password": strong_password()},
                      headers=h)
        assert r.status == 409, r
        assert_accessible(r.body.decode(), fault=("username",))
        r = post_form(c, "/signup", {"username": uname("pg"), "password": "password"}, headers=h)
        assert r.status == 422, r
        p = assert_accessible(r.body.decode(), fault=("password",))
        pw = [x for x in p.controls if x["attrs"].get("id") == "password"][0]
        assert pw["attrs"]["aria-describedby"].split() == ["page-error", "password-hint"], pw
        r = post_form(c, "/forgot-password", {"identifier": ""}, headers=h)
        assert_accessible(r.body.decode(), fault=("identifier",))
        # the account page: the field of the form that was sent
        r = post_form(c, "/login", {"username": username, "password": password}, headers=h)
        cookie = session_cookie(r)
        r = post_form(c, "/account/password", {"current_password": "wrong-" + password,
                                               "new_password": strong_password()},
                      headers=h, cookie=cookie)
        assert r.status == 403, r  # wrong_password
        assert_accessible(r.body.decode(), fault=("current_password",), form=False)
        r = post_form(c, "/account/email/verify", {"code": "000000"}, headers=h, cookie=cookie)
        assert r.status >= 400, r
        assert_accessible(r.body.decode(), fault=("verify-code",), form=False)
        access = c.post("/auth/login", {"username": username, "password": password}).json[
            "access_token"]
        auth = Authenticator(mailed.public)
        for name in ("one", "two"):
            r = c.post("/auth/passkeys/register/options", {"password": password}, token=access)
            cred_json, _ = auth.create(r.json["publicKey"])
            assert c.post("/auth/passkeys/register", {"credential": cred_json, "name": name},
                          token=access).status == 201
        # (the first factor ended the page's session; the API's is the page's too)
        cookie = "%s=%s" % (ACCESS, access)
        pks = c.get("/auth/passkeys", token=access).json["passkeys"]
        second = [pk for pk in pks if pk["name"] == "two"][0]
        r = post_form(c, "/account/passkeys/remove", {"id": second["id"],
                                                      "password": "wrong-" + password},
                      headers=h, cookie=cookie)
        assert r.status == 403, r  # wrong_password
        p = assert_accessible(r.body.decode(), fault=(
            [x["attrs"]["id"] for x in Controls(r.body.decode()).controls
             if x["name"] == "Password to remove the passkey \u201ctwo\u201d"][0],), form=False)
        # the second step: the code's field
        r = c.post("/auth/mfa/totp", {"password": password}, token=access)
        otp = Otp(r.json["secret"], mailed.clock)
        assert c.post("/auth/mfa/totp/confirm", {"code": otp.fresh()}, token=access).status == 200
        r = post_form(c, "/login", {"username": username, "password": password}, headers=h)
        ticket = mfa_ticket_of(r.body.decode())
        r = post_form(c, "/login/mfa", {"mfa_ticket": ticket, "code": otp.wrong()}, headers=h)
        assert r.status == 401, r
        assert_accessible(r.body.decode(), fault=("code",))
        r = post_form(c, "/login/mfa", {"mfa_ticket": ticket, "recovery_code": "xxxxx-xxxxx"},
                      headers=h)
        assert r.status == 401, r
        assert_accessible(r.body.decode(), fault=("recovery_code",))
        # a reset link's weak password
        assert c.post("/auth/password/forgot", {"email": a}).status == 202
        token = mail_token(mailed.relay, a, "/reset-password", n=2)
        r = post_form(c, "/reset-password", {"token": token, "password": "password"}, headers=h)
        assert r.status == 422, r
        assert_accessible(r.body.decode(), fault=("password",))
    finally:
        c.close()


def test_refused_return_address_keeps_the_username(c, site):
    """Found by an audit: when POST /login refused its rd, the form came
    back empty, and the username had to be typed again. It is kept
    (escaped), and the focus goes to the password."""
    typed = 'al"ice<b>'
    r = post_form(c, "/login", {"username": typed, "password": "whatever-1",
                                "rd": "https://evil.test/"}, headers={"Origin": own_origin(c)})
    assert r.status == 400, r
    text = r.body.decode()
    assert 'value="al&quot;ice&lt;b&gt;"' in text, text
    assert 'name="rd" value=""' in text, text
    p = assert_accessible(text)
    assert [x["attrs"]["id"] for x in p.controls if "autofocus" in x["attrs"]] == ["password"]


# --------------------------------------------------------------------------
# mail links: a spent one says so when opened; opening one spends nothing
# --------------------------------------------------------------------------

def assert_link_spent(r, way):
    """The "this link no longer works" page: no form, the way to a new one."""
    text = r.body.decode()
    assert r.status == 400, r
    assert "This link is unknown, already used or expired." in text, text
    assert 'type="password"' not in text and "<form" not in text, text
    assert 'href="%s"' % way in text, text


def test_spent_link_says_so_when_opened(mailed):
    """Found by an audit: /reset-password and /verify-email showed their
    form for a used, replaced or unknown link, and said so only once the
    new password was typed and sent. Opening it says so at once, with the
    way to a new link; opening a good link any number of times (a mail
    gateway's scanner) and HEAD spend nothing: the form still works once."""
    c = mailed.client()
    h = {"Origin": own_origin(c)}
    try:
        username, password, a = mailed_user(c, mailed.relay)
        vtoken = mail_token(mailed.relay, a, "/verify-email")
        for _ in range(3):
            r = c.get("/verify-email?token=" + vtoken)
            assert r.status == 200 and 'name="token"' in r.body.decode(), r
        assert c.request("HEAD", "/verify-email?token=" + vtoken).status == 200
        r = post_form(c, "/verify-email", {"token": vtoken}, headers=h)
        assert r.status == 200 and "The address is confirmed" in r.body.decode(), r
        assert_link_spent(c.get("/verify-email?token=" + vtoken), "/account")

        assert c.post("/auth/password/forgot", {"email": a}).status == 202
        first = mail_token(mailed.relay, a, "/reset-password", n=2)
        for _ in range(3):
            r = c.get("/reset-password?token=" + first)
            assert r.status == 200 and 'type="password"' in r.body.decode(), r
        # a newer link replaces it
        assert c.post("/auth/password/forgot", {"email": a}).status == 202
        second = mail_token(mailed.relay, a, "/reset-password", n=3)
        assert second != first
        assert_link_spent(c.get("/reset-password?token=" + first), "/forgot-password")
        assert c.get("/reset-password?token=" + second).status == 200
        new = strong_password()
        r = post_form(c, "/reset-password", {"token": second, "password": new}, headers=h)
        assert r.status == 303 and r.header("Location") == "/login?done=password_set", r
        assert_link_spent(c.get("/reset-password?token=" + second), "/forgot-password")
        # unknown, but well formed
        assert_link_spent(c.get("/reset-password?token=" + "A" * 43), "/forgot-password")
        assert_link_spent(c.get("/verify-email?token=" + "A" * 43), "/account")
        assert c.post("/auth/login", {"username": username, "password": new}).status == 200
    finally:
        c.close()
