# SPDX-License-Identifier: Apache-2.0
"""Ending sessions: POST /auth/logout, POST /auth/password, DELETE /auth/me,
GET /auth/sessions and DELETE /auth/sessions/{id}.

API.md: after logout, a password change (revokes the user's other sessions),
account deletion or reuse detection, /auth/me and /auth/verify refuse that
session's access tokens within one second. A wrong password given to
re-confirm is 403 invalid_credentials; a session id that is not one of the
caller's is 404 not_found. Every revocation below is polled every 50 ms and
the time from the revoking response to the first refusal must stay < 1.0 s.
"""

import secrets
import time
import uuid

import pytest

from e2e_util import (assert_accepted, assert_error, assert_invalid_grant, assert_no_store,
                      assert_refused_within, assert_security_headers, assert_token_response,
                      assert_uuid, fmt_timing, jwt_parts, login, parse_rfc3339, refresh, signup,
                      strong_password)

SESSION_KEYS = {"id", "created_at", "last_used_at", "expires_at", "user_agent", "client_address",
                "current"}


def sid_of(tokens):
    return jwt_parts(tokens["access_token"])[1]["sid"]


def _user_with_sessions(client, n):
    username, password, user = signup(client)
    return username, password, user, [login(client, username, password) for _ in range(n)]


def _assert_session_dead(client, tokens, since):
    lat = assert_refused_within(client, tokens["access_token"], since)
    assert_invalid_grant(refresh(client, tokens["refresh_token"]), "revoked", "unknown")
    return lat


def _assert_session_alive(client, tokens, user=None):
    assert_accepted(client, tokens["access_token"])
    return assert_token_response(refresh(client, tokens["refresh_token"]), user)


# ------------------------------------------------------------------- logout

@pytest.mark.parametrize("body", [None, {}, {"scope": "session"}], ids=["no-body", "{}", "session"])
def test_logout_revokes_this_session(client, body):
    username, password, user, (a, b) = _user_with_sessions(client, 2)
    assert_accepted(client, a["access_token"])
    r = client.post("/auth/logout", body, token=a["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    assert r.body == b""
    assert_security_headers(r)
    lat = _assert_session_dead(client, a, since)
    print("logout %s: %s" % (body, fmt_timing(lat)))
    # the user's other session is unaffected
    _assert_session_alive(client, b, user)


def test_logout_twice_is_refused(client):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    assert client.post("/auth/logout", token=a["access_token"]).status == 204
    r = client.post("/auth/logout", token=a["access_token"])
    assert_error(r, 401, "invalid_token")
    assert (r.header("WWW-Authenticate") or "").startswith(
        'Bearer realm="jwtd", error="invalid_token"'), r


def test_logout_all(client):
    username, password, user, sessions = _user_with_sessions(client, 3)
    _, _, _, (other_user,) = _user_with_sessions(client, 1)
    r = client.post("/auth/logout", {"scope": "all"}, token=sessions[0]["access_token"])
    since = time.monotonic()
    assert r.status == 204 and r.body == b"", r
    for s in sessions[1:] + sessions[:1]:
        _assert_session_dead(client, s, since)
    # other users are unaffected; the user may log in again
    _assert_session_alive(client, other_user)
    _assert_session_alive(client, login(client, username, password), user)


@pytest.mark.parametrize("body", [{"scope": "everything"}, {"scope": "SESSION"}, {"scope": ""},
                                  {"scope": 1}, {"scope": None}, {"scope": ["all"]}])
def test_logout_bad_scope(client, body):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.post("/auth/logout", body, token=a["access_token"])
    assert_error(r, 400, "invalid_request")
    _assert_session_alive(client, a, user)      # nothing was revoked


def test_logout_malformed_json(client):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.request("POST", "/auth/logout", body="{scope", content_type="application/json",
                       token=a["access_token"])
    assert_error(r, 400, "invalid_request")
    assert_accepted(client, a["access_token"])


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/auth/logout", None),
    ("POST", "/auth/password", {"current_password": "x" * 10, "new_password": "y" * 12}),
    ("DELETE", "/auth/me", {"password": "x" * 10}),
    ("GET", "/auth/sessions", None),
    ("DELETE", "/auth/sessions/6a1d4c9f-3e2b-4d7f-8c0a-1b2c3d4e5f60", None),
])
def test_bearer_routes_without_token(client, method, path, body):
    r = client.request(method, path, json_body=body)
    assert_error(r, 401, "invalid_token")
    assert r.header("WWW-Authenticate") == 'Bearer realm="jwtd"', r


def test_logout_with_bad_token(client):
    r = client.post("/auth/logout", token="not.a.token")
    assert_error(r, 401, "invalid_token")
    assert (r.header("WWW-Authenticate") or "").startswith(
        'Bearer realm="jwtd", error="invalid_token", error_description="'), r


# ----------------------------------------------------------------- password

def test_password_change_wrong_current(client):
    username, password, user, (a, b) = _user_with_sessions(client, 2)
    r = client.post("/auth/password", {"current_password": password + "x",
                                       "new_password": strong_password()},
                    token=a["access_token"])
    assert_error(r, 403, "invalid_credentials")
    assert_no_store(r)
    for s in (a, b):
        assert_accepted(client, s["access_token"])
    login(client, username, password)          # unchanged


def test_password_reconfirmation_past_the_cap_is_wrong(client):
    """Found by an audit: a current password over 1,024 bytes was cut to
    1,024 before it was checked, so a 1,024-byte password with anything
    after it re-confirmed a change or a deletion. Longer than any password
    can be: wrong (403), as at login."""
    password = "p" * 1000 + secrets.token_hex(12)             # 1,024 bytes
    username, _, user = signup(client, password=password)
    body = login(client, username, password)
    r = client.post("/auth/password", {"current_password": password + "tail",
                                       "new_password": strong_password()},
                    token=body["access_token"])
    assert_error(r, 403, "invalid_credentials")
    r = client.request("DELETE", "/auth/me", json_body={"password": password + "tail"},
                       token=body["access_token"])
    assert_error(r, 403, "invalid_credentials")
    assert_accepted(client, body["access_token"])
    login(client, username, password)          # unchanged


@pytest.mark.parametrize("kind", ["dictionary", "short", "username"])
def test_password_change_weak_new(client, kind):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    new = {"dictionary": "password", "short": "Ab1!", "username": username}[kind]
    r = client.post("/auth/password", {"current_password": password, "new_password": new},
                    token=a["access_token"])
    assert_error(r, 422, "weak_password")
    login(client, username, password)
    assert_accepted(client, a["access_token"])


@pytest.mark.parametrize("body", [{}, {"current_password": "x" * 10},
                                  {"new_password": "Pw-long-enough-123"},
                                  {"current_password": 1, "new_password": "Pw-long-enough-123"}])
def test_password_change_bad_body(client, body):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.post("/auth/password", body, token=a["access_token"])
    assert_error(r, 400, "invalid_request")


def test_password_change(client):
    username, password, user, (a, b, c) = _user_with_sessions(client, 3)
    new = strong_password()
    r = client.post("/auth/password", {"current_password": password, "new_password": new},
                    token=a["access_token"])
    since = time.monotonic()
    assert r.status == 204 and r.body == b"", r
    # every OTHER session is revoked ...
    for s in (b, c):
        lat = _assert_session_dead(client, s, since)
        print("password change, other session: %s" % fmt_timing(lat))
    # ... the current one goes on (access token and refresh token)
    a2 = _assert_session_alive(client, a, user)
    assert sid_of(a2) == sid_of(a)
    listed = client.get("/auth/sessions", token=a2["access_token"]).json["sessions"]
    assert [s["id"] for s in listed] == [sid_of(a)], listed
    # old password refused, new one works
    r = client.post("/auth/login", {"username": username, "password": password})
    assert_error(r, 401, "invalid_credentials")
    assert login(client, username, new)["user"] == user


# ---------------------------------------------------------------- delete me

def test_delete_me_wrong_password(client):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.request("DELETE", "/auth/me", json_body={"password": password + "x"},
                       token=a["access_token"])
    assert_error(r, 403, "invalid_credentials")
    assert client.get("/auth/me", token=a["access_token"]).json == {"user": user}
    login(client, username, password)


@pytest.mark.parametrize("body", [{}, {"password": 123}, {"password": None}])
def test_delete_me_bad_body(client, body):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.request("DELETE", "/auth/me", json_body=body, token=a["access_token"])
    assert_error(r, 400, "invalid_request")
    assert_accepted(client, a["access_token"])


def test_delete_me_without_body(client):
    """Reading: API.md gives 400 for a missing field and 415 for "a body without
    Content-Type"; a request with no body at all has no body to type, so its
    fields are missing: 400 (docs/api.md, Conventions)."""
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.request("DELETE", "/auth/me", token=a["access_token"])
    assert_error(r, 400, "invalid_request")
    assert_accepted(client, a["access_token"])


def test_delete_me(client):
    username, password, user, (a, b) = _user_with_sessions(client, 2)
    r = client.request("DELETE", "/auth/me", json_body={"password": password},
                       token=a["access_token"])
    since = time.monotonic()
    assert r.status == 204 and r.body == b"", r
    for s in (a, b):
        lat = assert_refused_within(client, s["access_token"], since)
        print("delete me: %s" % fmt_timing(lat))
        assert_invalid_grant(refresh(client, s["refresh_token"]), "unknown", "revoked")
    r = client.post("/auth/login", {"username": username, "password": password})
    assert_error(r, 401, "invalid_credentials")
    # the name is free again; the new account is a different user
    username2, password2, user2 = signup(client, username)
    assert user2["username"] == username and user2["id"] != user["id"]
    fresh = login(client, username, password2)
    assert fresh["user"] == user2
    # the deleted account's tokens do not come back to life for the new owner
    for s in (a, b):
        assert client.get("/auth/verify", token=s["access_token"]).status == 401
        assert refresh(client, s["refresh_token"]).status == 401
    assert_accepted(client, fresh["access_token"])


# ----------------------------------------------------------------- sessions

def test_sessions_listing(client):
    username, password, user = signup(client)
    ua_a = "jwtd-e2e/1.0 (sessions; tab A)"
    ua_b = "Mozilla/5.0 (X11; Linux x86_64) jwtd-e2e tab B"
    r = client.post("/auth/login", {"username": username, "password": password},
                    headers={"User-Agent": ua_a})
    a = assert_token_response(r, user)
    r = client.post("/auth/login", {"username": username, "password": password},
                    headers={"User-Agent": ua_b})
    b = assert_token_response(r, user)
    _, _, _, (stranger,) = _user_with_sessions(client, 1)

    r = client.get("/auth/sessions", token=a["access_token"])
    assert r.status == 200, r
    assert_no_store(r)
    assert set(r.json) == {"sessions"}, r.json
    sessions = r.json["sessions"]
    assert isinstance(sessions, list) and len(sessions) == 2, sessions
    by_id = {s["id"]: s for s in sessions}
    assert set(by_id) == {sid_of(a), sid_of(b)}, "listed ids must be the sid claims: %r" % sessions
    assert sid_of(stranger) not in by_id
    for s in sessions:
        assert set(s) == SESSION_KEYS, "session keys: %r" % s
        assert_uuid(s["id"])
        created = parse_rfc3339(s["created_at"])
        used = parse_rfc3339(s["last_used_at"])
        expires = parse_rfc3339(s["expires_at"])
        assert created <= used < expires, s
        assert s["client_address"] == "127.0.0.1", s
        assert s["current"] is (s["id"] == sid_of(a)), s
    assert by_id[sid_of(a)]["user_agent"] == ua_a
    assert by_id[sid_of(b)]["user_agent"] == ua_b
    # newest first
    created = [parse_rfc3339(s["created_at"]) for s in sessions]
    assert created == sorted(created, reverse=True), sessions

    # seen from the other session, `current` moves
    sessions_b = client.get("/auth/sessions", token=b["access_token"]).json["sessions"]
    assert {s["id"]: s["current"] for s in sessions_b} == {sid_of(a): False, sid_of(b): True}


def test_sessions_user_agent_is_cut(client):
    username, password, user = signup(client)
    ua = "A" * 300
    r = client.post("/auth/login", {"username": username, "password": password},
                    headers={"User-Agent": ua})
    t = assert_token_response(r, user)
    (s,) = client.get("/auth/sessions", token=t["access_token"]).json["sessions"]
    assert s["user_agent"] == "A" * 256, len(s["user_agent"])


def test_revoked_sessions_not_listed(client):
    username, password, user, (a, b, c) = _user_with_sessions(client, 3)
    assert client.post("/auth/logout", token=b["access_token"]).status == 204
    ids = [s["id"] for s in client.get("/auth/sessions", token=a["access_token"]).json["sessions"]]
    assert sorted(ids) == sorted([sid_of(a), sid_of(c)]), ids


def test_reused_session_not_listed(client):
    username, password, user, (a, b) = _user_with_sessions(client, 2)
    b1 = assert_token_response(refresh(client, b["refresh_token"]), user)
    assert_token_response(refresh(client, b1["refresh_token"]), user)
    assert_invalid_grant(refresh(client, b["refresh_token"]))     # two generations back: theft
    ids = [s["id"] for s in client.get("/auth/sessions", token=a["access_token"]).json["sessions"]]
    assert ids == [sid_of(a)], ids


def test_expired_sessions_not_listed(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_REFRESH_TTL": "2"})
    c = srv.client()
    username, password, user, (old,) = _user_with_sessions(c, 1)
    time.sleep(2.2)
    new = login(c, username, password)
    # the old session's access token is still a valid JWT (15 min), its session is over
    assert_invalid_grant(refresh(c, old["refresh_token"]), "expired")
    for t in (old, new):
        ids = [s["id"] for s in c.get("/auth/sessions", token=t["access_token"]).json["sessions"]]
        assert ids == [sid_of(new)], ids
    c.close()


def test_delete_own_other_session(client):
    username, password, user, (a, b) = _user_with_sessions(client, 2)
    r = client.request("DELETE", "/auth/sessions/" + sid_of(b), token=a["access_token"])
    since = time.monotonic()
    assert r.status == 204 and r.body == b"", r
    lat = _assert_session_dead(client, b, since)
    print("delete session: %s" % fmt_timing(lat))
    _assert_session_alive(client, a, user)
    ids = [s["id"] for s in client.get("/auth/sessions", token=a["access_token"]).json["sessions"]]
    assert ids == [sid_of(a)]
    # deleting it again: not a live session of the caller any more
    r = client.request("DELETE", "/auth/sessions/" + sid_of(b), token=a["access_token"])
    assert_error(r, 404, "not_found")


def test_delete_current_session(client):
    username, password, user, (a, b) = _user_with_sessions(client, 2)
    r = client.request("DELETE", "/auth/sessions/" + sid_of(a), token=a["access_token"])
    since = time.monotonic()
    assert r.status == 204, r
    _assert_session_dead(client, a, since)
    _assert_session_alive(client, b, user)


def test_delete_session_of_another_user(client):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    _, _, victim, (v,) = _user_with_sessions(client, 1)
    r = client.request("DELETE", "/auth/sessions/" + sid_of(v), token=a["access_token"])
    assert_error(r, 404, "not_found")
    _assert_session_alive(client, v, victim)
    assert_accepted(client, a["access_token"])


@pytest.mark.parametrize("sid", ["7b2e5d0a-4f3c-4e8a-9d1b-2c3d4e5f6071", "00000000-0000-0000-0000-000000000000",
                                 "not-a-uuid", "12345", "x" * 36])
def test_delete_unknown_session(client, sid):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    r = client.request("DELETE", "/auth/sessions/" + sid, token=a["access_token"])
    assert_error(r, 404, "not_found")
    assert_accepted(client, a["access_token"])


@pytest.mark.parametrize("sid", ["7b2e5d0a-4f3c-4e8a-9d1b-2c3d4e5f6071", "not-a-uuid", "12345",
                                 "x" * 36, "x" * 200])
def test_delete_session_without_token_is_401_whatever_the_id(client, sid):
    """Authentication comes before the id is looked at: no token is 401 with
    the RFC 6750 challenge, never a 404 that tells ids apart."""
    r = client.request("DELETE", "/auth/sessions/" + sid)
    assert_error(r, 401, "invalid_token")
    assert r.header("WWW-Authenticate") == 'Bearer realm="jwtd"', r


def test_login_after_logout_opens_new_session(client):
    username, password, user, (a,) = _user_with_sessions(client, 1)
    assert client.post("/auth/logout", token=a["access_token"]).status == 204
    b = login(client, username, password)
    assert sid_of(b) != sid_of(a)
    _assert_session_alive(client, b, user)
