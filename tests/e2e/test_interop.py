# SPDX-License-Identifier: Apache-2.0
"""Interop: tokens of every asymmetric algorithm are verified from the JWKS
alone by two independent libraries — PyJWT (python3-jwt) and `jose` (npm,
Node.js) — and a key rotation in the middle breaks neither: tokens signed
before and after it verify against the JWKS served after it.

The `jose` half needs tests/interop/node_modules (scripts/test.sh runs
`npm ci` there); without Node.js or the package it is skipped with a reason.
"""
import json
import os
import shutil
import subprocess
import time

import jwt
import pytest

from e2e_util import jwt_parts, new_user_tokens

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTEROP = os.path.join(ROOT, "tests", "interop")

ALGS = ["ES256", "EdDSA", "RS256"]


def node_available():
    return shutil.which("node") and os.path.isdir(os.path.join(INTEROP, "node_modules", "jose"))


def jose_verify(jwks, issuer, audience, tokens):
    """Verify with jose; one dict per token."""
    if not node_available():
        pytest.skip("Node.js or tests/interop/node_modules/jose missing (run npm ci there)")
    inp = json.dumps({"jwks": jwks, "issuer": issuer, "audience": audience, "tokens": tokens})
    p = subprocess.run(["node", os.path.join(INTEROP, "verify.mjs")], input=inp.encode(),
                       capture_output=True, timeout=60, cwd=INTEROP)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def pyjwt_verify(jwks, issuer, audience, token):
    """Verify with PyJWT, choosing the key by kid from the JWKS only."""
    header = jwt.get_unverified_header(token)
    matches = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(matches) == 1, "kid %s not (or not once) in the JWKS" % header["kid"]
    key = jwt.PyJWK(matches[0])
    return jwt.decode(token, key.key, algorithms=[matches[0]["alg"]], audience=audience,
                      issuer=issuer)


def fetch_jwks(client):
    r = client.get("/.well-known/jwks.json")
    assert r.status == 200
    return r.json


@pytest.mark.parametrize("alg", ALGS)
def test_independent_libraries_verify_from_jwks(jwtd_factory, alg):
    srv = jwtd_factory(env={"JWTD_JWT_ALG": alg})
    c = srv.client()
    _, _, user, tokens = new_user_tokens(c)
    token = tokens["access_token"]
    h, _, _ = jwt_parts(token)
    assert h["alg"] == alg
    jwks = fetch_jwks(c)

    claims = pyjwt_verify(jwks, srv.issuer, srv.audience, token)
    assert claims["sub"] == user["id"]

    res = jose_verify(jwks, srv.issuer, srv.audience, [token, token[:-4] + "AAAA"])
    assert res[0]["ok"] is True and res[0]["alg"] == alg and res[0]["sub"] == user["id"], res
    assert res[1]["ok"] is False, "jose accepted a tampered signature: %r" % res[1]


@pytest.mark.parametrize("alg", ALGS)
def test_rotation_mid_test_breaks_neither_library(jwtd_factory, alg):
    # A short ring poll so that the running server sees the CLI's rotation
    # quickly; the CLI rotates immediately (--now).
    srv = jwtd_factory(env={"JWTD_JWT_ALG": alg, "JWTD_KEYRING_POLL": "200ms"})
    c = srv.client()
    username, password, user, before = new_user_tokens(c)
    old_token = before["access_token"]
    old_kid = jwt_parts(old_token)[0]["kid"]

    p = srv.cli("keys", "rotate", "--now", env={"JWTD_JWT_ALG": alg})
    assert p.returncode == 0, p.stderr.decode()
    new_kid = p.stdout.decode().split()[0]
    assert new_kid != old_kid

    # The server signs with the new key within a few ring polls.
    deadline = time.monotonic() + 5
    while True:
        r = c.post("/auth/login", {"username": username, "password": password})
        assert r.status == 200
        new_token = r.json["access_token"]
        if jwt_parts(new_token)[0]["kid"] == new_kid:
            break
        assert time.monotonic() < deadline, "server still signs with %s" % old_kid
        time.sleep(0.2)

    jwks = fetch_jwks(c)
    kids = {k["kid"] for k in jwks["keys"]}
    assert {old_kid, new_kid} <= kids, "JWKS must keep the retired key: %s" % kids

    for t in (old_token, new_token):
        assert pyjwt_verify(jwks, srv.issuer, srv.audience, t)["sub"] == user["id"]
    res = jose_verify(jwks, srv.issuer, srv.audience, [old_token, new_token])
    assert all(x["ok"] for x in res), res
    assert [x["kid"] for x in res] == [old_kid, new_kid]

    # The server itself still accepts both.
    for t in (old_token, new_token):
        assert c.get("/auth/verify", token=t).status == 200
