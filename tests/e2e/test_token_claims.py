# SPDX-License-Identifier: Apache-2.0
"""Token verification rules, checked with a key the suite controls.

In HS256 mode the suite knows the secret, so it can sign tokens that are
correctly signed yet break one rule each (API.md, "Verification ... rejects").
A re-signed copy of a genuine token is the positive control: if it were refused,
every refusal below would prove nothing."""

import hashlib
import json
import secrets

import pytest

from e2e_util import (b64u, hs_sign, jwt_parts, new_user_tokens, now,
                      www_authenticate_invalid_token)

SECRET = "claims-e2e-secret-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def server(module_factory):
    return module_factory(env={"JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": SECRET})


@pytest.fixture(scope="module")
def genuine(server):
    c = server.client()
    username, password, user, tokens = new_user_tokens(c)
    c.close()
    header, claims, _ = jwt_parts(tokens["access_token"])
    return {"user": user, "token": tokens["access_token"], "header": header, "claims": claims}


def resign(genuine, header=None, claims=None, drop=(), digest=hashlib.sha256, **changes):
    h = dict(genuine["header"], **(header or {}))
    c = dict(genuine["claims"])
    c["iat"] = now()
    c["exp"] = now() + 600
    c.update(claims or {})
    c.update(changes)
    for k in drop:
        c.pop(k, None)
    return hs_sign(h, c, SECRET, digest)


def me(client, token):
    return client.get("/auth/me", token=token)


def assert_accepted(client, token, genuine):
    r = me(client, token)
    assert r.status == 200, r
    assert r.json == {"user": genuine["user"]}


def assert_refused(client, token):
    www_authenticate_invalid_token(me(client, token))
    www_authenticate_invalid_token(client.get("/auth/verify", token=token))


# ---------------------------------------------------------------- controls

def test_genuine_token_verifies(client, genuine):
    assert genuine["header"]["alg"] == "HS256"
    assert_accepted(client, genuine["token"], genuine)


def test_resigned_copy_is_accepted(client, genuine):
    assert_accepted(client, resign(genuine), genuine)


@pytest.mark.parametrize("changes", [
    {"exp": -2},          # expired 2 s ago: within the 5 s leeway
    {"iat": 2},           # issued 2 s in the future: within the leeway
    {"nbf": 2},           # not before 2 s from now: within the leeway
    {"nbf": -30},         # nbf in the past
], ids=["exp_within_leeway", "iat_within_leeway", "nbf_within_leeway", "nbf_past"])
def test_time_claims_within_leeway_accepted(client, genuine, changes):
    claims = {k: now() + v for k, v in changes.items()}
    assert_accepted(client, resign(genuine, claims=claims), genuine)


# ---------------------------------------------------------------- refusals

REFUSED = {
    "exp_missing": dict(drop=("exp",)),
    "exp_past": dict(claims_rel={"exp": -60}),
    "exp_past_beyond_leeway": dict(claims_rel={"exp": -15}),
    "exp_string": dict(claims_fn=lambda: {"exp": str(now() + 600)}),
    "iat_future_beyond_leeway": dict(claims_rel={"iat": 3600}),
    "nbf_future_beyond_leeway": dict(claims_rel={"nbf": 60}),
    "iss_missing": dict(drop=("iss",)),
    "iss_wrong": dict(claims={"iss": "http://evil.example"}),
    "iss_prefix": dict(claims_fn=None, iss_suffix="x"),
    "aud_missing": dict(drop=("aud",)),
    "aud_wrong": dict(claims={"aud": "another-api"}),
    "aud_list_without_ours": dict(claims={"aud": ["another-api", "a-third-one"]}),
    "sub_missing": dict(drop=("sub",)),
    "sid_missing": dict(drop=("sid",)),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_claim_rule_refused(client, genuine, case):
    spec = REFUSED[case]
    claims = dict(spec.get("claims", {}))
    for k, v in spec.get("claims_rel", {}).items():
        claims[k] = now() + v
    if spec.get("claims_fn"):
        claims.update(spec["claims_fn"]())
    if spec.get("iss_suffix"):
        claims["iss"] = genuine["claims"]["iss"] + spec["iss_suffix"]
    assert_refused(client, resign(genuine, claims=claims, drop=spec.get("drop", ())))


@pytest.mark.parametrize("alg,digest", [("HS384", hashlib.sha384), ("HS512", hashlib.sha512)])
def test_alg_outside_configured_set_refused(client, genuine, alg, digest):
    assert_refused(client, resign(genuine, header={"alg": alg}, digest=digest))


def test_alg_header_not_matching_signature_refused(client, genuine):
    # says HS512 but is HMAC-SHA256
    assert_refused(client, resign(genuine, header={"alg": "HS512"}))


def test_alg_none_refused(client, genuine):
    token = resign(genuine, header={"alg": "none"})
    h, p, _ = token.split(".")
    assert_refused(client, "%s.%s." % (h, p))


def test_unknown_crit_refused(client, genuine):
    assert_refused(client, resign(genuine, header={"crit": ["x-e2e-unknown"], "x-e2e-unknown": 1}))


def test_embedded_jwk_header_refused(client, genuine):
    jwk = {"kty": "oct", "k": b64u(SECRET)}
    assert_refused(client, resign(genuine, header={"jwk": jwk}))


def test_jku_header_refused(client, genuine):
    assert_refused(client, resign(genuine, header={"jku": "http://127.0.0.1:9/jwks.json"}))


def test_duplicate_claim_keys_refused(client, genuine):
    c = dict(genuine["claims"], iat=now(), exp=now() + 600)
    body = json.dumps(c, separators=(",", ":"))
    raw = body[:-1] + ',"sub":"00000000-0000-7000-8000-000000000000"}'
    assert_refused(client, hs_sign(genuine["header"], raw, SECRET))
    # same value twice is still a duplicate key
    raw = body[:-1] + ',"sub":%s}' % json.dumps(c["sub"])
    assert_refused(client, hs_sign(genuine["header"], raw, SECRET))


def test_duplicate_header_keys_refused(client, genuine):
    h = json.dumps(genuine["header"], separators=(",", ":"))
    raw = h[:-1] + ',"alg":"HS256"}'
    c = dict(genuine["claims"], iat=now(), exp=now() + 600)
    assert_refused(client, hs_sign(raw, c, SECRET))


def test_non_canonical_base64url_refused(client, genuine):
    token = resign(genuine)
    h, p, s = token.split(".")
    # padding characters are not base64url as JWS uses it
    assert_refused(client, "%s.%s.%s=" % (h, p, s))
    # the same signature bytes with non-zero unused trailing bits
    assert len(s) == 43                        # 32 bytes: the last char carries 2 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    assert last & 0b11 == 0
    s2 = s[:-1] + alphabet[last | 0b01]
    assert s2 != s
    assert_refused(client, "%s.%s.%s" % (h, p, s2))
    # standard base64 alphabet instead of base64url
    if "-" in s or "_" in s:
        assert_refused(client, "%s.%s.%s" % (h, p, s.replace("-", "+").replace("_", "/")))


def _token_of_length(genuine, target):
    """A correctly signed token of exactly `target` characters (a padding claim)."""
    base_claims = dict(genuine["claims"], iat=now(), exp=now() + 600)
    hdr = json.dumps(genuine["header"], separators=(",", ":"))
    for spaces in range(4):
        header_raw = hdr[:-1] + " " * spaces + "}"
        for n in range(max(0, target * 3 // 4 - 600), target * 3 // 4 + 10):
            c = dict(base_claims, pad="x" * n)
            tok = hs_sign(header_raw, json.dumps(c, separators=(",", ":")), SECRET)
            if len(tok) == target:
                return tok
            if len(tok) > target:
                break
    raise AssertionError("cannot build a token of length %d" % target)


def test_token_of_8_kib_accepted(client, genuine):
    token = _token_of_length(genuine, 8192)
    assert len(token) == 8192
    assert_accepted(client, token, genuine)


def test_token_over_8_kib_refused(client, genuine):
    token = _token_of_length(genuine, 8193)
    assert len(token) == 8193
    assert_refused(client, token)
