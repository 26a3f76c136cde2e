# SPDX-License-Identifier: Apache-2.0
"""Revocation is prompt on EVERY instance that shares the database.

API.md: after logout, a password change (revokes the user's other sessions),
account deletion or reuse detection, /auth/me and /auth/verify refuse that
session's access tokens within one second - on every instance that shares the
database. docs/sessions.md adds DELETE /auth/sessions/{id} and "logout all".

Two jwtd processes, A and B, on one database (one SQLite file, or one
PostgreSQL database with JWTD_E2E_DATABASE=postgres://...), with one issuer.
Each path: the token is checked live on B, revoked through A, then B's
/auth/verify (and /auth/me) is polled every 20 ms; the first refusal must come
< 1.0 s after A answered. Latencies are printed (pytest -s) and summarised.
"""

import time

import pytest

from e2e_util import (assert_accepted, assert_error, assert_invalid_grant, assert_refused_within,
                      assert_token_response, fmt_timing, jwt_parts, login, refresh, signup,
                      strong_password)

ISSUER = "http://jwtd-e2e.revocation.test"
BOUND = 1.0
POLL = 0.02
LATENCIES = {}


@pytest.fixture(scope="module")
def pair(module_factory):
    a = module_factory(env={"JWTD_ISSUER": ISSUER})
    b = module_factory(env={"JWTD_ISSUER": ISSUER}, database=a.db)
    ca, cb = a.client(), b.client()
    yield a, b, ca, cb
    ca.close()
    cb.close()
    if LATENCIES:
        print("\nrevocation latency across instances (%s, poll %d ms):" % (a.db.kind, POLL * 1000))
        for name, lat in LATENCIES.items():
            print("  %-28s %s" % (name, fmt_timing(lat)))


def measure(name, cb, token, since):
    lat = assert_refused_within(cb, token, since, bound=BOUND, interval=POLL)
    LATENCIES[name] = lat
    print("%s: %s" % (name, fmt_timing(lat)))
    return lat


def sessions(ca, n):
    username, password, user = signup(ca)
    return username, password, user, [login(ca, username, password) for _ in range(n)]


def sid(t):
    return jwt_parts(t["access_token"])[1]["sid"]


def test_instances_share_users_and_keys(pair):
    a, b, ca, cb = pair
    username, password, user, (t,) = sessions(ca, 1)
    assert_accepted(cb, t["access_token"])
    # B can refresh what A issued, and A accepts what B minted
    t2 = assert_token_response(refresh(cb, t["refresh_token"]), user)
    assert_accepted(ca, t2["access_token"])


@pytest.mark.parametrize("revoke_on", ["A", "B"])
def test_logout(pair, revoke_on):
    a, b, ca, cb = pair
    revoker, observer = (ca, cb) if revoke_on == "A" else (cb, ca)
    username, password, user, (t, keep) = sessions(ca, 2)
    assert_accepted(observer, t["access_token"])
    r = revoker.post("/auth/logout", token=t["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    measure("logout (on %s)" % revoke_on, observer, t["access_token"], since)
    assert_invalid_grant(refresh(observer, t["refresh_token"]), "revoked")
    assert_accepted(observer, keep["access_token"])


def test_logout_all(pair):
    a, b, ca, cb = pair
    username, password, user, (t, other) = sessions(ca, 2)
    assert_accepted(cb, other["access_token"])
    r = ca.post("/auth/logout", {"scope": "all"}, token=t["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    measure("logout all (other session)", cb, other["access_token"], since)
    measure("logout all (own session)", cb, t["access_token"], since)


def test_password_change(pair):
    a, b, ca, cb = pair
    username, password, user, (t, other) = sessions(ca, 2)
    assert_accepted(cb, other["access_token"])
    r = ca.post("/auth/password", {"current_password": password, "new_password": strong_password()},
                token=t["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    measure("password change", cb, other["access_token"], since)
    # the current session survives on B too, also after B has read the feed again
    time.sleep(0.5)
    assert_accepted(cb, t["access_token"])
    assert_token_response(refresh(cb, t["refresh_token"]), user)


def test_delete_me(pair):
    a, b, ca, cb = pair
    username, password, user, (t, other) = sessions(ca, 2)
    assert_accepted(cb, other["access_token"])
    r = ca.request("DELETE", "/auth/me", json_body={"password": password}, token=t["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    measure("delete me (other session)", cb, other["access_token"], since)
    measure("delete me (own session)", cb, t["access_token"], since)
    assert_error(cb.post("/auth/login", {"username": username, "password": password}),
                 401, "invalid_credentials")


def test_delete_session(pair):
    a, b, ca, cb = pair
    username, password, user, (t, other) = sessions(ca, 2)
    assert_accepted(cb, other["access_token"])
    r = ca.request("DELETE", "/auth/sessions/" + sid(other), token=t["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    measure("delete session", cb, other["access_token"], since)
    assert_accepted(cb, t["access_token"])


def test_reuse_detection(pair):
    a, b, ca, cb = pair
    username, password, user, (t0,) = sessions(ca, 1)
    t1 = assert_token_response(refresh(ca, t0["refresh_token"]), user)
    t2 = assert_token_response(refresh(ca, t1["refresh_token"]), user)
    assert_accepted(cb, t2["access_token"])
    r = refresh(ca, t0["refresh_token"])          # two generations back: theft
    since = time.monotonic()
    assert_invalid_grant(r, "reused")
    measure("reuse detection", cb, t2["access_token"], since)
    assert_invalid_grant(refresh(cb, t2["refresh_token"]), "revoked")


def test_reuse_detection_across_instances(pair):
    """Rotated on A, the stolen token replayed on B: B detects it, A refuses."""
    a, b, ca, cb = pair
    username, password, user, (t0,) = sessions(ca, 1)
    t1 = assert_token_response(refresh(ca, t0["refresh_token"]), user)
    t2 = assert_token_response(refresh(ca, t1["refresh_token"]), user)
    r = refresh(cb, t0["refresh_token"])
    since = time.monotonic()
    assert_invalid_grant(r, "reused")
    measure("reuse detection (on B)", ca, t2["access_token"], since)
