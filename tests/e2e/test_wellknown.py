# SPDX-License-Identifier: Apache-2.0
"""GET /.well-known/jwks.json and /.well-known/openid-configuration; an
independent library (PyJWT) verifies our tokens with nothing but the JWKS."""

import urllib.parse

import jwt
import pytest

from e2e_util import (assert_json_content_type, assert_security_headers, jwk_thumbprint,
                      jwt_parts, login, new_user_tokens, signup)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def jwks(server):
    c = server.client()
    r = c.get("/.well-known/jwks.json")
    c.close()
    assert r.status == 200, r
    return r.json


def test_jwks_document(client):
    r = client.get("/.well-known/jwks.json")
    assert r.status == 200, r
    assert_json_content_type(r, also=("application/jwk-set+json",))
    assert_security_headers(r)
    body = r.json
    assert isinstance(body, dict) and isinstance(body.get("keys"), list) and body["keys"], body


def test_jwks_keys_are_public_and_complete(jwks):
    kids = []
    for k in jwks["keys"]:
        for member in ("kty", "kid", "alg", "use"):
            assert isinstance(k.get(member), str) and k[member], (member, k)
        assert k["use"] == "sig", k
        assert not PRIVATE_MEMBERS & set(k), "private members in %r" % k
        kids.append(k["kid"])
    assert len(kids) == len(set(kids)), kids


def test_jwks_es256_key(jwks):
    es = [k for k in jwks["keys"] if k["alg"] == "ES256"]
    assert es, jwks
    for k in es:
        assert k["kty"] == "EC" and k["crv"] == "P-256", k
        assert len(jwt.utils.base64url_decode(k["x"])) == 32
        assert len(jwt.utils.base64url_decode(k["y"])) == 32


def test_jwks_kid_is_rfc7638_thumbprint(jwks):
    for k in jwks["keys"]:
        assert k["kid"] == jwk_thumbprint(k), k


def test_pyjwt_verifies_token_with_jwks_only(server, client, jwks):
    username, password, user, tokens = new_user_tokens(client)
    token = tokens["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["ES256"], audience="jwtd", issuer=server.issuer,
                        options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    assert claims["sub"] == user["id"]
    assert claims["preferred_username"] == username
    # and PyJWT refuses it for another audience: the check above is real
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["ES256"], audience="other", issuer=server.issuer)


def test_openid_configuration(server, client):
    r = client.get("/.well-known/openid-configuration")
    assert r.status == 200, r
    assert_json_content_type(r)
    assert_security_headers(r)
    doc = r.json
    assert isinstance(doc, dict), r
    assert doc.get("issuer") == server.issuer
    jwks_uri = doc.get("jwks_uri")
    assert isinstance(jwks_uri, str) and jwks_uri.endswith("/.well-known/jwks.json"), doc
    assert urllib.parse.urlsplit(jwks_uri).scheme in ("http", "https"), jwks_uri
    # the jwks_uri path serves the JWKS
    path = urllib.parse.urlsplit(jwks_uri).path
    assert client.get(path).json == client.get("/.well-known/jwks.json").json


def test_openid_issuer_equals_token_iss(client):
    _, _, _, tokens = new_user_tokens(client)
    iss = jwt_parts(tokens["access_token"])[1]["iss"]
    assert client.get("/.well-known/openid-configuration").json["issuer"] == iss


def test_jwks_uri_of_an_issuer_that_is_no_url(jwtd_factory):
    """Trap: with JWTD_ISSUER=my-service (RFC 7519 allows any string), the
    discovery document named "my-service/.well-known/jwks.json" as the key
    set's address, which resolves nowhere. The key set is where jwtd
    listens (without a public URL); a URL issuer is still the base."""
    srv = jwtd_factory(env={"JWTD_ISSUER": "my-service"})
    c = srv.client()
    doc = c.get("/.well-known/openid-configuration").json
    assert doc["issuer"] == "my-service", doc
    assert doc["jwks_uri"] == "http://127.0.0.1:%d/.well-known/jwks.json" % srv.port, doc
    _, _, _, tokens = new_user_tokens(c)
    assert jwt_parts(tokens["access_token"])[1]["iss"] == "my-service"
    c.close()
    srv = jwtd_factory(env={"JWTD_ISSUER": "https://auth.example.test/base"})
    c = srv.client()
    doc = c.get("/.well-known/openid-configuration").json
    assert doc["jwks_uri"] == "https://auth.example.test/base/.well-known/jwks.json", doc
    c.close()


def test_signing_key_persists_across_restart(jwtd_factory):
    """The key is generated on first start and persisted: after a restart on the
    same database the kid is the same and earlier tokens still verify."""
    env = {"JWTD_ISSUER": "http://jwtd.test"}
    first = jwtd_factory(env=env)
    c = first.client()
    username, password, user = signup(c)
    token = login(c, username, password)["access_token"]
    keys1 = c.get("/.well-known/jwks.json").json["keys"]
    c.close()
    first.stop()
    second = jwtd_factory(env=env, database=first.db)
    c = second.client()
    keys2 = c.get("/.well-known/jwks.json").json["keys"]
    kid = jwt_parts(token)[0]["kid"]
    assert kid in [k["kid"] for k in keys2], (kid, keys2)
    assert [k for k in keys1 if k["kid"] == kid] == [k for k in keys2 if k["kid"] == kid]
    r = c.get("/auth/me", token=token)
    assert r.status == 200, r
    assert r.json["user"] == user
    c.close()


@pytest.mark.parametrize("alg,kty", [("ES256", "EC"), ("EdDSA", "OKP"), ("RS256", "RSA")])
def test_asymmetric_algorithms_verify_via_jwks(jwtd_factory, alg, kty):
    """ES256 by default; EdDSA (Ed25519) and RS256 by configuration. Whatever the
    algorithm, an independent library verifies tokens from the JWKS alone."""
    srv = jwtd_factory(env={"JWTD_JWT_ALG": alg})
    c = srv.client()
    username, password, user, tokens = new_user_tokens(c)
    token = tokens["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg and header["typ"] == "JWT", header
    keys = c.get("/.well-known/jwks.json").json["keys"]
    (jwk,) = [k for k in keys if k["kid"] == header["kid"]]
    assert jwk["kty"] == kty and jwk["alg"] == alg and jwk["use"] == "sig", jwk
    assert not PRIVATE_MEMBERS & set(jwk), jwk
    assert jwk["kid"] == jwk_thumbprint(jwk)
    if kty == "OKP":
        assert jwk["crv"] == "Ed25519"
    if kty == "RSA":
        assert len(jwt.utils.base64url_decode(jwk["n"])) * 8 >= 2048, "RSA key under 2048 bits"
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg], audience="jwtd",
                        issuer=srv.issuer)
    assert claims["sub"] == user["id"]
    assert c.get("/auth/me", token=token).json == {"user": user}
