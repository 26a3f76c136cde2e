# SPDX-License-Identifier: Apache-2.0
"""GET /auth/me and how a Bearer-protected route refuses tokens (RFC 6750 §3):
missing, malformed, expired, tampered and forged ones."""

import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from e2e_util import (assert_error, assert_json_content_type, assert_security_headers, b64u,
                      compact, ec_public_jwk, ec_sign, jwk_thumbprint, jwt_parts, login,
                      new_user_tokens, now, signup, www_authenticate_invalid_token)


@pytest.fixture(scope="module")
def account(server):
    """A user with a valid access token, and the server's JWKS."""
    c = server.client()
    username, password, user, tokens = new_user_tokens(c)
    jwks = c.get("/.well-known/jwks.json").json
    c.close()
    return {"username": username, "password": password, "user": user,
            "token": tokens["access_token"], "jwks": jwks}


def server_public_key(account):
    kid = jwt_parts(account["token"])[0]["kid"]
    (jwk,) = [k for k in account["jwks"]["keys"] if k["kid"] == kid]
    return jwt.PyJWK(jwk).key


def test_me_returns_user(client, account):
    r = client.get("/auth/me", token=account["token"])
    assert r.status == 200, r
    assert_json_content_type(r)
    assert_security_headers(r)
    assert r.json == {"user": account["user"]}


def test_me_bearer_scheme_is_case_insensitive(client, account):
    # RFC 7235 §2.1: the auth-scheme is case-insensitive
    r = client.get("/auth/me", headers={"Authorization": "bearer " + account["token"]})
    assert r.status == 200, r
    assert r.json == {"user": account["user"]}


def test_me_without_token(client):
    r = client.get("/auth/me")
    assert_error(r, 401, "invalid_token")
    assert r.header("WWW-Authenticate") == 'Bearer realm="jwtd"'


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNzd29yZA==", "Token abc", "Bearer"])
def test_me_without_bearer_token(client, authorization):
    r = client.get("/auth/me", headers={"Authorization": authorization})
    assert r.status == 401, r
    assert r.json is not None and r.json.get("error") == "invalid_token", r
    assert (r.header("WWW-Authenticate") or "").startswith('Bearer realm="jwtd"'), r


@pytest.mark.parametrize("token", [
    "abc",
    "a.b.c",
    "...",
    "a.b",
    "a.b.c.d",
    "eyJhbGciOiJFUzI1NiJ9.e30.!!!!",
    "eyJhbGciOiJFUzI1NiJ9.e30.",
])
def test_me_malformed_token(client, token):
    r = client.get("/auth/me", token=token)
    www_authenticate_invalid_token(r)


# ------------------------------------------------------------ forged / tampered

def _attacker_key():
    return ec.generate_private_key(ec.SECP256R1())


def _fresh_claims(claims):
    c = dict(claims)
    c["iat"] = now()
    c["exp"] = now() + 600
    return c


def forge_alg_none(variant):
    def f(token, account):
        h, p, _ = jwt_parts(token)
        h = dict(h, alg=variant)
        return compact(h, p)
    return f


def forge_none_keep_sig(token, account):
    h, p, s = jwt_parts(token)
    return compact(dict(h, alg="none"), p, s)


def forge_other_key_same_kid(token, account):
    h, p, _ = jwt_parts(token)
    return ec_sign(h, _fresh_claims(p), _attacker_key())


def forge_other_key_unknown_kid(token, account):
    h, p, _ = jwt_parts(token)
    return ec_sign(dict(h, kid="attacker-key"), _fresh_claims(p), _attacker_key())


def forge_embedded_jwk(token, account):
    h, p, _ = jwt_parts(token)
    k = _attacker_key()
    pub = ec_public_jwk(k.public_key())
    h = {"alg": "ES256", "typ": "JWT", "kid": jwk_thumbprint(pub), "jwk": pub}
    return ec_sign(h, _fresh_claims(p), k)


def forge_embedded_jwk_server_kid(token, account):
    h, p, _ = jwt_parts(token)
    k = _attacker_key()
    return ec_sign(dict(h, jwk=ec_public_jwk(k.public_key())), _fresh_claims(p), k)


def forge_jku(token, account):
    h, p, _ = jwt_parts(token)
    k = _attacker_key()
    h = {"alg": "ES256", "typ": "JWT", "kid": "attacker", "jku": "http://127.0.0.1:9/jwks.json"}
    return ec_sign(h, _fresh_claims(p), k)


def forge_x5u(token, account):
    h, p, _ = jwt_parts(token)
    h = {"alg": "ES256", "typ": "JWT", "kid": "attacker", "x5u": "http://127.0.0.1:9/cert.pem"}
    return ec_sign(h, _fresh_claims(p), _attacker_key())


def forge_key_confusion(strip_newline):
    def f(token, account):
        """HS256 'signed' with the server's public key PEM as the HMAC secret."""
        h, p, _ = jwt_parts(token)
        pem = server_public_key(account).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        if strip_newline:
            pem = pem.rstrip(b"\n")
        signing_input = compact(dict(h, alg="HS256"), _fresh_claims(p)).rstrip(".")
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64u(mac)
    return f


def forge_key_confusion_jwk(token, account):
    """HS256 with the server's JWK (as JSON) as the HMAC secret."""
    h, p, _ = jwt_parts(token)
    (jwk,) = [k for k in account["jwks"]["keys"] if k["kid"] == h["kid"]]
    secret = json.dumps(jwk, separators=(",", ":")).encode()
    signing_input = compact(dict(h, alg="HS256"), _fresh_claims(p)).rstrip(".")
    return signing_input + "." + b64u(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def forge_zero_signature(token, account):
    h, p, _ = jwt_parts(token)
    return compact(h, p, b"\0" * 64)


def forge_flip_signature_bit(token, account):
    h, p, s = jwt_parts(token)
    s = bytearray(s)
    s[10] ^= 0x01
    return compact(h, p, bytes(s))


def forge_truncate_signature(token, account):
    return token[:-2]


def forge_der_signature(token, account):
    """The same (r, s) in DER form instead of JOSE's raw r||s."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    h, p, s = jwt_parts(token)
    der = encode_dss_signature(int.from_bytes(s[:32], "big"), int.from_bytes(s[32:], "big"))
    return compact(h, p, der)


def forge_swap_signature(token, account):
    """Header+payload of one token with the signature of another user's token."""
    c = account["other_client"]
    _, _, _, other = new_user_tokens(c)
    h1, p1, _ = token.split(".")
    return "%s.%s.%s" % (h1, p1, other["access_token"].split(".")[2])


def tamper_claim(name, value):
    def f(token, account):
        h, p, s = jwt_parts(token)
        p = dict(p)
        if value is None:
            p.pop(name, None)
        else:
            p[name] = value
        return compact(h, p, s)
    return f


def tamper_header(name, value):
    def f(token, account):
        h, p, s = jwt_parts(token)
        return compact(dict(h, **{name: value}), p, s)
    return f


FORGERIES = {
    "alg_none": forge_alg_none("none"),
    "alg_None": forge_alg_none("None"),
    "alg_NONE": forge_alg_none("NONE"),
    "alg_none_keeping_signature": forge_none_keep_sig,
    "other_key_same_kid": forge_other_key_same_kid,
    "other_key_unknown_kid": forge_other_key_unknown_kid,
    "embedded_jwk_header": forge_embedded_jwk,
    "embedded_jwk_with_server_kid": forge_embedded_jwk_server_kid,
    "jku_header": forge_jku,
    "x5u_header": forge_x5u,
    "hs256_key_confusion_pem": forge_key_confusion(False),
    "hs256_key_confusion_pem_no_newline": forge_key_confusion(True),
    "hs256_key_confusion_jwk": forge_key_confusion_jwk,
    "all_zero_signature": forge_zero_signature,
    "flipped_signature_bit": forge_flip_signature_bit,
    "truncated_signature": forge_truncate_signature,
    "der_signature": forge_der_signature,
    "signature_of_another_token": forge_swap_signature,
    "tampered_sub": tamper_claim("sub", str(uuid.uuid4())),
    "tampered_preferred_username": tamper_claim("preferred_username", "admin"),
    "tampered_aud": tamper_claim("aud", "some-other-api"),
    "tampered_iss": tamper_claim("iss", "http://evil.example"),
    "tampered_exp": tamper_claim("exp", 4102444800),
    "removed_exp": tamper_claim("exp", None),
    "tampered_kid": tamper_header("kid", "no-such-kid"),
    "tampered_alg_es384": tamper_header("alg", "ES384"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_me_refuses_forged_token(server, client, account, name):
    account = dict(account, other_client=client)
    forged = FORGERIES[name](account["token"], account)
    assert forged != account["token"]
    r = client.get("/auth/me", token=forged)
    desc = www_authenticate_invalid_token(r)
    # the description must not leak key material
    for k in account["jwks"]["keys"]:
        for member in ("x", "y", "n"):
            if member in k:
                assert k[member] not in desc
    # and the genuine token still works (the forgery did not poison anything)
    assert client.get("/auth/me", token=account["token"]).status == 200


def test_me_8k_token_header_fits(client):
    # An 8 KiB token must fit in the headers: refused as a token, not as a request
    token = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9." + "A" * 8100 + ".AAAA"
    assert len(token) < 8192
    r = client.get("/auth/me", token=token)
    www_authenticate_invalid_token(r)


def test_me_token_over_8k_refused(client):
    token = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9." + "A" * 9000 + ".AAAA"
    r = client.get("/auth/me", token=token)
    www_authenticate_invalid_token(r)


def test_me_expired_token(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_ACCESS_TTL": "2", "JWTD_LEEWAY": "0"})
    c = srv.client()
    username, password, user = signup(c)
    body = login(c, username, password)
    assert body["expires_in"] == 2
    token = body["access_token"]
    claims = jwt_parts(token)[1]
    assert claims["exp"] - claims["iat"] == 2
    r = c.get("/auth/me", token=token)
    assert r.status == 200, r                              # still valid for ~1-2 s
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = c.get("/auth/me", token=token)
        if r.status != 200:
            break
        time.sleep(0.1)
    refused_at = time.time()
    desc = www_authenticate_invalid_token(r)
    assert "expir" in desc.lower(), desc
    # not refused before exp (the clock of this machine is the server's)
    assert refused_at >= claims["exp"] - 0.01, (refused_at, claims["exp"])
    # /auth/verify agrees
    v = c.get("/auth/verify", token=token)
    www_authenticate_invalid_token(v)
