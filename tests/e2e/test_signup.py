# SPDX-License-Identifier: Apache-2.0
"""POST /auth/signup: username and password rules, the user object."""

import secrets
from datetime import datetime, timezone

import pytest

from e2e_util import (assert_error, assert_json_content_type, assert_security_headers,
                      assert_user, parse_rfc3339, random_name, strong_password, uname)


def test_signup_returns_user_object(client):
    username = uname("Signup.User")
    password = strong_password()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    r = client.post("/auth/signup", {"username": username, "password": password})
    after = datetime.now(timezone.utc)
    assert r.status == 201, r
    assert_json_content_type(r)
    assert_security_headers(r)
    body = r.json
    assert set(body) == {"user"}, body
    user = assert_user(body["user"], username)
    created = parse_rfc3339(user["created_at"])
    assert (before - created).total_seconds() <= 2 and (created - after).total_seconds() <= 2, \
        (before, created, after)
    # no password or hash anywhere in the response
    raw = r.body.decode("utf-8") + str(dict(r.headers.items()))
    assert password not in raw
    for marker in ("$argon2", "$2a$", "$2b$", "$2y$", "password"):
        assert marker not in raw, marker


def test_signup_ids_are_unique(client):
    ids = set()
    for _ in range(3):
        r = client.post("/auth/signup", {"username": uname(), "password": strong_password()})
        assert r.status == 201, r
        ids.add(r.json["user"]["id"])
    assert len(ids) == 3


def test_username_kept_as_typed(client):
    username = "MiXeD.Case_" + random_name(6) + "-x@Example+Tag"
    r = client.post("/auth/signup", {"username": username, "password": strong_password()})
    assert r.status == 201, r
    assert r.json["user"]["username"] == username


@pytest.mark.parametrize("length", [3, 128])
def test_username_length_bounds_accepted(client, length):
    username = random_name(length)
    r = client.post("/auth/signup", {"username": username, "password": strong_password()})
    assert r.status == 201, r
    assert r.json["user"]["username"] == username


@pytest.mark.parametrize("length", [0, 1, 2, 129, 300])
def test_username_length_out_of_bounds_refused(client, length):
    r = client.post("/auth/signup", {"username": random_name(length), "password": strong_password()})
    assert_error(r, 422, "invalid_username")


@pytest.mark.parametrize("bad", [
    "with space",
    "slash/name",
    "caf\u00e9-user",          # é: letters are ASCII only
    "\uff41\uff42\uff43user",   # full-width letters
    "tab\tname",
    "colon:name",
    "angle<b>",
    "quote\"name",
    "semi;colon",
    " leading",
    "trailing ",
    "new\nline",
    "emoji\U0001F600x",
])
def test_username_bad_characters_refused(client, bad):
    r = client.post("/auth/signup", {"username": bad + secrets.token_hex(2),
                                     "password": strong_password()})
    assert_error(r, 422, "invalid_username")


def test_username_all_allowed_punctuation(client):
    username = "a.b_c-d@e+f" + random_name(5)
    r = client.post("/auth/signup", {"username": username, "password": strong_password()})
    assert r.status == 201, r
    assert r.json["user"]["username"] == username


def test_username_taken_exact(client):
    username = uname("dup")
    r = client.post("/auth/signup", {"username": username, "password": strong_password()})
    assert r.status == 201, r
    r = client.post("/auth/signup", {"username": username, "password": strong_password()})
    assert_error(r, 409, "username_taken")


def test_username_taken_case_insensitively(client):
    base = "alice" + secrets.token_hex(4)
    r = client.post("/auth/signup", {"username": base, "password": strong_password()})
    assert r.status == 201, r
    for variant in ("A" + base[1:], base.upper()):
        r = client.post("/auth/signup", {"username": variant, "password": strong_password()})
        assert_error(r, 409, "username_taken")


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop"])
def test_common_passwords_refused(client, password):
    r = client.post("/auth/signup", {"username": uname(), "password": password})
    assert_error(r, 422, "weak_password")


def test_password_equal_to_username_refused(client):
    username = "Zq9" + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y") + "k"
    r = client.post("/auth/signup", {"username": username, "password": username})
    assert_error(r, 422, "weak_password")


def test_password_too_short_refused(client):
    r = client.post("/auth/signup", {"username": uname(), "password": "x7#Qm2!"})   # 7 bytes
    assert_error(r, 422, "weak_password")


def test_password_too_long_refused(client):
    r = client.post("/auth/signup", {"username": uname(), "password": secrets.token_hex(513)[:1025]})
    assert_error(r, 422, "weak_password")


def test_password_length_counts_bytes(client):
    # 6 characters but 18 bytes in UTF-8: the minimum of 8 is in bytes
    password = "Zk\U0001F511\U0001F40E\U0001F50B\U0001F4CE"
    assert len(password) == 6 and len(password.encode("utf-8")) == 18
    r = client.post("/auth/signup", {"username": uname(), "password": password})
    assert r.status == 201, r


def test_password_maximum_counts_bytes(client):
    # 513 characters but 1025 bytes: over the maximum of 1024 bytes
    two_byte = [chr(c) for c in range(0x100, 0x17F)]
    password = "".join(secrets.choice(two_byte) for _ in range(512)) + "x"
    assert len(password) == 513 and len(password.encode("utf-8")) == 1025
    r = client.post("/auth/signup", {"username": uname(), "password": password})
    assert_error(r, 422, "weak_password")


@pytest.mark.parametrize("password", [
    "Zk4$pQ9w",                            # exactly 8 bytes
    "correct-horse-battery-staple-42",     # a passphrase
    None,                                  # exactly 1024 random bytes (filled in below)
])
def test_good_passwords_accepted(client, password):
    if password is None:
        password = secrets.token_urlsafe(800)[:1024]
        assert len(password) == 1024
    r = client.post("/auth/signup", {"username": uname(), "password": password})
    assert r.status == 201, r


@pytest.mark.parametrize("body", [
    {},
    {"username": "someone-abc"},
    {"password": "Pw-long-enough-42"},
    {"username": 123, "password": "Pw-long-enough-42"},
    {"username": None, "password": "Pw-long-enough-42"},
    {"username": ["a", "b", "c"], "password": "Pw-long-enough-42"},
    {"username": "someone-abd", "password": 12345678},
    {"username": "someone-abe", "password": True},
    {"username": "someone-abf", "password": {"x": 1}},
])
def test_missing_or_mistyped_fields(client, body):
    r = client.post("/auth/signup", body)
    assert_error(r, 400, "invalid_request")
