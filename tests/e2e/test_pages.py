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
- /auth/refresh/continue without `rd` returns to the documented default.
"""

import secrets
import urllib.parse

import pytest

from e2e_util import free_port, signup, strong_password

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
    if ok:
        assert r.status == 303, r
        assert any(s.startswith(ACCESS + "=") for s in r.header_all("Set-Cookie")), r
    else:
        assert r.status == 403, r
        assert r.header_all("Set-Cookie") == [], r


def rd_status(c, rd):
    return c.get("/login?rd=" + urllib.parse.quote(rd, safe="")).status


@pytest.mark.parametrize("rd", [
    "/account", "/account?from=rd",
    "SELF/x", "SELF/",
    "https://app.jwtd.test/x?y=1", "https://app.jwtd.test:8443/x", "https://a.apps.jwtd.test/",
    "https://app.jwtd.test/a%27b", "https://app.jwtd.test/~a_b-c.d!$&()*+,;=:@/?q#f",
])
def test_allowed_return_addresses(c, site, rd):
    assert rd_status(c, rd.replace("SELF", site.public)) == 200, rd


@pytest.mark.parametrize("rd", [
    # jwtd's own host, but another origin: another port, another scheme
    "http://localhost:9/x", "https://localhost/x", "http://localhost/x",
    # canonical ports only
    "https://app.jwtd.test:0443/x", "https://app.jwtd.test:00000000443/x",
    "https://app.jwtd.test:/x", "https://app.jwtd.test:65536/x",
    # characters outside RFC 3986, quotes, brackets, bare %
    "https://app.jwtd.test/a'b", "https://app.jwtd.test/a`b", "https://app.jwtd.test/{x}",
    "https://app.jwtd.test/a|b", "https://app.jwtd.test/a^b", "https://app.jwtd.test/50%",
    "https://app.jwtd.test/%zz", "https://app.jwtd.test/caf\u00e9", "https://[::1]/x",
    "/a'b", "/x\"y",
    # the usual suspects
    "//evil.test", "/\\evil.test", "https://evil.test/", "https://app.jwtd.test.evil.test/",
    "https://app.jwtd.test@evil.test/", "https://apps.jwtd.test/",
])
def test_refused_return_addresses(c, site, rd):
    """Trap: jwtd's own host was accepted on any port and scheme (another
    site on the same machine), ports with leading zeros and quotes went
    through, against the documented rule."""
    assert rd_status(c, rd) == 400, rd


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
# the renewal hop's default
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
