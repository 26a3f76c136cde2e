# SPDX-License-Identifier: Apache-2.0
"""Browser (cookie) delivery and its CSRF protection.

API.md "Browser (cookie) delivery": with "delivery": "cookie" the tokens come
as cookies (access: HttpOnly; Secure; SameSite=Strict; Path=/, refresh:
HttpOnly; Secure; SameSite=Strict; Path=/auth/refresh); /auth/refresh takes the
refresh cookie, the Bearer routes take the access cookie, logout clears both;
cookie-authenticated state changes need CSRF protection that a cross-site form
post cannot pass. jwtd's choices (docs/browser.md): cookie names
__Host-jwtd_access and __Secure-jwtd_refresh; a cookie-authenticated
POST/PUT/PATCH/DELETE whose Origin is neither jwtd's own (from Host) nor in
JWTD_CORS_ORIGINS, or whose Sec-Fetch-Site is cross-site from an unlisted
origin, or (with neither header) whose Referer names another origin, is 403
csrf_rejected; form media types are 415; Bearer requests are
not subject to the Origin check.
"""

import time

import pytest

from e2e_util import (assert_error, assert_invalid_grant, assert_no_store,
                      assert_refused_within, assert_security_headers, assert_user, jwt_parts,
                      signup, strong_password)

ACCESS = "__Host-jwtd_access"
REFRESH = "__Secure-jwtd_refresh"
EVIL = "https://evil.example"


def parse_set_cookie(value):
    """(name, value, {attribute-name-lowercased: value or True})."""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        k = k.strip().lower()
        assert k not in attrs, "attribute %r twice in %r" % (k, value)
        attrs[k] = v.strip() if eq else True
    return name.strip(), val.strip(), attrs


def set_cookies(resp):
    out = {}
    for h in resp.header_all("Set-Cookie"):
        name, val, attrs = parse_set_cookie(h)
        assert name not in out, "cookie %s set twice: %r" % (name, resp.header_all("Set-Cookie"))
        out[name] = (val, attrs)
    return out


def assert_cookie_attrs(attrs, path):
    assert attrs.get("path") == path, attrs
    assert attrs.get("httponly") is True, attrs
    assert attrs.get("secure") is True, attrs
    assert str(attrs.get("samesite", "")).lower() == "strict", attrs
    assert "domain" not in attrs, attrs


def assert_cookie_tokens(resp, user=None):
    """A token response delivered as cookies: (access_jwt, refresh_token)."""
    assert resp.status == 200, resp
    assert_no_store(resp)
    assert_security_headers(resp)
    body = resp.json
    assert "access_token" not in body and "refresh_token" not in body, body
    assert set(body) == {"token_type", "expires_in", "user"}, body
    assert body["token_type"] == "Bearer"
    assert_user(body["user"])
    if user is not None:
        assert body["user"] == user
    cookies = set_cookies(resp)
    assert set(cookies) == {ACCESS, REFRESH}, resp.header_all("Set-Cookie")
    access, a_attrs = cookies[ACCESS]
    refresh_tok, r_attrs = cookies[REFRESH]
    assert_cookie_attrs(a_attrs, "/")
    assert_cookie_attrs(r_attrs, "/auth/refresh")
    assert a_attrs.get("max-age") == str(body["expires_in"]), a_attrs
    assert r_attrs.get("max-age") == str(30 * 86400), r_attrs       # JWTD_REFRESH_TTL default
    claims = jwt_parts(access)[1]
    assert claims["sub"] == body["user"]["id"]
    assert refresh_tok and refresh_tok != access
    return access, refresh_tok


def ac(access):
    return {"Cookie": "%s=%s" % (ACCESS, access)}


def rc(refresh_tok):
    return {"Cookie": "%s=%s" % (REFRESH, refresh_tok)}


def cookie_login(client, username, password):
    r = client.post("/auth/login", {"username": username, "password": password,
                                    "delivery": "cookie"})
    return assert_cookie_tokens(r)


@pytest.fixture
def account(client):
    username, password, user = signup(client)
    access, refresh_tok = cookie_login(client, username, password)
    return {"username": username, "password": password, "user": user, "access": access,
            "refresh": refresh_tok}


def me_by_cookie(client, access, **hdrs):
    return client.get("/auth/me", headers=dict(ac(access), **hdrs))


def assert_alive(client, account):
    r = me_by_cookie(client, account["access"])
    assert r.status == 200 and r.json == {"user": account["user"]}, r


# ------------------------------------------------------------------ delivery

def test_login_cookie_delivery(client):
    username, password, user = signup(client)
    r = client.post("/auth/login", {"username": username, "password": password,
                                    "delivery": "cookie"})
    assert_cookie_tokens(r, user)
    assert len(r.header_all("Set-Cookie")) == 2


def test_body_delivery_sets_no_cookie(client):
    username, password, user = signup(client)
    for body in ({"username": username, "password": password},
                 {"username": username, "password": password, "delivery": "body"}):
        r = client.post("/auth/login", body)
        assert r.status == 200 and "access_token" in r.json, r
        assert r.header_all("Set-Cookie") == [], r


def test_access_cookie_authenticates_me_and_verify(client, account):
    r = me_by_cookie(client, account["access"])
    assert r.status == 200 and r.json == {"user": account["user"]}, r
    r = client.get("/auth/verify", headers=ac(account["access"]))
    assert r.status == 200 and r.body == b"", r
    assert r.header("X-Auth-User-Id") == account["user"]["id"]
    assert r.header("X-Auth-Username") == account["username"]
    r = client.get("/auth/sessions", headers=ac(account["access"]))
    assert r.status == 200 and len(r.json["sessions"]) == 1, r


def test_refresh_cookie_is_not_an_access_cookie(client, account):
    r = client.get("/auth/me", headers=rc(account["refresh"]))
    assert_error(r, 401, "invalid_token")
    assert r.header("WWW-Authenticate") == 'Bearer realm="jwtd"'


def test_header_wins_over_cookie(client, account):
    r = client.get("/auth/me", token="bad.token.here", headers=ac(account["access"]))
    assert_error(r, 401, "invalid_token")
    r = client.get("/auth/me", token=account["access"], headers=ac("bad.token.here"))
    assert r.status == 200, r


@pytest.mark.parametrize("variant", ["no-body", "empty-object"])
def test_refresh_with_cookie(client, account, variant):
    kw = {"headers": rc(account["refresh"])}
    if variant == "no-body":
        r = client.request("POST", "/auth/refresh", **kw)
    else:
        r = client.post("/auth/refresh", {}, **kw)
    access2, refresh2 = assert_cookie_tokens(r, account["user"])
    assert refresh2 != account["refresh"] and access2 != account["access"]
    assert jwt_parts(access2)[1]["sid"] == jwt_parts(account["access"])[1]["sid"]
    assert me_by_cookie(client, access2).status == 200
    # and the new refresh cookie rotates again
    assert_cookie_tokens(client.request("POST", "/auth/refresh", headers=rc(refresh2)))


def test_tossed_cookies_are_ambiguous_and_taken_for_none(client, account):
    """Cookie tossing (RFC 6265, 8.6): a sibling subdomain can set a cookie
    of our name for the parent domain and a longer path, which the browser
    then sends before ours. Found by an audit: the first of two was taken,
    so an intruder's refresh cookie signed the victim's browser into the
    intruder's session. Two cookies of one name are now no cookie (400 on
    /auth/refresh, 401 on Bearer routes), no rotation of either; one alone
    still works."""
    intruder = {}
    u, p, _ = signup(client)
    intruder["access"], intruder["refresh"] = cookie_login(client, u, p)
    both_refresh = {"Cookie": "%s=%s; %s=%s" % (REFRESH, intruder["refresh"], REFRESH,
                                                 account["refresh"])}
    r = client.request("POST", "/auth/refresh", headers=both_refresh)
    assert_error(r, 400, "invalid_request")        # as with no refresh cookie at all
    assert r.header_all("Set-Cookie") == [] or all(
        "Max-Age=0" in c for c in r.header_all("Set-Cookie")), r
    both_access = {"Cookie": "%s=%s; %s=%s" % (ACCESS, intruder["access"], ACCESS,
                                                account["access"])}
    for path in ("/auth/me", "/auth/verify"):
        r = client.get(path, headers=both_access)
        assert r.status == 401, (path, r)
        assert r.header("WWW-Authenticate") == 'Bearer realm="jwtd"', r
    # neither refresh token was used: each still rotates on its own
    assert_cookie_tokens(client.request("POST", "/auth/refresh", headers=rc(account["refresh"])),
                         account["user"])
    assert_cookie_tokens(client.request("POST", "/auth/refresh", headers=rc(intruder["refresh"])))


def test_refresh_body_token_with_cookie_delivery(client):
    username, password, user = signup(client)
    r = client.post("/auth/login", {"username": username, "password": password})
    rt = r.json["refresh_token"]
    r = client.post("/auth/refresh", {"refresh_token": rt, "delivery": "cookie"})
    assert_cookie_tokens(r, user)


def test_logout_with_cookie_clears_both(client, account):
    r = client.request("POST", "/auth/logout", headers=ac(account["access"]))
    since = time.monotonic()
    assert r.status == 204 and r.body == b"", r
    cookies = set_cookies(r)
    assert set(cookies) == {ACCESS, REFRESH}, r.header_all("Set-Cookie")
    for name, path in ((ACCESS, "/"), (REFRESH, "/auth/refresh")):
        val, attrs = cookies[name]
        assert val == "", "cleared cookie %s still has a value" % name
        assert attrs.get("max-age") == "0", attrs
        # a browser only replaces a cookie of the same name and path, and drops a
        # __Host-/__Secure- cookie that lacks Secure
        assert attrs.get("path") == path and attrs.get("secure") is True, attrs
    assert_refused_within(client, account["access"], since)
    r = me_by_cookie(client, account["access"])
    assert_error(r, 401, "invalid_token")
    r = client.request("POST", "/auth/refresh", headers=rc(account["refresh"]))
    assert_invalid_grant(r, "revoked")


def test_logout_with_a_dead_access_cookie_still_clears_both(client, account):
    """Trap: api.md says logout always clears the cookies, but a logout with
    an access cookie already revoked (another tab's logout, a session ended
    on the account page) answered 401 and left both cookies in the browser.
    The 401 clears them now; a refused Bearer header clears nothing."""
    sid = jwt_parts(account["access"])[1]["sid"]
    r = client.request("DELETE", "/auth/sessions/" + sid, headers=ac(account["access"]))
    since = time.monotonic()
    assert r.status == 204, r
    assert_refused_within(client, account["access"], since)
    r = client.request("POST", "/auth/logout", headers=ac(account["access"]))
    assert_error(r, 401, "invalid_token")
    cookies = set_cookies(r)
    assert set(cookies) == {ACCESS, REFRESH}, r.header_all("Set-Cookie")
    for name, path in ((ACCESS, "/"), (REFRESH, "/auth/refresh")):
        val, attrs = cookies[name]
        assert val == "" and attrs.get("max-age") == "0" and attrs.get("path") == path, attrs
    r = client.request("POST", "/auth/logout", token=account["access"])
    assert_error(r, 401, "invalid_token")
    assert not r.header_all("Set-Cookie"), r.header_all("Set-Cookie")


def test_dead_refresh_cookie_is_cleared(client, account):
    """Trap: a refresh cookie that could never work again (its session
    revoked) was refused with 401 invalid_grant and left in the browser,
    which kept sending it. The refusal clears both cookies now; a refused
    token from the body clears nothing."""
    sid = jwt_parts(account["access"])[1]["sid"]
    r = client.request("DELETE", "/auth/sessions/" + sid, headers=ac(account["access"]))
    assert r.status == 204, r
    r = client.request("POST", "/auth/refresh", headers=rc(account["refresh"]))
    assert_invalid_grant(r, "revoked")
    cookies = set_cookies(r)
    assert set(cookies) == {ACCESS, REFRESH}, r.header_all("Set-Cookie")
    for name, path in ((ACCESS, "/"), (REFRESH, "/auth/refresh")):
        val, attrs = cookies[name]
        assert val == "" and attrs.get("max-age") == "0" and attrs.get("path") == path, attrs
    r = client.post("/auth/refresh", {"refresh_token": account["refresh"], "delivery": "cookie"})
    assert_invalid_grant(r, "revoked")
    assert not r.header_all("Set-Cookie"), r.header_all("Set-Cookie")


@pytest.mark.parametrize("delivery", ["Cookie", "cookies", "", "header", 1, True, ["cookie"]])
def test_bad_delivery(client, delivery):
    username, password, user = signup(client)
    r = client.post("/auth/login", {"username": username, "password": password,
                                    "delivery": delivery})
    assert_error(r, 400, "invalid_request")
    assert r.header_all("Set-Cookie") == []


def test_bad_delivery_on_refresh(client):
    username, password, user = signup(client)
    r = client.post("/auth/login", {"username": username, "password": password})
    rt = r.json["refresh_token"]
    r = client.post("/auth/refresh", {"refresh_token": rt, "delivery": "sms"})
    assert_error(r, 400, "invalid_request")
    # the token was not spent by the refused request
    r = client.post("/auth/refresh", {"refresh_token": rt})
    assert r.status == 200, r


# --------------------------------------------------------------------- CSRF

# Reading: jwtd's own origin is "as named by the Host header" (docs/browser.md),
# which carries no scheme; behind a TLS-terminating proxy jwtd cannot know it,
# so https://<Host> is not treated as foreign here (jwtd accepts it).
FOREIGN_ORIGINS = {
    "evil": lambda srv: EVIL,
    "null": lambda srv: "null",
    "other-port": lambda srv: "http://%s:%d" % (srv.host, srv.port % 65535 + 1),
    "other-host-name": lambda srv: "http://localhost:%d" % srv.port,
    "suffix": lambda srv: "http://%s:%d.evil.example" % (srv.host, srv.port),
}


@pytest.mark.parametrize("which", sorted(FOREIGN_ORIGINS))
def test_cookie_logout_foreign_origin_refused(server, client, account, which):
    origin = FOREIGN_ORIGINS[which](server)
    r = client.request("POST", "/auth/logout", headers=dict(ac(account["access"]), Origin=origin))
    assert_error(r, 403, "csrf_rejected")
    assert r.header_all("Set-Cookie") == [], "a refused request must not clear cookies"
    time.sleep(0.3)     # more than one revocation poll
    assert_alive(client, account)


def test_cookie_logout_cross_site_fetch_refused(client, account):
    r = client.request("POST", "/auth/logout",
                       headers=dict(ac(account["access"]), **{"Sec-Fetch-Site": "cross-site"}))
    assert_error(r, 403, "csrf_rejected")
    time.sleep(0.3)
    assert_alive(client, account)


@pytest.mark.parametrize("content_type,body", [
    ("application/x-www-form-urlencoded", "scope=all"),
    ("multipart/form-data; boundary=xyz",
     '--xyz\r\nContent-Disposition: form-data; name="scope"\r\n\r\nall\r\n--xyz--\r\n'),
    ("text/plain", '{"scope": "all"}'),
])
def test_cookie_form_post_refused(client, account, content_type, body):
    """What an HTML form can send (no Origin here: a browser that omits it)."""
    username = account["username"]
    other = client.post("/auth/login", {"username": username, "password": account["password"]}).json
    r = client.request("POST", "/auth/logout", body=body, content_type=content_type,
                       headers=ac(account["access"]))
    assert_error(r, 415, "unsupported_media_type")
    time.sleep(0.3)
    assert_alive(client, account)
    assert client.get("/auth/me", token=other["access_token"]).status == 200


def test_cookie_cross_site_form_post_refused(client, account):
    """The full cross-site form post: foreign Origin, cross-site, form type."""
    r = client.request("POST", "/auth/logout", body="scope=all",
                       content_type="application/x-www-form-urlencoded",
                       headers=dict(ac(account["access"]), Origin=EVIL,
                                    **{"Sec-Fetch-Site": "cross-site"}))
    assert r.status in (403, 415), r
    assert_error(r, r.status, {403: "csrf_rejected", 415: "unsupported_media_type"}[r.status])
    time.sleep(0.3)
    assert_alive(client, account)


def test_cookie_same_origin_allowed(server, client, account):
    origin = "http://%s:%d" % (server.host, server.port)      # http.client sends this Host
    r = client.request("POST", "/auth/logout",
                       headers=dict(ac(account["access"]), Origin=origin,
                                    **{"Sec-Fetch-Site": "same-origin"}))
    assert r.status == 204, r
    since = time.monotonic()
    assert_refused_within(client, account["access"], since)


def test_cookie_no_origin_allowed(client, account):
    """A non-browser client (no Origin, no Sec-Fetch-*) with the cookie."""
    r = client.post("/auth/logout", {"scope": "session"}, headers=ac(account["access"]))
    assert r.status == 204, r


@pytest.mark.parametrize("referer", [EVIL + "/attack.html", "http://localhost:{port}/",
                                     "https://user@{host}:{port}/", "ftp://{host}:{port}/",
                                     "not a url"])
def test_cookie_logout_with_only_a_foreign_referer_refused(server, client, account, referer):
    """Neither Origin nor Sec-Fetch-Site (an old browser, or one whose page
    told it to omit Origin), but a Referer: it must name jwtd's own origin
    (OWASP's fallback), or the request is refused like a foreign Origin."""
    referer = referer.format(host=server.host, port=server.port)
    r = client.request("POST", "/auth/logout", headers=dict(ac(account["access"]), Referer=referer))
    assert_error(r, 403, "csrf_rejected")
    assert r.header_all("Set-Cookie") == []
    time.sleep(0.3)
    assert_alive(client, account)


def test_cookie_logout_with_own_referer_allowed(server, client, account):
    own = "http://%s:%d/some/page?x=1" % (server.host, server.port)
    r = client.request("POST", "/auth/logout", headers=dict(ac(account["access"]), Referer=own))
    assert r.status == 204, r
    since = time.monotonic()
    assert_refused_within(client, account["access"], since)


@pytest.mark.parametrize("route", ["password", "delete_me", "delete_session", "logout_all"])
def test_cookie_state_changes_from_foreign_origin_refused(client, account, route):
    """Every cookie-authenticated state change, even with the right password."""
    other = client.post("/auth/login", {"username": account["username"],
                                        "password": account["password"]}).json
    other_sid = jwt_parts(other["access_token"])[1]["sid"]
    hdrs = dict(ac(account["access"]), Origin=EVIL, **{"Sec-Fetch-Site": "cross-site"})
    if route == "password":
        r = client.post("/auth/password", {"current_password": account["password"],
                                           "new_password": strong_password()}, headers=hdrs)
    elif route == "delete_me":
        r = client.request("DELETE", "/auth/me", json_body={"password": account["password"]},
                           headers=hdrs)
    elif route == "delete_session":
        r = client.request("DELETE", "/auth/sessions/" + other_sid, headers=hdrs)
    else:
        r = client.post("/auth/logout", {"scope": "all"}, headers=hdrs)
    assert_error(r, 403, "csrf_rejected")
    time.sleep(0.3)
    assert_alive(client, account)
    assert client.get("/auth/me", token=other["access_token"]).status == 200
    r = client.post("/auth/login", {"username": account["username"],
                                    "password": account["password"]})
    assert r.status == 200, "the password or the account changed: %r" % r


def test_cookie_get_from_foreign_origin_is_not_a_state_change(client, account):
    """Reading (docs/browser.md): only POST/PUT/PATCH/DELETE are checked."""
    r = client.get("/auth/verify", headers=dict(ac(account["access"]), Origin=EVIL,
                                                **{"Sec-Fetch-Site": "cross-site"}))
    assert r.status == 200, r


def test_bearer_with_foreign_origin_not_refused(client):
    username, password, user = signup(client)
    t = client.post("/auth/login", {"username": username, "password": password}).json
    hdrs = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    r = client.get("/auth/me", token=t["access_token"], headers=hdrs)
    assert r.status == 200, r
    r = client.post("/auth/refresh", {"refresh_token": t["refresh_token"]}, headers=hdrs)
    assert r.status == 200, "a refresh token in the body is not cookie-authenticated: %r" % r
    r = client.post("/auth/logout", token=r.json["access_token"], headers=hdrs)
    assert r.status == 204, r


def test_refresh_cookie_foreign_origin_refused(jwtd_factory):
    """On a strict server (interval 0) so that a refused request which had
    nevertheless rotated the token would make the next use fail."""
    srv = jwtd_factory(env={"JWTD_REFRESH_REUSE_INTERVAL": "0"})
    c = srv.client()
    username, password, user = signup(c)
    access, refresh_tok = cookie_login(c, username, password)
    for hdrs in ({"Origin": EVIL}, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
                 {"Sec-Fetch-Site": "cross-site"}):
        r = c.request("POST", "/auth/refresh", headers=dict(rc(refresh_tok), **hdrs))
        assert_error(r, 403, "csrf_rejected")
        assert r.header_all("Set-Cookie") == []
        r = c.post("/auth/refresh", {}, headers=dict(rc(refresh_tok), **hdrs))
        assert_error(r, 403, "csrf_rejected")
    # the refresh token was neither spent nor the session revoked
    r = c.request("POST", "/auth/refresh",
                  headers=dict(rc(refresh_tok), Origin="http://%s:%d" % (srv.host, srv.port)))
    assert_cookie_tokens(r, user)
    c.close()


def test_cors_listed_origin_passes_csrf(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_CORS_ORIGINS": "https://app.example"})
    c = srv.client()
    username, password, user = signup(c)
    access, refresh_tok = cookie_login(c, username, password)
    listed = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
    r = c.request("POST", "/auth/refresh", headers=dict(rc(refresh_tok), **listed))
    access, refresh_tok = assert_cookie_tokens(r, user)
    r = c.request("POST", "/auth/logout", headers=dict(ac(access), Origin=EVIL))
    assert_error(r, 403, "csrf_rejected")
    r = c.request("POST", "/auth/logout", headers=dict(ac(access), **listed))
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Origin") == "https://app.example"
    c.close()
