# SPDX-License-Identifier: Apache-2.0
"""CORS: off unless JWTD_CORS_ORIGINS lists origins; then only those origins,
and credentials only with them (API.md "Browser (cookie) delivery").

jwtd's choices (docs/browser.md, docs/api.md): a listed Origin gets
Access-Control-Allow-Origin: <that origin>, Access-Control-Allow-Credentials:
true and Vary: Origin; a preflight from a listed origin gets 204 with
Allow-Methods, Allow-Headers (Authorization, Content-Type, X-Requested-With)
and Max-Age; any other origin gets no Access-Control-* header at all (204 for
its preflight); `*` is never sent; OPTIONS on an unknown path is 404.
"""

import uuid

import pytest

from e2e_util import assert_error, new_user_tokens

APP = "https://app.example"
OTHER = "https://other.example"
REFUSED = ["https://evil.example", "http://app.example", "https://app.example.evil.com",
           "https://evil.app.example", "https://app.example:8443", "null", "https://app.example/"]


def acx(resp):
    """Every Access-Control-* header of a response."""
    return {k: v for k, v in resp.headers.items() if k.lower().startswith("access-control-")}


def tokens_of(values):
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def preflight(client, path, origin, method="POST", headers="content-type"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return client.request("OPTIONS", path, headers=h)


def requests_with_origin(client, origin):
    """A spread of responses (success, error, token response) for one Origin."""
    username, password, user, tokens = new_user_tokens(client)
    h = {"Origin": origin}
    creds = {"username": username, "password": password}
    return {
        "healthz": client.get("/healthz", headers=h),
        "login": client.post("/auth/login", creds, headers=h),
        "me": client.get("/auth/me", token=tokens["access_token"], headers=h),
        "me-401": client.get("/auth/me", headers=h),
        "verify": client.get("/auth/verify", token=tokens["access_token"], headers=h),
        "refresh": client.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]},
                               headers=h),
        "jwks": client.get("/.well-known/jwks.json", headers=h),
        "unknown-path": client.get("/nope", headers=h),
    }


@pytest.fixture(scope="module")
def cors(module_factory):
    return module_factory(env={"JWTD_CORS_ORIGINS": "%s,%s" % (APP, OTHER)})


@pytest.fixture
def cors_client(cors):
    c = cors.client()
    yield c
    c.close()


# ----------------------------------------------------------------- CORS off

@pytest.mark.parametrize("origin", [APP, "https://evil.example"])
def test_off_by_default_no_headers(client, origin):
    for name, r in requests_with_origin(client, origin).items():
        assert r.status < 500, (name, r)
        assert acx(r) == {}, "%s: CORS is off, yet %r" % (name, acx(r))


def test_off_by_default_preflight(client):
    r = preflight(client, "/auth/login", APP)
    assert r.status == 204, r
    assert acx(r) == {}, r
    assert "POST" in tokens_of(r.header_all("Allow")), r


# ------------------------------------------------------------ listed origin

@pytest.mark.parametrize("origin", [APP, OTHER])
def test_listed_origin_gets_credentials(cors_client, origin):
    for name, r in requests_with_origin(cors_client, origin).items():
        assert r.header_all("Access-Control-Allow-Origin") == [origin], (name, r)
        assert r.header("Access-Control-Allow-Credentials") == "true", (name, r)
        vary = [v.lower() for v in tokens_of(r.header_all("Vary"))]
        assert "origin" in vary, (name, r)


@pytest.mark.parametrize("path,method,req_headers,want_headers", [
    ("/auth/login", "POST", "content-type", ["content-type"]),
    ("/auth/refresh", "POST", "Content-Type", ["content-type"]),
    ("/auth/me", "GET", "authorization", ["authorization"]),
    ("/auth/me", "DELETE", "authorization, content-type", ["authorization", "content-type"]),
    ("/auth/logout", "POST", "authorization,content-type", ["authorization", "content-type"]),
    ("/auth/sessions/5f0c3b8e-2d1a-4c6e-9b7f-0a1b2c3d4e5f", "DELETE", "authorization", ["authorization"]),
])
def test_listed_origin_preflight(cors_client, path, method, req_headers, want_headers):
    r = preflight(cors_client, path, APP, method, req_headers)
    assert r.status == 204, r
    assert r.header_all("Access-Control-Allow-Origin") == [APP], r
    assert r.header("Access-Control-Allow-Credentials") == "true", r
    methods = tokens_of(r.header_all("Access-Control-Allow-Methods"))
    assert method in methods, "Allow-Methods %r lacks %s" % (methods, method)
    allowed = [h.lower() for h in tokens_of(r.header_all("Access-Control-Allow-Headers"))]
    for h in want_headers:
        assert h in allowed, "Allow-Headers %r lacks %s" % (allowed, h)
    max_age = r.header("Access-Control-Max-Age")
    assert max_age is not None and max_age.isdigit() and int(max_age) > 0, r
    assert "origin" in [v.lower() for v in tokens_of(r.header_all("Vary"))], r


# ----------------------------------------------------------- refused origin

@pytest.mark.parametrize("origin", REFUSED)
def test_refused_origin_preflight(cors_client, origin):
    r = preflight(cors_client, "/auth/login", origin)
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Origin") is None, r
    assert r.header("Access-Control-Allow-Credentials") is None, r
    assert acx(r) == {}, r


@pytest.mark.parametrize("origin", REFUSED[:3])
def test_refused_origin_requests(cors_client, origin):
    for name, r in requests_with_origin(cors_client, origin).items():
        assert acx(r) == {}, "%s from %s: %r" % (name, origin, acx(r))


def test_no_origin_no_cors_headers(cors_client):
    r = cors_client.get("/healthz")
    assert acx(r) == {}, r


def test_never_wildcard(cors_client, client):
    seen = []
    for c in (cors_client, client):
        for origin in [APP, OTHER] + REFUSED:
            seen += list(requests_with_origin(c, origin).values())
            seen.append(preflight(c, "/auth/login", origin))
    for r in seen:
        assert "*" not in r.header_all("Access-Control-Allow-Origin"), r
        assert r.header("Access-Control-Allow-Credentials") in (None, "true"), r
        if r.header("Access-Control-Allow-Credentials"):
            assert r.header("Access-Control-Allow-Origin") in (APP, OTHER), r


@pytest.mark.parametrize("origin", [None, APP])
def test_options_unknown_path(cors_client, origin):
    h = {"Access-Control-Request-Method": "POST"}
    if origin:
        h["Origin"] = origin
    r = cors_client.request("OPTIONS", "/auth/nope", headers=h)
    assert_error(r, 404, "not_found")
    r = cors_client.request("OPTIONS", "/nope")
    assert_error(r, 404, "not_found")


def test_listed_origins_compare_as_a_browser_writes_them(jwtd_factory):
    """Trap: an origin listed as "https://App.example.test:443" (upper
    case, default port) matched no browser's Origin header, and a port out
    of range (":99999") was taken. Listed origins are kept as a browser
    writes an origin; a bad one stops start-up."""
    srv = jwtd_factory(env={"JWTD_CORS_ORIGINS": "HTTPS://App.Example.TEST:443, "
                                                 "http://[::1]:8081"})
    c = srv.client()
    for origin in ("https://app.example.test", "http://[::1]:8081"):
        r = c.get("/healthz", headers={"Origin": origin})
        assert r.header_all("Access-Control-Allow-Origin") == [origin], (origin, r)
    r = c.get("/healthz", headers={"Origin": "https://app.example.test:8443"})
    assert acx(r) == {}, r
    c.close()
