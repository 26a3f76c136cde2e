# SPDX-License-Identifier: Apache-2.0
"""POST /auth/refresh: rotation, the reuse interval, theft detection, strict
mode, malformed requests and the idle/absolute session lifetimes.

Contract (API.md "Sessions and refresh tokens"): refresh tokens are single use;
the token retired last, presented again within the reuse interval (default
10 s), gets the session's current pair back; any other reuse revokes the whole
session and answers 401 invalid_grant; the description says why (expired,
revoked, reused). jwtd's wording (docs/api.md): `unknown`, `expired`,
`revoked`, `reused`.
"""

import time

import pytest

from e2e_util import (assert_accepted, assert_error, assert_invalid_grant, assert_no_store,
                      assert_refused_within, assert_token_response, fmt_timing, jwt_parts, login,
                      new_user_tokens, parse_rfc3339, refresh, signup)

REUSE_WORDS = ("reused",)  # API.md: the description says why: expired, revoked, reused


@pytest.fixture(scope="module")
def short_interval(module_factory):
    """A server whose reuse interval is 1 s, so that 'after the interval' is testable."""
    return module_factory(env={"JWTD_REFRESH_REUSE_INTERVAL": "1"})


@pytest.fixture(scope="module")
def strict(module_factory):
    return module_factory(env={"JWTD_REFRESH_REUSE_INTERVAL": "0"})


def _session(client):
    username, password, user, tokens = new_user_tokens(client)
    return user, tokens


# ------------------------------------------------------------------ rotation

def test_login_is_a_token_response_with_no_store(client):
    username, password, user = signup(client)
    r = client.post("/auth/login", {"username": username, "password": password})
    body = assert_token_response(r, user)
    assert body["expires_in"] == 900


def test_refresh_rotates(client):
    user, t0 = _session(client)
    r = refresh(client, t0["refresh_token"])
    t1 = assert_token_response(r, user)       # includes Cache-Control: no-store
    assert t1["refresh_token"] != t0["refresh_token"]
    assert t1["access_token"] != t0["access_token"]
    assert t1["expires_in"] == 900
    _, c0, _ = jwt_parts(t0["access_token"])
    h1, c1, _ = jwt_parts(t1["access_token"])
    assert c1["sid"] == c0["sid"], "a refresh stays in the session: %r vs %r" % (c1, c0)
    assert c1["sub"] == c0["sub"] == user["id"]
    assert c1["jti"] != c0["jti"], "a new access token needs a new jti"
    assert c1["iat"] >= c0["iat"] and c1["exp"] - c1["iat"] == 900
    me = client.get("/auth/me", token=t1["access_token"])
    assert me.status == 200 and me.json == {"user": user}, me
    assert client.get("/auth/verify", token=t1["access_token"]).status == 200
    # the access token from before the refresh is not revoked by the rotation
    assert_accepted(client, t0["access_token"])


def test_refresh_chain_each_token_new(client):
    user, t = _session(client)
    seen = {t["refresh_token"]}
    sid = jwt_parts(t["access_token"])[1]["sid"]
    jtis = {jwt_parts(t["access_token"])[1]["jti"]}
    for _ in range(5):
        t = assert_token_response(refresh(client, t["refresh_token"]), user)
        assert t["refresh_token"] not in seen, "a refresh token was minted twice"
        seen.add(t["refresh_token"])
        claims = jwt_parts(t["access_token"])[1]
        assert claims["sid"] == sid and claims["jti"] not in jtis
        jtis.add(claims["jti"])
    assert_accepted(client, t["access_token"])


def test_replay_within_interval_returns_current_pair(client):
    """The tab that lost the race (or a lost response): the last retired token,
    again within the interval, gets the SAME current refresh token the winner
    got, and a valid access token; nothing is revoked."""
    user, t0 = _session(client)
    sid = jwt_parts(t0["access_token"])[1]["sid"]
    t1 = assert_token_response(refresh(client, t0["refresh_token"]), user)
    for _ in range(3):
        again = assert_token_response(refresh(client, t0["refresh_token"]), user)
        assert again["refresh_token"] == t1["refresh_token"], \
            "replay within the interval must return the winner's refresh token"
        claims = jwt_parts(again["access_token"])[1]
        assert claims["sid"] == sid
        assert_accepted(client, again["access_token"])
    # nothing was revoked: the winner's token still rotates, every access token works
    t2 = assert_token_response(refresh(client, t1["refresh_token"]), user)
    assert t2["refresh_token"] not in (t0["refresh_token"], t1["refresh_token"])
    for tok in (t0, t1, t2):
        assert_accepted(client, tok["access_token"])


def test_reuse_two_generations_back_revokes_at_once(client):
    """Only the token retired LAST qualifies for the interval: an older one is
    theft even a few milliseconds later."""
    user, t0 = _session(client)
    t1 = assert_token_response(refresh(client, t0["refresh_token"]), user)
    t2 = assert_token_response(refresh(client, t1["refresh_token"]), user)
    r = refresh(client, t0["refresh_token"])
    since = time.monotonic()
    assert_invalid_grant(r, *REUSE_WORDS)
    assert_invalid_grant(refresh(client, t2["refresh_token"]), "revoked")
    assert_invalid_grant(refresh(client, t1["refresh_token"]), "revoked", *REUSE_WORDS)
    for tok in (t2, t0):
        assert_refused_within(client, tok["access_token"], since)


def test_reuse_after_interval_revokes_session(short_interval):
    c = short_interval.client()
    user, t0 = _session(c)
    t1 = assert_token_response(refresh(c, t0["refresh_token"]), user)
    time.sleep(1.5)
    r = refresh(c, t0["refresh_token"])
    since = time.monotonic()
    assert_invalid_grant(r, *REUSE_WORDS)
    # the session is dead: the current refresh token too ...
    assert_invalid_grant(refresh(c, t1["refresh_token"]), "revoked")
    # ... and its access tokens, within one second
    lat = assert_refused_within(c, t1["access_token"], since)
    assert_refused_within(c, t0["access_token"], since)
    print("reuse after interval: %s" % fmt_timing(lat))
    # a second replay of the stolen token is still refused, not 5xx
    assert_invalid_grant(refresh(c, t0["refresh_token"]), "revoked", *REUSE_WORDS)
    c.close()


def test_reuse_does_not_touch_other_sessions(short_interval):
    c = short_interval.client()
    username, password, user = signup(c)
    a0 = login(c, username, password)
    b0 = login(c, username, password)
    a1 = assert_token_response(refresh(c, a0["refresh_token"]), user)
    time.sleep(1.3)
    since = time.monotonic()
    assert_invalid_grant(refresh(c, a0["refresh_token"]), *REUSE_WORDS)
    assert_refused_within(c, a1["access_token"], since)
    assert_accepted(c, b0["access_token"])
    assert_token_response(refresh(c, b0["refresh_token"]), user)
    c.close()


def test_strict_mode_second_use_revokes(strict):
    c = strict.client()
    user, t0 = _session(c)
    t1 = assert_token_response(refresh(c, t0["refresh_token"]), user)
    r = refresh(c, t0["refresh_token"])
    since = time.monotonic()
    assert_invalid_grant(r, *REUSE_WORDS)
    assert_invalid_grant(refresh(c, t1["refresh_token"]), "revoked")
    assert_refused_within(c, t1["access_token"], since)
    c.close()


def test_strict_mode_single_use_chain_works(strict):
    c = strict.client()
    user, t = _session(c)
    for _ in range(3):
        t = assert_token_response(refresh(c, t["refresh_token"]), user)
    assert_accepted(c, t["access_token"])
    c.close()


# ------------------------------------------------------------- bad requests

def _tamper(token, index):
    ch = token[index]
    repl = "A" if ch != "A" else "B"
    return token[:index] + repl + token[index + 1:]


@pytest.mark.parametrize("kind", ["garbage", "short", "tampered_start", "tampered_middle",
                                  "tampered_end", "truncated", "extended", "access_token",
                                  "long"])
def test_unknown_or_tampered_token(client, kind):
    user, t = _session(client)
    rt = t["refresh_token"]
    bad = {
        "garbage": "not-a-refresh-token",
        "short": "x",
        "tampered_start": _tamper(rt, 0),
        "tampered_middle": _tamper(rt, len(rt) // 2),
        "tampered_end": _tamper(rt, len(rt) - 2),
        "truncated": rt[:-4],
        "extended": rt + "AAAA",
        "access_token": t["access_token"],
        "long": "A" * 8000,
    }[kind]
    assert_invalid_grant(refresh(client, bad))
    # a forged token changed nothing: the real one still rotates
    assert_token_response(refresh(client, rt), user)


def test_unknown_token_says_unknown(client):
    assert_invalid_grant(refresh(client, "AQ" + "A" * 69), "unknown", "invalid", "not valid")


def test_token_of_another_server_is_unknown(client, jwtd_factory):
    """A token minted by another jwtd (another database, another key) is unknown here."""
    other = jwtd_factory()
    oc = other.client()
    _, t = _session(oc)
    oc.close()
    assert_invalid_grant(refresh(client, t["refresh_token"]), "unknown", "invalid", "not valid")


@pytest.mark.parametrize("body", [{}, {"refresh": "x"}, {"refresh_token": None}])
def test_missing_refresh_token(client, body):
    r = client.post("/auth/refresh", body)
    assert_error(r, 400, "invalid_request")


def test_missing_body(client):
    """No body and no refresh cookie: the token is missing."""
    r = client.post("/auth/refresh")
    assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize("value", [123, True, ["a"], {"t": "a"}])
def test_refresh_token_wrong_type(client, value):
    r = client.post("/auth/refresh", {"refresh_token": value})
    assert_error(r, 400, "invalid_request")


def test_refresh_error_responses_are_no_store(client):
    r = refresh(client, "garbage")
    assert r.status == 401
    assert_no_store(r)


# ---------------------------------------------------------------- lifetimes

def test_idle_expiry(jwtd_factory):
    """JWTD_REFRESH_TTL=2: a session not refreshed for 3 s is over ("expired");
    one refreshed every 0.5 s meanwhile lives on (the idle window slides)."""
    srv = jwtd_factory(env={"JWTD_REFRESH_TTL": "2"})
    c = srv.client()
    username, password, user = signup(c)
    idle = login(c, username, password)
    busy = login(c, username, password)
    start = time.monotonic()
    while time.monotonic() - start < 3.0:
        time.sleep(0.5)
        busy = assert_token_response(refresh(c, busy["refresh_token"]), user)
    assert_invalid_grant(refresh(c, idle["refresh_token"]), "expired")
    # refused for good, and the other session is unaffected
    assert_invalid_grant(refresh(c, idle["refresh_token"]), "expired")
    assert_token_response(refresh(c, busy["refresh_token"]), user)
    c.close()


def test_absolute_expiry(jwtd_factory):
    """JWTD_REFRESH_ABSOLUTE_TTL=3 (the idle TTL may not be longer): refreshing
    keeps the session alive, but not past 3 s after the login."""
    srv = jwtd_factory(env={"JWTD_REFRESH_TTL": "3", "JWTD_REFRESH_ABSOLUTE_TTL": "3"})
    c = srv.client()
    username, password, user = signup(c)
    t = login(c, username, password)
    start = time.monotonic()
    sessions = c.get("/auth/sessions", token=t["access_token"]).json["sessions"]
    (s,) = sessions
    span = (parse_rfc3339(s["expires_at"]) - parse_rfc3339(s["created_at"])).total_seconds()
    assert 2 <= span <= 4, "expires_at should be the absolute end (login + 3 s): %r" % s
    refused_at = None
    ok = 0
    while time.monotonic() - start < 6.0:
        time.sleep(0.5)
        r = refresh(c, t["refresh_token"])
        if r.status == 200:
            assert refused_at is None, "a refresh succeeded after the session had expired: %r" % r
            t = assert_token_response(r, user)
            ok += 1
        else:
            assert_invalid_grant(r, "expired")
            if refused_at is None:
                refused_at = time.monotonic() - start
            if time.monotonic() - start > 4.5:
                break
    assert refused_at is not None, "the session outlived its absolute lifetime (6 s > 3 s)"
    # whole-second clocks: the end lies 2..3 s after the login; allow scheduling slack
    assert 1.9 <= refused_at <= 4.0, "refused %.2fs after login, expected ~3 s" % refused_at
    assert ok >= 2, "refreshes before the absolute end should have worked (%d did)" % ok
    c.close()
