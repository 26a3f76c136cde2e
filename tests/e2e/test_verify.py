# SPDX-License-Identifier: Apache-2.0
"""GET /auth/verify: the reverse-proxy check (nginx auth_request & co.)."""

import pytest

from e2e_util import (assert_error, assert_security_headers, compact, jwt_parts,
                      new_user_tokens, www_authenticate_invalid_token)


@pytest.fixture(scope="module")
def account(server):
    c = server.client()
    username, password, user, tokens = new_user_tokens(c)
    c.close()
    return {"username": username, "user": user, "token": tokens["access_token"]}


def test_verify_ok(client, account):
    r = client.get("/auth/verify", token=account["token"])
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("X-Auth-User-Id") == account["user"]["id"] == jwt_parts(account["token"])[1]["sub"]
    assert r.header("X-Auth-Username") == account["username"]
    assert_security_headers(r)


def test_verify_repeatable_on_one_connection(client, account):
    for _ in range(20):
        r = client.get("/auth/verify", token=account["token"])
        assert r.status == 200 and r.body == b"", r
        assert r.header("X-Auth-User-Id") == account["user"]["id"]


def test_verify_without_token(client):
    r = client.get("/auth/verify")
    assert_error(r, 401, "invalid_token")
    assert r.header("WWW-Authenticate") == 'Bearer realm="jwtd"'
    assert r.header("X-Auth-User-Id") is None and r.header("X-Auth-Username") is None


@pytest.mark.parametrize("mangle", ["garbage", "tampered_payload", "alg_none", "flipped_signature"])
def test_verify_refused_token(client, account, mangle):
    token = account["token"]
    h, p, s = jwt_parts(token)
    if mangle == "garbage":
        bad = "not-a-token"
    elif mangle == "tampered_payload":
        bad = compact(h, dict(p, sub="00000000-0000-7000-8000-000000000000"), s)
    elif mangle == "alg_none":
        bad = compact(dict(h, alg="none"), p)
    else:
        s = bytearray(s)
        s[-1] ^= 0x80
        bad = compact(h, p, bytes(s))
    r = client.get("/auth/verify", token=bad)
    www_authenticate_invalid_token(r)
    assert r.header("X-Auth-User-Id") is None and r.header("X-Auth-Username") is None
