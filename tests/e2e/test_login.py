# SPDX-License-Identifier: Apache-2.0
"""POST /auth/login: the token response, the access token, refused logins,
and imported bcrypt hashes (re-hashed to argon2id at the next login)."""

import secrets
import statistics
import time

import pytest

from e2e_util import (assert_error, assert_json_content_type, assert_security_headers, bcrypt_hash,
                      assert_user, assert_uuid, jwt_parts, login, now, signup,
                      uname)


def test_token_response_shape(client):
    username, password, user = signup(client)
    r = client.post("/auth/login", {"username": username, "password": password})
    assert r.status == 200, r
    assert_json_content_type(r)
    assert_security_headers(r)
    cc = [d.strip().lower() for d in (r.header("Cache-Control") or "").split(",")]
    assert "no-store" in cc, r.header("Cache-Control")
    body = r.json
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}, body
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int and body["expires_in"] == 900
    assert_user(body["user"], username)
    assert body["user"] == user
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    raw = r.body.decode("utf-8")
    assert password not in raw and "$argon2" not in raw


def test_refresh_token_is_opaque(client):
    username, password, _ = signup(client)
    body = login(client, username, password)
    rt = body["refresh_token"]
    assert isinstance(rt, str) and len(rt) >= 43, rt       # >= 256 bits in base64url
    assert rt != body["access_token"]
    assert rt.isascii() and rt.isprintable() and " " not in rt
    # opaque: not a JWT that would carry claims
    with pytest.raises(Exception):
        jwt_parts(rt)
    assert body["access_token"] not in rt
    # a new one at each login
    assert login(client, username, password)["refresh_token"] != rt


def test_access_token_header_and_claims(server, client):
    username, password, user = signup(client)
    before = now()
    body = login(client, username, password)
    after = now()
    header, claims, sig = jwt_parts(body["access_token"])
    assert header.get("alg") == "ES256" and header.get("typ") == "JWT", header
    assert isinstance(header.get("kid"), str) and header["kid"], header
    assert set(header) == {"alg", "typ", "kid"}, header
    assert len(sig) == 64                                  # raw r||s, not DER
    jwks = client.get("/.well-known/jwks.json").json
    assert header["kid"] in [k.get("kid") for k in jwks["keys"]]

    for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "sid", "preferred_username"):
        assert claim in claims, (claim, claims)
    assert claims["iss"] == server.issuer == "http://" + server.listen
    assert claims["sub"] == user["id"]
    assert claims["aud"] in ("jwtd", ["jwtd"]), claims["aud"]
    assert claims["preferred_username"] == username
    for t in ("exp", "iat"):
        assert type(claims[t]) is int, claims
    assert before - 2 <= claims["iat"] <= after + 2
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 900
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert_uuid(claims["sid"])
    assert "password" not in claims


def test_each_login_is_a_new_session(client):
    username, password, _ = signup(client)
    a = jwt_parts(login(client, username, password)["access_token"])[1]
    b = jwt_parts(login(client, username, password)["access_token"])[1]
    assert a["jti"] != b["jti"]
    assert a["sid"] != b["sid"]
    assert a["sub"] == b["sub"]


def test_login_username_is_case_insensitive(client):
    # Usernames are unique case-insensitively (API.md), so "Bob" and "bob" are one
    # account; as with Keycloak, logging in does not depend on the case typed.
    username, password, user = signup(client, username="CaseLogin" + secrets.token_hex(3))
    body = login(client, username.lower(), password)
    assert body["user"]["id"] == user["id"]
    assert body["user"]["username"] == username          # kept as typed at signup


def test_invalid_credentials_same_body(client):
    username, password, _ = signup(client)
    wrong = client.post("/auth/login", {"username": username, "password": password + "x"})
    unknown = client.post("/auth/login", {"username": uname("ghost"), "password": password})
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.body == unknown.body
    assert "access_token" not in wrong.body.decode()
    # a success resets the consecutive-failure counters
    login(client, username, password)


def test_invalid_credentials_same_timing(jwtd_factory):
    """Unknown user vs wrong password: medians within a factor of 2.

    Failures are interleaved with a successful login so that no consecutive-failure
    limit (per username or per address) can kick in."""
    srv = jwtd_factory()
    c = srv.client()
    username, password, _ = signup(c)
    wrong_t, unknown_t = [], []

    def attempt(name, pw):
        t0 = time.perf_counter()
        r = c.post("/auth/login", {"username": name, "password": pw})
        dt = time.perf_counter() - t0
        assert_error(r, 401, "invalid_credentials")
        return dt

    login(c, username, password)                                    # warm-up
    for i in range(11):
        if i % 2:
            wrong_t.append(attempt(username, password + "-wrong"))
            unknown_t.append(attempt(uname("nobody"), password + "-wrong"))
        else:
            unknown_t.append(attempt(uname("nobody"), password + "-wrong"))
            wrong_t.append(attempt(username, password + "-wrong"))
        login(c, username, password)
    mw, mu = statistics.median(wrong_t), statistics.median(unknown_t)
    ratio = mu / mw
    assert 0.5 <= ratio <= 2.0, ("median unknown-user %.1f ms vs wrong-password %.1f ms"
                                 % (mu * 1000, mw * 1000))


def test_invalid_credentials_same_timing_for_a_cheap_imported_hash(jwtd_factory):
    """Found by an audit: an account imported with a cheap hash (bcrypt at
    cost 4 here; also older argon2id settings, or a hash that cannot be
    used) answered a wrong password in about 2 ms, an unknown username in
    about 35: every imported account that had not logged in yet could be
    found. The dummy hash is now verified too on such a refusal: medians
    within a factor of 2, as for accounts made here."""
    srv = jwtd_factory()
    c = srv.client()
    username = uname("cheap")
    password = "Imported-" + secrets.token_urlsafe(12)
    p = srv.cli("user", "import", username, "--password-hash", bcrypt_hash(password, cost=4))
    assert p.returncode == 0, p
    wrong_t, unknown_t = [], []

    def attempt(name):
        t0 = time.perf_counter()
        r = c.post("/auth/login", {"username": name, "password": password + "-wrong"})
        dt = time.perf_counter() - t0
        assert_error(r, 401, "invalid_credentials")
        return dt

    # another account's successes reset this address's failure count
    other, other_pw, _ = signup(c)
    attempt(uname("nobody"))                                        # warm-up
    login(c, other, other_pw)
    for i in range(9):
        # fewer than the back-off's 10 failures on the account, interleaved
        pair = [(wrong_t, username), (unknown_t, uname("nobody"))]
        for bucket, name in (pair if i % 2 else pair[::-1]):
            bucket.append(attempt(name))
        login(c, other, other_pw)
    mw, mu = statistics.median(wrong_t), statistics.median(unknown_t)
    assert 0.5 <= mu / mw <= 2.0, ("median unknown-user %.1f ms vs wrong password on a "
                                   "cheap hash %.1f ms" % (mu * 1000, mw * 1000))
    assert _user_list(srv)[username][3] == "bcrypt"             # still, until a success


@pytest.mark.parametrize("body", [
    {},
    {"username": "someone"},
    {"password": "whatever-123"},
    {"username": 42, "password": "whatever-123"},
    {"username": "someone", "password": None},
    {"username": "someone", "password": ["x"]},
])
def test_login_missing_or_mistyped_fields(client, body):
    r = client.post("/auth/login", body)
    assert_error(r, 400, "invalid_request")


# ---------------------------------------------------------------- bcrypt import

def _user_list(server):
    p = server.cli("user", "list")
    assert p.returncode == 0, p
    rows = {}
    for line in p.stdout.decode("utf-8").splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        assert len(fields) == 4, "user list line %r" % line
        rows[fields[1]] = fields
    return rows


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$", "$2y$"])
def test_bcrypt_import_then_rehash_to_argon2id(server, client, prefix):
    username = uname("imported")
    password = "Imported-" + secrets.token_urlsafe(12)
    hashed = bcrypt_hash(password, prefix)
    p = server.cli("user", "import", username, "--password-hash", hashed)
    assert p.returncode == 0, p
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert hashed not in out and "$2" not in out, out

    row = _user_list(server)[username]
    assert_uuid(row[0])
    assert row[3] == "bcrypt", row
    assert_user({"id": row[0], "username": row[1], "created_at": row[2]}, username)

    wrong = client.post("/auth/login", {"username": username, "password": password + "!"})
    assert_error(wrong, 401, "invalid_credentials")
    assert _user_list(server)[username][3] == "bcrypt"         # no re-hash on failure

    body = login(client, username, password)
    assert body["user"]["id"] == row[0]
    assert body["user"]["username"] == username
    assert jwt_parts(body["access_token"])[1]["sub"] == row[0]

    assert _user_list(server)[username][3] == "argon2id"
    body2 = login(client, username, password)                  # the new hash works
    assert body2["user"]["id"] == row[0]
    r = client.post("/auth/login", {"username": username, "password": password + "!"})
    assert_error(r, 401, "invalid_credentials")
    login(client, username, password)


def test_user_list_shows_signed_up_user(server, client):
    username, _, user = signup(client)
    row = _user_list(server)[username]
    assert row == [user["id"], username, user["created_at"], "argon2id"]
